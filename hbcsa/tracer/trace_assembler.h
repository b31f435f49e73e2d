// Turns fanotify events into one cold-start trace per container. Pure logic:
// no I/O, no clock (times come with the events and with Tick), lookups are
// injected, so every rule is unit-tested with a fake clock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace ndocker::hbcsa {

// One resolved fanotify event (see FanEvent).
struct TraceEvent {
  int32_t pid = 0;
  uint64_t mask = 0;
  std::string path;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t size = 0;
  uint64_t mnt_id = 0;
  absl::Time time;
};

struct TraceFile {
  std::string path;  // rootfs-relative, "/bin/sh"
  uint64_t dev = 0;  // the layer file that served it (the tier's device)
  uint64_t ino = 0;
  int64_t size = 0;
  uint64_t mask = 0;                 // union of the event masks seen
  absl::Duration first_access;       // since the trace's first event
  std::string layer;                 // snapshot id serving it (AttributeLayers)
};

enum class TraceEnd { kQuiet, kLimit, kExit, kNeverStarted, kShutdown };
const char* TraceEndName(TraceEnd end);

struct Trace {
  std::string container;
  absl::Time start;  // first event (the watch time when none came)
  absl::Time end;
  TraceEnd end_reason = TraceEnd::kQuiet;
  bool complete = true;  // false: the queue overflowed while it was open
  uint64_t events = 0;   // events attributed to it (repeats included)
  std::vector<TraceFile> files;  // first-access order, one per path
  absl::Duration cpu;            // tracer CPU charged to this trace
  uint64_t dropped_upper = 0;       // files the container's upperdir served
  uint64_t dropped_unresolved = 0;  // no layer holds that inode any more
};

// Lookups the assembler needs; the daemon's implementation reads /proc and
// mountinfo, tests use fakes. Each is called at most once per new mount id
// while that id resolves (results are cached per mount id).
class TraceLookup {
 public:
  virtual ~TraceLookup() = default;
  // The mount id belongs to a mount of this (host) namespace: an open of a
  // tier directly, not through an overlay.
  virtual bool IsHostMount(uint64_t mnt_id) = 0;
  // Container key of a process (its cgroup), nullopt when none / gone.
  virtual std::optional<std::string> ContainerOfPid(int32_t pid) = 0;
  // For opens made from the host through a container's rootfs mount (OCI
  // hooks, containerd): the container whose rootfs mount point is a prefix
  // of `path`, and that prefix.
  virtual std::optional<std::pair<std::string, std::string>> ContainerOfHostPath(
      const std::string& path) = 0;
  // When the pid says nothing (it exited before its cgroup was read, or a
  // hook on the host opened the file): the watched containers whose rootfs
  // chain (upperdir or a lower layer) holds this very inode at this path.
  virtual std::vector<std::string> ContainersServing(const TraceEvent& event) = 0;
};

struct AssemblerOptions {
  absl::Duration quiet = absl::Seconds(2);   // nothing new for this long: done
  absl::Duration limit = absl::Seconds(30);  // from the first event
  // A watched container with no event for this long is given up.
  absl::Duration start_timeout = absl::Minutes(10);
  // Events whose mount id is not yet tied to a container are held (then
  // replayed in order) up to this many per mount id.
  size_t pending_per_mount = 64;
  size_t max_files = 100000;
};

struct AssemblerStats {
  uint64_t host_dropped = 0;      // opens through host mounts of a tier
  uint64_t not_regular = 0;
  uint64_t unattributed = 0;      // no watched container (after holding)
  uint64_t after_end = 0;         // for a container whose trace has ended
  uint64_t overflows = 0;
  uint64_t deleted = 0;           // "(deleted)": nothing to attribute
  uint64_t ambiguous = 0;         // held events dropped with several candidates
};

class TraceAssembler {
 public:
  TraceAssembler(AssemblerOptions options, TraceLookup* lookup)
      : options_(options), lookup_(lookup) {}

  // Starts watching a container (before its rootfs is mounted): its events
  // are traced from the first one on. Watching an existing key is a no-op.
  void Watch(const std::string& container, absl::Time now);
  bool Watching(const std::string& container) const { return traces_.count(container) > 0; }

  // Feeds one event (regular files only are kept).
  void Add(const TraceEvent& event);
  // Queue overflow: every open trace is incomplete.
  void Overflow();
  // Tracer CPU spent since the last call, shared among the traces that got
  // events since then, in proportion to their events.
  void ChargeCpu(absl::Duration cpu);

  // Ends the traces that are quiet, at their limit or never started.
  std::vector<Trace> Tick(absl::Time now);
  // The container exited (or its rootfs went away): its trace ends now.
  std::optional<Trace> End(const std::string& container, absl::Time now);
  // Ends everything (daemon shutdown).
  std::vector<Trace> EndAll(absl::Time now);

  size_t open_traces() const { return traces_.size(); }
  const AssemblerStats& stats() const { return stats_; }

 private:
  struct Open {
    Trace trace;
    absl::Time watched;
    absl::Time last_new;
    bool started = false;
    uint64_t events_since_charge = 0;
    std::unordered_map<std::string, size_t> index;  // path -> files[i]
    std::vector<uint64_t> seq;                      // files[i]'s first event seq
    std::vector<absl::Time> first;                  // files[i]'s first event time
  };
  struct Held {
    TraceEvent event;
    uint64_t seq;
    std::vector<std::string> candidates;  // containers serving its inode
  };
  // Per mount id: the container it belongs to, with the host prefix to strip.
  struct MountOwner {
    std::string container;  // empty: given up (no container)
  };

  void Record(Open& open, const TraceEvent& event, uint64_t seq, const std::string& path);
  void Attribute(const TraceEvent& event, uint64_t seq);
  Trace Finish(Open& open, TraceEnd why, absl::Time now);
  void DropHeld(const std::vector<Held>& held);

  AssemblerOptions options_;
  TraceLookup* lookup_;
  std::map<std::string, Open> traces_;
  std::unordered_map<uint64_t, MountOwner> owners_;
  std::unordered_map<uint64_t, std::vector<Held>> held_;
  std::unordered_map<std::string, std::string> host_prefix_;  // container -> rootfs mount point
  uint64_t next_seq_ = 0;
  AssemblerStats stats_;
};

// Layer attribution, done when a trace ends (off the event loop): the chain
// of the container's rootfs, its upperdir and lower fs dirs top first.
struct LayerDir {
  std::string id;   // snapshot id
  std::string dir;  // its fs dir
};
struct RootfsChain {
  std::string upper_dir;
  std::vector<LayerDir> lowers;  // top first
};
// (dev, ino) of `dir`/`rel` without following any symlink; nullopt if absent.
using IdentifyFn =
    std::function<std::optional<std::pair<uint64_t, uint64_t>>(const std::string& dir,
                                                               const std::string& rel)>;
// For each file, the layer whose file at that path is the very inode the
// event opened (dev, ino): found top-down through the chain. A file the
// upperdir serves is dropped (not an image file), so is one no layer holds.
void AttributeLayers(const RootfsChain& chain, const IdentifyFn& identify, Trace* trace);

}  // namespace ndocker::hbcsa
