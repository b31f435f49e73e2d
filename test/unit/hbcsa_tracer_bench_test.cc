// Measurements (hidden: run by hand as root with
//   ndocker_unit_tests '[hbcsa_tracer_bench]' -s ):
// how fast the event loop drains a "pull" (thousands of files created and
// opened on the marked tier through a mount of a snapshot, as containerd's
// unpack does), and the per-event cost of reading and resolving events.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "hbcsa/tracer/fanotify_group.h"
#include "hbcsa/tracer/layer_path.h"
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

TEST_CASE("tracer bench: raw read + directory resolution rate (handles, no fd per event)",
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
    DirResolver dirs;
    REQUIRE(dirs.AddFilesystem(tier.root).ok());
    const double c0 = ThreadCpuSeconds();
    const double r0 = Now();
    size_t total = 0;
    for (;;) {
      ev.clear();
      absl::StatusOr<size_t> k = g->Read(&ev);
      REQUIRE(k.ok());
      if (*k == 0) break;
      total += *k;
      for (const FanEvent& e : ev) {
        if (!e.overflow) CHECK(dirs.Resolve(e.fsid, e.dir_handle));
      }
    }
    const double r1 = Now();
    const double c1 = ThreadCpuSeconds();
    std::printf("raw mask=%s: %zu events for %d files (%.2f s to make), drained in %.3f s = %.0f events/s, %.2f us CPU/event\n",
                access ? "OPEN|OPEN_EXEC|ACCESS" : "OPEN|OPEN_EXEC", total, n, t1 - t0, r1 - r0,
                total / (r1 - r0), (c1 - c0) * 1e6 / std::max<size_t>(total, 1));
  }
}

// Two child processes create files through bind mounts of two snapshot
// dirs (containerd unpacking layers); the tracer is idle (no container
// starting) or has one container watched whose chain is elsewhere (every
// event is resolved, then dropped).
TEST_CASE("tracer bench: the daemon's loop during a pull on the tier",
          "[.][hbcsa_tracer_bench]") {
  if (::geteuid() != 0) return;
  for (bool watching : {false, true}) {
    for (bool unlimited : {false, true}) {
      Tier tier;
      TracerOptions o;
      o.unlimited_queue = unlimited;
      absl::StatusOr<std::unique_ptr<Tracer>> t = Tracer::Start({tier.root}, o, nullptr);
      REQUIRE(t.ok());
      if (watching) {
        fs::create_directories(tier.root + "/snapshots/9/fs");
        (*t)->WatchContainer("bench", RootfsChain{tier.root + "/snapshots/10/fs", {{"9", tier.root + "/snapshots/9/fs"}}});
      }
      std::vector<std::string> binds;
      for (const char* id : {"1", "2"}) {
        const std::string src = tier.root + "/snapshots/" + id + "/fs";
        const std::string dst = tier.dir / absl::StrCat("bind", id);
        fs::create_directories(src);
        fs::create_directories(dst);
        REQUIRE(::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) == 0);
        binds.push_back(dst);
      }
      const int n = 20000;
      const double t0 = Now();
      std::vector<pid_t> writers;
      for (const std::string& b : binds) {
        const pid_t pid = ::fork();
        if (pid == 0) {
          Pull(b + "/usr/lib", n / 2);
          ::_exit(0);
        }
        writers.push_back(pid);
      }
      for (pid_t pid : writers) ::waitpid(pid, nullptr, 0);
      const double t1 = Now();
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
      std::printf("tracer watching=%d unlimited_queue=%d: %d files by 2 writers in %.2f s (%.0f opens/s); "
                  "loop read %llu events (idle %llu, unattributed %llu, dirs decoded %llu cached %llu, "
                  "overflows %llu), drained by +%.2f s; loop CPU %.3f s = %.2f us/event\n",
                  watching, unlimited, n, t1 - t0, n / (t1 - t0),
                  static_cast<unsigned long long>(s.read.events), static_cast<unsigned long long>(s.idle),
                  static_cast<unsigned long long>(s.assembler.unattributed),
                  static_cast<unsigned long long>(s.dirs.decoded),
                  static_cast<unsigned long long>(s.dirs.cached),
                  static_cast<unsigned long long>(s.assembler.overflows), t2 - t1,
                  absl::ToDoubleSeconds(s.loop_cpu),
                  absl::ToDoubleMicroseconds(s.loop_cpu) / static_cast<double>(std::max<uint64_t>(s.read.events, 1)));
      t->reset();
      for (const std::string& b : binds) CHECK(::umount2(b.c_str(), 0) == 0);  // nothing pinned
    }
  }
}

