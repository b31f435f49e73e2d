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

// One open of a layer file, resolved from a fanotify event: the snapshot
// fs dir that holds the real file, and the file's path beneath it (which is
// its path in the container's rootfs: a layer is the image's tree).
struct TraceEvent {
  int32_t pid = 0;
  uint64_t mask = 0;
  std::string layer_dir;  // "<tier>/snapshots/<dir>/fs", canonical
  std::string path;       // "/bin/sh"
  absl::Time time;
};

struct TraceFile {
  std::string path;       // rootfs-relative, "/bin/sh"
  std::string layer;      // snapshot id serving it
  std::string layer_dir;  // its fs dir (where the finisher reads the size)
  int64_t size = 0;
  uint64_t mask = 0;            // union of the event masks seen
  absl::Duration first_access;  // since the trace's first event
};

enum class TraceEnd { kQuiet, kLimit, kExit, kNeverStarted, kShutdown };
const char* TraceEndName(TraceEnd end);

struct Trace {
  std::string container;
  absl::Time start;  // first event (the watch time when none came)
  absl::Time end;
  TraceEnd end_reason = TraceEnd::kQuiet;
  // false: events that may have been this container's were lost (queue
  // overflow, or opens no pid could tie to one of several candidates).
  bool complete = true;
  uint64_t events = 0;           // events attributed to it (repeats included)
  std::vector<TraceFile> files;  // first-access order, one per path
  absl::Duration cpu;            // tracer CPU charged to this trace
  uint64_t dropped_upper = 0;       // opens its upperdir served (not image files)
  uint64_t dropped_unresolved = 0;  // gone from its layer before the trace ended
};

// Layer attribution needs the container's rootfs chain: its upperdir and
// lower fs dirs, top first.
struct LayerDir {
  std::string id;   // snapshot id
  std::string dir;  // its fs dir
};
struct RootfsChain {
  std::string upper_dir;
  std::vector<LayerDir> lowers;  // top first
};

// What the assembler asks of the system; the daemon's implementation reads
// /proc, tests use fakes.
class TraceLookup {
 public:
  virtual ~TraceLookup() = default;
  // Container id of a process (from its cgroup), nullopt when it is gone or
  // has no cgroup. Any string for a host process: only watched ids count.
  virtual std::optional<std::string> ContainerOfPid(int32_t pid) = 0;
};

struct AssemblerOptions {
  absl::Duration quiet = absl::Seconds(2);   // nothing new for this long: done
  absl::Duration limit = absl::Seconds(30);  // from the first event
  // A watched container with no event for this long is given up.
  absl::Duration start_timeout = absl::Minutes(10);
  size_t max_files = 100000;
};

struct AssemblerStats {
  uint64_t unattributed = 0;  // no open trace's chain holds that layer
  uint64_t outside_chain = 0; // a watched container's pid, a layer not in its chain
  uint64_t after_end = 0;     // for a container whose trace has ended
  uint64_t overflows = 0;
  uint64_t ambiguous = 0;     // no pid, several images' traces hold the layer
  uint64_t by_layer = 0;      // tied by the layer alone (a hook, a pid gone)
};

class TraceAssembler {
 public:
  TraceAssembler(AssemblerOptions options, TraceLookup* lookup)
      : options_(options), lookup_(lookup) {}

  // Starts watching a container (before its rootfs is mounted): its events
  // are traced from the first one on. Watching an existing key is a no-op.
  void Watch(const std::string& container, RootfsChain chain, absl::Time now);
  bool Watching(const std::string& container) const { return traces_.count(container) > 0; }

  // Feeds one open. Whose it is: the opener's container when that is a
  // watched one; otherwise (an OCI hook or runtime on the host, a process
  // gone before its cgroup was read) the one open trace whose chain holds
  // the layer, or several of one image (same top layer: same profile).
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
    RootfsChain chain;
    absl::Time watched;
    absl::Time last_new;
    bool started = false;
    uint64_t events_since_charge = 0;
    std::unordered_map<std::string, size_t> index;  // path -> files[i]
  };

  void Record(Open& open, const TraceEvent& event, const std::string& layer, bool own);
  static const LayerDir* LowerOf(const Open& open, const std::string& dir);
  Trace Finish(Open& open, TraceEnd why, absl::Time now);

  AssemblerOptions options_;
  TraceLookup* lookup_;
  std::map<std::string, Open> traces_;
  AssemblerStats stats_;
};

// Fills each file's size from its layer (`size_of(layer_dir, rel)`, nullopt
// when absent); a file gone from its layer is dropped.
using SizeFn = std::function<std::optional<int64_t>(const std::string& dir, const std::string& rel)>;
void FillSizes(const SizeFn& size_of, Trace* trace);

}  // namespace ndocker::hbcsa
