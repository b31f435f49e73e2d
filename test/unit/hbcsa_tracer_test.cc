// TraceAssembler with a fake clock and fake look-ups; AttributeLayers with a
// fake file identity; the cgroup parsing.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "hbcsa/tracer/trace_assembler.h"
#include "hbcsa/tracer/tracer.h"

namespace ndocker::hbcsa {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000000);
absl::Time At(double s) { return kT0 + absl::Seconds(s); }

class FakeLookup : public TraceLookup {
 public:
  std::set<uint64_t> host_mounts;
  std::map<int32_t, std::string> pid_container;
  std::map<std::string, std::string> mount_points;  // container -> rootfs mount point
  int pid_calls = 0;
  bool IsHostMount(uint64_t id) override { return host_mounts.count(id) > 0; }
  std::optional<std::string> ContainerOfPid(int32_t pid) override {
    ++pid_calls;
    auto it = pid_container.find(pid);
    if (it == pid_container.end()) return std::nullopt;
    return it->second;
  }
  std::map<uint64_t, std::vector<std::string>> serving;  // ino -> containers
  std::vector<std::string> ContainersServing(const TraceEvent& e) override {
    auto it = serving.find(e.ino);
    return it == serving.end() ? std::vector<std::string>{} : it->second;
  }
  std::optional<std::pair<std::string, std::string>> ContainerOfHostPath(
      const std::string& path) override {
    for (const auto& [c, mp] : mount_points) {
      if (path.rfind(mp + "/", 0) == 0) return std::make_pair(c, mp);
    }
    return std::nullopt;
  }
};

TraceEvent Ev(int32_t pid, uint64_t mnt, std::string path, double t, uint64_t ino = 0) {
  TraceEvent e;
  e.pid = pid;
  e.mnt_id = mnt;
  e.path = std::move(path);
  e.time = At(t);
  e.dev = 7;
  e.ino = ino ? ino : std::hash<std::string>{}(e.path);
  e.size = 100;
  e.mask = 0x20;
  return e;
}

std::vector<std::string> Paths(const Trace& t) {
  std::vector<std::string> p;
  for (const TraceFile& f : t.files) p.push_back(f.path);
  return p;
}

TEST_CASE("TraceAssembler: dedup, first-access order, quiet end", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container[10] = "c1";
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Add(Ev(10, 500, "/bin/sh", 5.0));
  a.Add(Ev(10, 500, "/lib/ld.so", 5.1));
  a.Add(Ev(10, 500, "/bin/sh", 5.2));
  a.Add(Ev(10, 501, "/etc/conf", 5.3));
  a.Add(Ev(10, 500, "/lib/ld.so", 6.0));  // a repeat is not "new"
  CHECK(a.Tick(At(7.0)).empty());          // 1.7 s after the last new file
  std::vector<Trace> done = a.Tick(At(7.31));
  REQUIRE(done.size() == 1);
  const Trace& t = done[0];
  CHECK(t.container == "c1");
  CHECK(Paths(t) == std::vector<std::string>{"/bin/sh", "/lib/ld.so", "/etc/conf"});
  CHECK(t.end_reason == TraceEnd::kQuiet);
  CHECK(t.complete);
  CHECK(t.events == 5);
  CHECK(t.start == At(5.0));
  CHECK(t.files[2].first_access == absl::Milliseconds(300));
  CHECK(a.open_traces() == 0);
  // The pid was looked up once per new mount id only.
  CHECK(lk.pid_calls == 2);
  // Events after the end are counted, not traced.
  a.Add(Ev(10, 500, "/late", 8));
  CHECK(a.stats().after_end == 1);
}

TEST_CASE("TraceAssembler: the limit ends a trace that keeps opening new files",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container[10] = "c1";
  AssemblerOptions o;
  o.limit = absl::Seconds(30);
  TraceAssembler a(o, &lk);
  a.Watch("c1", At(0));
  std::vector<Trace> done;
  for (int i = 0; i < 40 && done.empty(); ++i) {
    a.Add(Ev(10, 500, "/f" + std::to_string(i), 1.0 + i));
    done = a.Tick(At(1.0 + i + 0.5));
  }
  REQUIRE(done.size() == 1);
  CHECK(done[0].end_reason == TraceEnd::kLimit);
  CHECK(done[0].files.size() == 30);  // f0 at 1 s .. f29 at 30 s, ended at 31.5 s
}

TEST_CASE("TraceAssembler: a watched container that never opens anything is given up",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  CHECK(a.Tick(At(60)).empty());  // waiting for ctr task start is fine
  std::vector<Trace> done = a.Tick(At(601));
  REQUIRE(done.size() == 1);
  CHECK(done[0].end_reason == TraceEnd::kNeverStarted);
}

