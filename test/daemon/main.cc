// Daemon tests: each test starts the real ndocker-snapshotter binary as a
// child process and talks to it over its unix socket with the generated
// gRPC client, the way containerd's proxy plugin does.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

#include "spdlog/spdlog.h"
#include "test/daemon/tier_fs.h"

int main(int argc, char** argv) {
  // A closed stdout (e.g. `| head`) must not kill the run before the
  // fixtures' destructors stop the daemons and unmount.
  std::signal(SIGPIPE, SIG_IGN);
  // Tier filesystems and daemons of a run that dies by a signal are undone
  // by the handler; those of runs that died by SIGKILL are reaped here.
  ndocker::daemon_test::InstallEmergencyCleanup();
  // ndocker_core (MountAll) may log; tests want only problems.
  spdlog::set_level(spdlog::level::warn);
  return Catch::Session().run(argc, argv);
}
