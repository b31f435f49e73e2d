// The kernel's process events (the netlink proc connector): which process
// forked which. The tracer names a container by the opener's cgroup, read
// from /proc/<pid>/cgroup; a short-lived process (a `cat` run by the
// entrypoint's shell) is often gone before its open event is read, and then
// only its parent says whose it was (a forked child starts in its parent's
// cgroup).
//
// Race-free by order: the kernel queues a fork's message to this socket
// before the child first runs, so after reading a batch of fanotify events,
// draining this socket has given the fork of every process in the batch.
//
// Needs CAP_NET_ADMIN and CONFIG_PROC_EVENTS; without them the tracer ties a
// gone process's opens by the layer alone, as before.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

struct Fork {
  int32_t parent = 0;  // the forking process (tgid)
  int32_t child = 0;   // the new process (tgid)
};

struct ProcessEventStats {
  uint64_t forks = 0;
  uint64_t lost = 0;  // times the socket overflowed (ENOBUFS): forks were missed
};

class ProcessEvents {
 public:
  // A netlink connector socket subscribed to process events.
  static absl::StatusOr<ProcessEvents> Open();

  ProcessEvents(ProcessEvents&&) = default;
  ProcessEvents& operator=(ProcessEvents&&) = default;
  ~ProcessEvents();  // unsubscribes

  int fd() const { return fd_.get(); }

  // Appends every queued fork of a process (new threads are left out) to
  // `out`, without blocking. Returns how many were appended.
  absl::StatusOr<size_t> Drain(std::vector<Fork>* out);

  const ProcessEventStats& stats() const { return stats_; }

 private:
  explicit ProcessEvents(UniqueFd fd) : fd_(std::move(fd)) {}
  absl::Status Subscribe(bool listen);

  UniqueFd fd_;
  ProcessEventStats stats_;
};

}  // namespace ndocker::hbcsa