TEST_CASE("TraceAssembler: overflow marks every open trace incomplete, later ones are complete",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {20, "c2"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Watch("c2", At(0));
  a.Add(Ev(10, 500, "/a", 1));
  a.Overflow();
  a.Watch("c3", At(1.5));
  lk.pid_container[30] = "c3";
  a.Add(Ev(30, 700, "/x", 1.6));
  std::optional<Trace> c1 = a.End("c1", At(2));
  std::optional<Trace> c2 = a.End("c2", At(2));
  std::optional<Trace> c3 = a.End("c3", At(2));
  REQUIRE((c1 && c2 && c3));
  CHECK_FALSE(c1->complete);
  CHECK_FALSE(c2->complete);  // armed when the queue overflowed: may have lost its exec
  CHECK(c3->complete);
  CHECK(c1->end_reason == TraceEnd::kExit);
  CHECK(c2->end_reason == TraceEnd::kNeverStarted);
  CHECK(a.stats().overflows == 1);
}

TEST_CASE("TraceAssembler: two containers in parallel get separate traces", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {11, "c1"}, {20, "c2"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Watch("c2", At(0));
  // Same image (same paths), two overlays (two mount ids each).
  a.Add(Ev(10, 500, "/bin/app", 1.0, 1));
  a.Add(Ev(20, 600, "/bin/app", 1.0, 1));
  a.Add(Ev(11, 501, "/etc/c1only", 1.1));
  a.Add(Ev(20, 601, "/etc/c2only", 1.2));
  a.Add(Ev(20, 600, "/lib/libc", 1.3));
  std::vector<Trace> done = a.Tick(At(5));
  REQUIRE(done.size() == 2);
  std::map<std::string, std::vector<std::string>> by;
  for (const Trace& t : done) by[t.container] = Paths(t);
  CHECK(by["c1"] == std::vector<std::string>{"/bin/app", "/etc/c1only"});
  CHECK(by["c2"] == std::vector<std::string>{"/bin/app", "/etc/c2only", "/lib/libc"});
}

TEST_CASE("TraceAssembler: host-mount opens, unwatched containers and non-container pids are dropped",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.host_mounts = {1, 2};
  lk.pid_container = {{10, "c1"}, {99, "other"}};
  AssemblerOptions o;
  o.pending_per_mount = 4;
  TraceAssembler a(o, &lk);
  a.Watch("c1", At(0));
  a.Add(Ev(10, 1, "/tier/snapshots/3/fs/bin/sh", 1.0));  // a host open of the tier
  a.Add(Ev(1, 2, "/tier/snapshots/3/fs/etc/x", 1.0));
  for (int i = 0; i < 5; ++i) a.Add(Ev(99, 800, "/u" + std::to_string(i), 1.0));  // not watched
  a.Add(Ev(99, 800, "/u9", 1.1));  // given up: no look-up
  a.Add(Ev(10, 500, "/bin/sh", 1.2));
  CHECK(a.stats().host_dropped == 2);
  CHECK(a.stats().unattributed == 6);
  std::optional<Trace> t = a.End("c1", At(3));
  REQUIRE(t);
  CHECK(Paths(*t) == std::vector<std::string>{"/bin/sh"});
}

TEST_CASE("TraceAssembler: events held until their mount is tied to a container keep their order",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  // pid 9 exited before its cgroup was read: held on mount 500.
  a.Add(Ev(9, 500, "/bin/entry", 1.0));
  a.Add(Ev(10, 501, "/lib/libc", 1.1));
  a.Add(Ev(10, 500, "/etc/conf", 1.2));  // ties 500 to c1, replays /bin/entry
  std::optional<Trace> t = a.End("c1", At(3));
  REQUIRE(t);
  CHECK(Paths(*t) == std::vector<std::string>{"/bin/entry", "/lib/libc", "/etc/conf"});
  CHECK(t->start == At(1.0));
  CHECK(t->files[1].first_access == absl::Milliseconds(100));
}

TEST_CASE("TraceAssembler: a pid gone before its cgroup is read is tied by the inode its chain holds",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Watch("c2", At(0));
  a.Add(Ev(10, 500, "/bin/sh", 1.0, 1));
  lk.serving[2] = {"c1"};  // only c1's chain has inode 2
  a.Add(Ev(11, 501, "/etc/only-c1", 1.1, 2));  // pid 11 exited: no cgroup
  lk.serving[3] = {"c1", "c2"};  // both chains share that layer
  a.Add(Ev(12, 502, "/lib/shared", 1.2, 3));
  CHECK(a.Tick(At(2.0)).empty());
  // Nothing tied mount 502 within a quiet period: both may be short.
  std::vector<Trace> done = a.Tick(At(3.3));
  REQUIRE(done.size() == 1);
  CHECK(done[0].container == "c1");
  CHECK(Paths(done[0]) == std::vector<std::string>{"/bin/sh", "/etc/only-c1"});
  CHECK_FALSE(done[0].complete);
  std::optional<Trace> c2 = a.End("c2", At(4));
  REQUIRE(c2);
  CHECK_FALSE(c2->complete);
  CHECK(a.stats().ambiguous == 1);
}

TEST_CASE("TraceAssembler: deleted files are dropped at once", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Add(Ev(10, 500, "/ (deleted)", 1.0));
  a.Add(Ev(10, 500, "/tmp/x (deleted)", 1.0));
  CHECK(a.stats().deleted == 2);
  std::optional<Trace> t = a.End("c1", At(2));
  REQUIRE(t);
  CHECK(t->files.empty());
}

TEST_CASE("TraceAssembler: opens from the host through the rootfs mount (hooks) are the container's",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}};
  lk.mount_points["c1"] = "/run/c/c1/rootfs";
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Add(Ev(4242, 500, "/run/c/c1/rootfs/etc/ld.so.cache", 1.0));  // a hook's ldconfig
  a.Add(Ev(10, 500, "/bin/entry", 1.1));
  a.Add(Ev(10, 500, "/etc/ld.so.cache", 1.2));
  std::optional<Trace> t = a.End("c1", At(3));
  REQUIRE(t);
  CHECK(Paths(*t) == std::vector<std::string>{"/etc/ld.so.cache", "/bin/entry"});
}

