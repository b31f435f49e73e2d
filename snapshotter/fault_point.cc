#include "snapshotter/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "snapshotter/log.h"

namespace ndocker {

#ifdef NDOCKER_FAULT_POINTS
namespace {
// Read once: the environment does not change while the daemon runs.
const char* ConfiguredPoint() {
  static const char* point = [] {
    const char* v = std::getenv("NDOCKER_FAULT_POINT");
    return v != nullptr && *v != '\0' ? v : nullptr;
  }();
  return point;
}
}  // namespace

bool FaultPointsEnabled() { return true; }

void FaultPoint(const char* name) {
  const char* point = ConfiguredPoint();
  if (point == nullptr || std::strcmp(point, name) != 0) return;
  spdlog::error("msg=\"fault point reached\" point={}", name);
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
  ::pause();
}
#else
bool FaultPointsEnabled() { return false; }
void FaultPoint(const char*) {}
#endif

}  // namespace ndocker
