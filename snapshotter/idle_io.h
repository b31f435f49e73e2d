// Puts the calling thread in the idle I/O class for a scope, so background
// copies (migrations, hot layer builds) yield the disk to container starts
// (CFQ/BFQ honour it; other schedulers ignore it, which costs nothing).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

namespace ndocker {

class ScopedIdleIo {
 public:
  explicit ScopedIdleIo(bool enable) {
    if (!enable) return;
    const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
    old_ = static_cast<int>(::syscall(SYS_ioprio_get, kWhoProcess, tid));
    if (old_ < 0) return;
    if (::syscall(SYS_ioprio_set, kWhoProcess, tid, kClassIdle << kClassShift) != 0) old_ = -1;
  }
  ~ScopedIdleIo() {
    if (old_ < 0) return;
    ::syscall(SYS_ioprio_set, kWhoProcess, static_cast<pid_t>(::syscall(SYS_gettid)), old_);
  }
  ScopedIdleIo(const ScopedIdleIo&) = delete;
  ScopedIdleIo& operator=(const ScopedIdleIo&) = delete;

 private:
  // ioprio_set(2) has no glibc wrapper.
  static constexpr int kWhoProcess = 1;
  static constexpr int kClassShift = 13;
  static constexpr int kClassIdle = 3;
  int old_ = -1;
};

}  // namespace ndocker