class Sink : public TraceSink {
 public:
  void OnTrace(const Trace& t, const RootfsChain&) override {
    std::lock_guard<std::mutex> l(mu);
    traces.push_back(t);
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Trace> traces;
};

// 20 traced starts in a row on one tracer: CPU per start in steady state.
TEST_CASE("tracer bench: CPU per traced start", "[.][hbcsa_tracer_bench]") {
  if (::geteuid() != 0) return;
  Tier tier;
  const std::string l1 = tier.root + "/snapshots/1/fs";
  fs::create_directories(l1 + "/bin");
  fs::copy_file("/bin/busybox", l1 + "/bin/busybox");
  for (int i = 0; i < 50; ++i) {
    fs::create_directories(l1 + "/etc");
    std::ofstream(l1 + "/etc/f" + std::to_string(i)) << i;
  }
  Sink sink;
  TracerOptions o;
  o.assembler.quiet = absl::Milliseconds(300);
  o.tick = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<Tracer>> t = Tracer::Start({tier.root}, o, &sink);
  REQUIRE(t.ok());
  const int runs = 20;
  for (int i = 0; i < runs; ++i) {
    const std::string id = absl::StrCat("ndbench-", ::getpid(), "-", i);
    const std::string up = tier.root + "/snapshots/u" + std::to_string(i);
    const std::string merged = tier.dir / absl::StrCat("m", i);
    fs::create_directories(up + "/fs");
    fs::create_directories(up + "/work");
    fs::create_directories(merged);
    const std::string cg = "/sys/fs/cgroup/pids/" + id;
    REQUIRE(::mkdir(cg.c_str(), 0755) == 0);
    (*t)->WatchContainer(id, RootfsChain{up + "/fs", {{"1", l1}}});
    const std::string opts = absl::StrCat("lowerdir=", l1, ",upperdir=", up, "/fs,workdir=", up, "/work");
    REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      { std::ofstream(cg + "/cgroup.procs") << ::getpid() << std::flush; }
      if (::unshare(CLONE_NEWNS) != 0) ::_exit(1);
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
      if (::chroot(merged.c_str()) != 0 || ::chdir("/") != 0) ::_exit(2);
      ::execl("/bin/busybox", "sh", "-c", "/bin/busybox cat /etc/* > /out", static_cast<char*>(nullptr));
      ::_exit(3);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    {
      std::unique_lock<std::mutex> l(sink.mu);
      sink.cv.wait_for(l, std::chrono::seconds(5), [&] { return sink.traces.size() == size_t(i + 1); });
    }
    (*t)->ContainerGone(id);
    ::umount2(merged.c_str(), MNT_DETACH);
    ::rmdir(cg.c_str());
  }
  std::lock_guard<std::mutex> l(sink.mu);
  REQUIRE(sink.traces.size() == size_t(runs));
  std::vector<double> us;
  for (const Trace& tr : sink.traces) {
    CHECK(tr.files.size() == 51);  // busybox + 50 files
    us.push_back(absl::ToDoubleMicroseconds(tr.cpu));
  }
  std::printf("CPU per traced start (51 files, ~53 events each), us:");
  for (double u : us) std::printf(" %.0f", u);
  std::vector<double> sorted = us;
  std::sort(sorted.begin(), sorted.end());
  TracerStats st = (*t)->stats();
  std::printf("\nmedian %.0f us; loop total %.1f ms, finisher total %.1f ms\n", sorted[sorted.size() / 2],
              absl::ToDoubleMilliseconds(st.loop_cpu), absl::ToDoubleMilliseconds(st.finisher_cpu));
}

}  // namespace
}  // namespace ndocker::hbcsa