TEST_CASE("TraceAssembler: CPU is shared by events", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {20, "c2"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", At(0));
  a.Watch("c2", At(0));
  a.Add(Ev(10, 500, "/a", 1));
  a.Add(Ev(20, 600, "/a", 1));
  a.Add(Ev(20, 600, "/b", 1));
  a.Add(Ev(20, 600, "/c", 1));
  a.ChargeCpu(absl::Milliseconds(4));
  a.ChargeCpu(absl::Milliseconds(4));  // no events since: nobody pays
  std::vector<Trace> done = a.EndAll(At(2));
  REQUIRE(done.size() == 2);
  for (const Trace& t : done) {
    CHECK(t.cpu == (t.container == "c1" ? absl::Milliseconds(1) : absl::Milliseconds(3)));
    CHECK(t.end_reason == TraceEnd::kShutdown);
  }
}

TEST_CASE("AttributeLayers: by inode, top-down, upperdir files and vanished inodes are dropped",
          "[hbcsa][tracer]") {
  // dir -> rel -> (dev, ino)
  std::map<std::string, std::map<std::string, std::pair<uint64_t, uint64_t>>> fs;
  fs["up"]["tmp/out"] = {7, 50};
  fs["up"]["etc/conf"] = {7, 51};        // copied up after it was read from L2
  fs["L2"]["etc/conf"] = {7, 21};
  fs["L2"]["bin/app"] = {7, 22};
  fs["L1"]["bin/app"] = {7, 11};         // hidden by L2's
  fs["L1"]["lib/libc"] = {8, 12};        // a layer on the other tier
  IdentifyFn identify = [&](const std::string& dir, const std::string& rel)
      -> std::optional<std::pair<uint64_t, uint64_t>> {
    auto d = fs.find(dir);
    if (d == fs.end()) return std::nullopt;
    auto f = d->second.find(rel);
    if (f == d->second.end()) return std::nullopt;
    return f->second;
  };
  Trace t;
  auto add = [&](std::string p, uint64_t dev, uint64_t ino) {
    TraceFile f;
    f.path = std::move(p);
    f.dev = dev;
    f.ino = ino;
    t.files.push_back(f);
  };
  add("/bin/app", 7, 22);
  add("/lib/libc", 8, 12);
  add("/etc/conf", 7, 21);
  add("/tmp/out", 7, 50);
  add("/gone", 7, 99);
  RootfsChain chain{"up", {{"s2", "L2"}, {"s1", "L1"}}};
  AttributeLayers(chain, identify, &t);
  REQUIRE(t.files.size() == 3);
  CHECK(t.files[0].layer == "s2");
  CHECK(t.files[1].layer == "s1");
  CHECK(t.files[2].layer == "s2");
  CHECK(t.dropped_upper == 1);
  CHECK(t.dropped_unresolved == 1);
}

TEST_CASE("Tracer: container id from /proc/<pid>/cgroup", "[hbcsa][tracer]") {
  CHECK(CgroupPathFromProcText("0::/default/abc\n") == "/default/abc");
  CHECK(CgroupPathFromProcText("4:memory:/m/x\n8:pids:/default/abc\n0::/\n") == "/default/abc");
  CHECK(CgroupPathFromProcText("0::/\n") == std::nullopt);
  CHECK(ContainerIdFromCgroupPath("/default/abc") == "abc");
  CHECK(ContainerIdFromCgroupPath("/kubepods.slice/kubepods-pod1.slice/cri-containerd-0123ab.scope") ==
        "0123ab");
  CHECK(ContainerIdFromCgroupPath("/system.slice/containerd.service/kubepods-pod1.slice:cri-containerd:0123ab") ==
        "0123ab");
}

}  // namespace
}  // namespace ndocker::hbcsa
