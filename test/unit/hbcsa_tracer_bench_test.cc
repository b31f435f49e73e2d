// Measurements (hidden: run by hand as root with
//   ndocker_unit_tests '[hbcsa_tracer_bench]' -s ):
// how fast the event loop drains a "pull" (thousands of files created and
// opened on the marked tier), and the per-event cost of full resolution.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "hbcsa/tracer/fanotify_group.h"
#include "hbcsa/tracer/tracer.h"
#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;
using ndocker::testing::TempDir;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double ThreadCpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Creates and writes `n` files (one open each) under dir/<sub>.
void Pull(const std::string& dir, int n) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    const std::string p = dir + "/f" + std::to_string(i);
    int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, "x", 1);
      ::close(fd);
    }
  }
}

struct Tier {
  TempDir dir;
  std::string root = dir / "tier";
  Tier() {
    fs::create_directories(root);
    REQUIRE(::mount("tmpfs", root.c_str(), "tmpfs", 0, "size=256m,nr_inodes=200000") == 0);
  }
  ~Tier() { ::umount2(root.c_str(), MNT_DETACH); }
};

TEST_CASE("tracer bench: raw resolution rate (statx + readlink + close per event)",
          "[.][hbcsa_tracer_bench]") {
  if (::geteuid() != 0) return;
  Tier tier;
  for (bool access : {false, true}) {
    absl::StatusOr<FanotifyGroup> g = FanotifyGroup::Create({.unlimited_queue = true});
    REQUIRE(g.ok());
    uint64_t mask = FAN_OPEN | FAN_OPEN_EXEC | (access ? FAN_ACCESS : 0);
    REQUIRE(g->MarkFilesystem(tier.root, mask).ok());
    const int n = 20000;
    const double t0 = Now();
    Pull(tier.root + (access ? "/b" : "/a"), n);
    // Reading each file back: FAN_ACCESS per read() when on.
    for (int i = 0; i < n; ++i) {
      const std::string p = tier.root + (access ? "/b" : "/a") + "/f" + std::to_string(i);
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      char c;
      (void)!::read(fd, &c, 1);
      ::close(fd);
    }
    const double t1 = Now();
    std::vector<FanEvent> ev;
    const double c0 = ThreadCpuSeconds();
    const double r0 = Now();
    size_t total = 0;
    for (;;) {
      ev.clear();
      absl::StatusOr<size_t> k = g->Read(&ev);
      REQUIRE(k.ok());
      if (*k == 0) break;
      total += *k;
    }
    const double r1 = Now();
    const double c1 = ThreadCpuSeconds();
    std::printf("raw mask=%s: %zu events for %d files (%.2f s to make), drained in %.3f s = %.0f events/s, %.2f us CPU/event\n",
                access ? "OPEN|OPEN_EXEC|ACCESS" : "OPEN|OPEN_EXEC", total, n, t1 - t0, r1 - r0,
                total / (r1 - r0), (c1 - c0) * 1e6 / std::max<size_t>(total, 1));
  }
}

TEST_CASE("tracer bench: the daemon's loop during a pull on the tier (host-mount events)",
          "[.][hbcsa_tracer_bench]") {
  if (::geteuid() != 0) return;
  for (bool unlimited : {false, true}) {
    Tier tier;
    TracerOptions o;
    o.unlimited_queue = unlimited;
    absl::StatusOr<std::unique_ptr<Tracer>> t = Tracer::Start({tier.root}, o, nullptr);
    REQUIRE(t.ok());
    const int n = 20000;
    const double t0 = Now();
    std::thread w1([&] { Pull(tier.root + "/l1", n / 2); });
    std::thread w2([&] { Pull(tier.root + "/l2", n / 2); });
    w1.join();
    w2.join();
    const double t1 = Now();
    // Wait for the loop to drain.
    uint64_t last = 0;
    double t2 = t1;
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      TracerStats s = (*t)->stats();
      if (s.read.events == last && i > 2) break;
      last = s.read.events;
      t2 = Now();
    }
    TracerStats s = (*t)->stats();
    std::printf("tracer unlimited_queue=%d: %d files by 2 writers in %.2f s (%.0f opens/s); loop read %llu events (skipped %llu host-mount, overflows %llu), drained by +%.2f s; loop CPU %.3f s = %.2f us/event\n",
                unlimited, n, t1 - t0, n / (t1 - t0), static_cast<unsigned long long>(s.read.events),
                static_cast<unsigned long long>(s.read.skipped),
                static_cast<unsigned long long>(s.assembler.overflows), t2 - t1,
                absl::ToDoubleSeconds(s.loop_cpu),
                absl::ToDoubleMicroseconds(s.loop_cpu) / std::max<uint64_t>(s.read.events, 1));
  }
}

}  // namespace
}  // namespace ndocker::hbcsa
