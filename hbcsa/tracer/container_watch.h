// What the recorder asks of the tracer: watch a container's cold start, and
// hear that it is gone. An interface so the recorder's rules can be tested
// without a fanotify group.
#pragma once

#include <string>

#include "hbcsa/tracer/trace_assembler.h"

namespace ndocker::hbcsa {

class ContainerWatch {
 public:
  virtual ~ContainerWatch() = default;
  // A container rootfs was prepared (before it is mounted). `container` is
  // the container id (the last component of the snapshot key).
  virtual void WatchContainer(const std::string& container, RootfsChain chain) = 0;
  // The container exited or its rootfs snapshot is removed.
  virtual void ContainerGone(const std::string& container) = 0;
};

}  // namespace ndocker::hbcsa
