// The tracer on a real overlay (needs root; skipped otherwise): a tmpfs
// "tier" is marked BEFORE any overlay exists; a child in its own mount
// namespace (chroot into the overlay, own cgroup) execs a static busybox
// from the bottom layer and reads a known subset of files. The trace must
// hold exactly those files (plus what a "hook" read from the host through
// the rootfs mount), each attributed to the right layer, nothing from the
// decoy dir, nothing the upperdir served, nothing read on the tier directly.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hbcsa/tracer/fanotify_group.h"
#include "hbcsa/tracer/layer_path.h"
#include "hbcsa/tracer/tracer.h"
#include "test/unit/file_util.h"
#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;
using ndocker::testing::TempDir;

bool Verbose() { return std::getenv("NDOCKER_TRACER_VERBOSE") != nullptr; }

using testing::ReadText;
using testing::WriteText;

class CollectSink : public TraceSink {
 public:
  void OnTrace(const Trace& trace, const RootfsChain&) override {
    std::lock_guard<std::mutex> l(mu_);
    traces_.push_back(trace);
    cv_.notify_all();
  }
  std::optional<Trace> WaitFor(const std::string& container, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    std::optional<Trace> found;
    cv_.wait_for(l, timeout, [&] {
      for (const Trace& t : traces_) {
        if (t.container == container) found = t;
      }
      return found.has_value();
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Trace> traces_;
};

// A tmpfs tier with two lower layers and an upper, all on it.
struct Rig {
  TempDir dir;
  std::string tier = dir / "tier";
  std::string l1 = tier + "/snapshots/1/fs";  // bottom
  std::string l2 = tier + "/snapshots/2/fs";  // top
  std::string up = tier + "/snapshots/3/fs";
  std::string work = tier + "/snapshots/3/work";
  std::string merged = dir / "merged";
  bool tier_mounted = false;
  bool merged_mounted = false;

  Rig() {
    fs::create_directories(tier);
    REQUIRE(::mount("tmpfs", tier.c_str(), "tmpfs", 0, "size=64m") == 0);
    tier_mounted = true;
    for (const std::string& d : {l1, l2, up, work, merged}) fs::create_directories(d);
    fs::create_directories(l1 + "/bin");
    fs::copy_file("/bin/busybox", l1 + "/bin/busybox");
    WriteText(l1 + "/etc/a", "a");
    WriteText(l1 + "/etc/b", "b");
    WriteText(l1 + "/etc/c", "hidden by L2");
    WriteText(l1 + "/decoy/x", "x");
    WriteText(l1 + "/decoy/y", "y");
    WriteText(l2 + "/etc/c", "c from L2");
    WriteText(l2 + "/data/d", "d");
    WriteText(l2 + "/decoy/z", "z");
  }
  void MountOverlay() {
    const std::string opts =
        absl::StrCat("lowerdir=", l2, ":", l1, ",upperdir=", up, ",workdir=", work);
    REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0);
    merged_mounted = true;
  }
  ~Rig() {
    if (merged_mounted) ::umount2(merged.c_str(), MNT_DETACH);
    if (tier_mounted) ::umount2(tier.c_str(), MNT_DETACH);
  }
};

// Forks a child in its own cgroup (pids hierarchy) and mount namespace,
// chrooted into `root`, running busybox sh -c `script`. Returns the exit code.
int RunContained(const std::string& cgroup_dir, const std::string& root, const std::string& script) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    {
      std::ofstream procs(cgroup_dir + "/cgroup.procs");
      procs << ::getpid() << std::flush;
      if (!procs) ::_exit(120);
    }
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(121);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(122);
    if (::chroot(root.c_str()) != 0 || ::chdir("/") != 0) ::_exit(123);
    ::execl("/bin/busybox", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(124);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE("Tracer on a real overlay: filesystem mark on the tier placed before the mount",
          "[hbcsa][tracer][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: fanotify filesystem marks and mounts need root");
    return;
  }
  if (!fs::exists("/bin/busybox")) {
    WARN("skipped: needs a static /bin/busybox");
    return;
  }
  Rig rig;
  const std::string container = absl::StrCat("ndtrace-", ::getpid());
  const std::string cgroup = "/sys/fs/cgroup/pids/" + container;
  if (::mkdir(cgroup.c_str(), 0755) != 0) {
    WARN("skipped: cannot make a pids cgroup for the child");
    return;
  }

  // A raw group next to the tracer's, to record what the kernel reports.
  absl::StatusOr<FanotifyGroup> raw = FanotifyGroup::Create();
  REQUIRE(raw.ok());
  REQUIRE(raw->MarkFilesystem(rig.tier, FAN_OPEN | FAN_OPEN_EXEC).ok());

  CollectSink sink;
  pid_t hook_pid = -1;
  TracerOptions options;
  options.assembler.quiet = absl::Milliseconds(700);
  options.tick = absl::Milliseconds(50);
  {
    absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::Start({rig.tier}, options, &sink);
    REQUIRE(tracer.ok());
    // The snapshotter's Prepare of the container rootfs: before the mount.
    (*tracer)->WatchContainer(container, RootfsChain{rig.up, {{"2", rig.l2}, {"1", rig.l1}}});
    rig.MountOverlay();

    // A "hook" on the host (another process: the tracer ignores its own
    // daemon's opens) reads through the rootfs mount before the process runs.
    hook_pid = ::fork();
    if (hook_pid == 0) ::_exit(ReadText(rig.merged + "/etc/b") == "b" ? 0 : 1);
    int hook_status = 0;
    REQUIRE(::waitpid(hook_pid, &hook_status, 0) == hook_pid);
    CHECK((WIFEXITED(hook_status) && WEXITSTATUS(hook_status) == 0));
    // The host reads a tier file directly: a host mount, not the container's.
    CHECK(ReadText(rig.l1 + "/decoy/x") == "x");

    const int rc = RunContained(
        cgroup, rig.merged,
        "/bin/busybox cat /etc/a /etc/c /data/d > /out && /bin/busybox cat /out > /out2");
    CHECK(rc == 0);
    CHECK(ReadText(rig.up + "/out2") == "ac from L2d");

    std::optional<Trace> trace = sink.WaitFor(container, std::chrono::seconds(10));
    if (!trace) {
      TracerStats st = (*tracer)->stats();
      FAIL_CHECK("no trace: read " << st.read.events << " malformed " << st.read.malformed << " idle "
                 << st.idle << " own " << st.own << " not_layer " << st.not_layer << " dirs decoded "
                 << st.dirs.decoded << " failed " << st.dirs.failed << " unattributed "
                 << st.assembler.unattributed << " outside_chain " << st.assembler.outside_chain);
    }
    REQUIRE(trace);
    std::vector<std::pair<std::string, std::string>> got;
    for (const TraceFile& f : trace->files) got.emplace_back(f.path, f.layer);
    const std::vector<std::pair<std::string, std::string>> want = {
        {"/etc/b", "1"}, {"/bin/busybox", "1"}, {"/etc/a", "1"}, {"/etc/c", "2"}, {"/data/d", "2"}};
    CHECK(got == want);
    CHECK(trace->complete);
    CHECK(trace->end_reason == TraceEnd::kQuiet);
    CHECK(trace->dropped_upper >= 1);  // /out
    bool exec_seen = false;
    for (const TraceFile& f : trace->files) {
      if (f.path == "/bin/busybox") {
        exec_seen = (f.mask & FAN_OPEN_EXEC) != 0;
        CHECK(f.size == static_cast<int64_t>(fs::file_size("/bin/busybox")));
      }
    }
    CHECK(exec_seen);
    TracerStats st = (*tracer)->stats();
    CHECK(st.assembler.by_layer >= 1);  // the "hook": a host pid, tied by the layer
    if (Verbose()) {
      std::printf("trace: %zu files, %llu events, cpu %lld us, dropped_upper %llu, read %llu, "
                  "unattributed %llu, dirs decoded %llu cached %llu\n",
                  trace->files.size(), static_cast<unsigned long long>(trace->events),
                  static_cast<long long>(absl::ToInt64Microseconds(trace->cpu)),
                  static_cast<unsigned long long>(trace->dropped_upper),
                  static_cast<unsigned long long>(st.read.events),
                  static_cast<unsigned long long>(st.assembler.unattributed),
                  static_cast<unsigned long long>(st.dirs.decoded),
                  static_cast<unsigned long long>(st.dirs.cached));
    }
    (*tracer)->ContainerGone(container);
  }

  // What the kernel reported, per event: the real layer file's directory
  // and name, for opens through the overlay from inside and from the host
  // alike, and for the direct read of the tier (the raw group has no ignore
  // mark). The tracer's group, with its ignore mark on the tier's mount, got
  // no event for the direct read: it is not in the trace above.
  std::vector<FanEvent> events;
  for (;;) {
    absl::StatusOr<size_t> n = raw->Read(&events);
    REQUIRE(n.ok());
    if (*n == 0) break;
  }
  DirResolver dirs;
  REQUIRE(dirs.AddFilesystem(rig.tier).ok());
  bool in_ns = false, host_through_overlay = false, host_direct = false;
  for (const FanEvent& e : events) {
    REQUIRE_FALSE(e.overflow);
    std::optional<std::string> dir = dirs.Resolve(e.fsid, e.dir_handle);
    REQUIRE(dir);
    const std::string path = *dir + "/" + e.name;
    if (Verbose()) {
      std::printf("raw: pid=%d mask=%#llx file=%s\n", e.pid, static_cast<unsigned long long>(e.mask),
                  path.c_str());
    }
    if (path == rig.l1 + "/etc/a" && e.pid != hook_pid) in_ns = true;
    if (path == rig.l1 + "/etc/b" && e.pid == hook_pid) host_through_overlay = true;
    if (path == rig.l1 + "/decoy/x") host_direct = true;
    // Nothing from the decoy went through the overlay.
    CHECK((path.find("/decoy/") == std::string::npos || path == rig.l1 + "/decoy/x"));
  }
  CHECK(in_ns);                 // the container's open, on the lower layer's real file
  CHECK(host_through_overlay);  // a host open through the rootfs mount: the same
  CHECK(host_direct);
  ::rmdir(cgroup.c_str());
}

}  // namespace
}  // namespace ndocker::hbcsa

namespace ndocker::hbcsa {
namespace {

// The race the fork events close: a container's shell runs a `cat` that
// opens, exits and is reaped before the tracer reads its cgroup. Here the
// grandchild is gone for sure when it is looked up; its parent, alive in the
// container's cgroup, names it.
TEST_CASE("ProcLookup with process events: a reaped child is named by its parent's cgroup",
          "[hbcsa][tracer][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: process events and cgroups need root");
    return;
  }
  absl::StatusOr<ProcessEvents> events = ProcessEvents::Open();
  if (!events.ok()) {
    WARN("skipped: no process events here: " << events.status().message());
    return;
  }
  const std::string container = absl::StrCat("ndfork-", ::getpid());
  const std::string cgroup = "/sys/fs/cgroup/pids/" + container;
  if (::mkdir(cgroup.c_str(), 0755) != 0) {
    WARN("skipped: cannot make a pids cgroup for the child");
    return;
  }
  int report[2], release[2];
  REQUIRE(::pipe(report) == 0);
  REQUIRE(::pipe(release) == 0);
  const pid_t shell = ::fork();
  REQUIRE(shell >= 0);
  if (shell == 0) {
    ::close(report[0]);
    ::close(release[1]);  // else its own copy keeps the release read from ending
    {
      std::ofstream procs(cgroup + "/cgroup.procs");
      procs << ::getpid() << std::flush;
      if (!procs) ::_exit(120);
    }
    const pid_t cat = ::fork();
    if (cat == 0) ::_exit(0);
    if (cat < 0 || ::waitpid(cat, nullptr, 0) != cat) ::_exit(121);
    if (::write(report[1], &cat, sizeof cat) != sizeof cat) ::_exit(122);
    char c;
    (void)::read(release[0], &c, 1);  // alive until the lookups are done
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(release[0]);
  pid_t cat = -1;
  REQUIRE(::read(report[0], &cat, sizeof cat) == sizeof cat);
  CHECK_FALSE(fs::exists(absl::StrCat("/proc/", cat)));  // reaped

  std::vector<Fork> forks;
  REQUIRE(events->Drain(&forks).ok());
  bool seen = false;
  ProcLookup lookup;
  CHECK(lookup.ContainerOfPid(cat) == std::nullopt);  // before the forks are known: nobody
  for (const Fork& f : forks) {
    lookup.OnFork(f, absl::Now());
    if (f.parent == shell && f.child == cat) seen = true;
  }
  CHECK(seen);
  CHECK(lookup.ContainerOfPid(cat) == container);
  CHECK(lookup.by_parent() == 1);

  ::close(release[1]);
  int status = 0;
  REQUIRE(::waitpid(shell, &status, 0) == shell);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  ::close(report[0]);
  ::rmdir(cgroup.c_str());
}

}  // namespace
}  // namespace ndocker::hbcsa
