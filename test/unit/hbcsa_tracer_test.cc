// TraceAssembler with a fake clock and a fake pid look-up; FillSizes,
// SplitLayerPath and the cgroup parsing.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "hbcsa/tracer/layer_path.h"
#include "hbcsa/tracer/trace_assembler.h"
#include "hbcsa/tracer/tracer.h"

namespace ndocker::hbcsa {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000000);
absl::Time At(double s) { return kT0 + absl::Seconds(s); }

class FakeLookup : public TraceLookup {
 public:
  std::map<int32_t, std::string> pid_container;
  int pid_calls = 0;
  std::optional<std::string> ContainerOfPid(int32_t pid) override {
    ++pid_calls;
    auto it = pid_container.find(pid);
    if (it == pid_container.end()) return std::nullopt;
    return it->second;
  }
};

// Image A: layers A2 (top), base; image B: B2, base. Containers' uppers up-<c>.
RootfsChain ChainA(const std::string& c) { return RootfsChain{"/t/up-" + c, {{"a2", "/t/A2"}, {"base", "/t/base"}}}; }
RootfsChain ChainB(const std::string& c) { return RootfsChain{"/t/up-" + c, {{"b2", "/t/B2"}, {"base", "/t/base"}}}; }

TraceEvent Ev(int32_t pid, std::string layer_dir, std::string path, double t) {
  TraceEvent e;
  e.pid = pid;
  e.layer_dir = std::move(layer_dir);
  e.path = std::move(path);
  e.time = At(t);
  e.mask = 0x20;
  return e;
}

std::vector<std::string> Paths(const Trace& t) {
  std::vector<std::string> p;
  for (const TraceFile& f : t.files) p.push_back(f.path);
  return p;
}

TEST_CASE("TraceAssembler: dedup, first-access order, layer, quiet end", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container[10] = "c1";
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  a.Add(Ev(10, "/t/base", "/bin/sh", 5.0));
  a.Add(Ev(10, "/t/base", "/lib/ld.so", 5.1));
  a.Add(Ev(10, "/t/base", "/bin/sh", 5.2));
  a.Add(Ev(10, "/t/A2", "/etc/conf", 5.3));
  a.Add(Ev(10, "/t/base", "/lib/ld.so", 6.0));  // a repeat is not "new"
  CHECK(a.Tick(At(7.0)).empty());               // 1.7 s after the last new file
  std::vector<Trace> done = a.Tick(At(7.31));
  REQUIRE(done.size() == 1);
  const Trace& t = done[0];
  CHECK(t.container == "c1");
  CHECK(Paths(t) == std::vector<std::string>{"/bin/sh", "/lib/ld.so", "/etc/conf"});
  CHECK(t.files[0].layer == "base");
  CHECK(t.files[2].layer == "a2");
  CHECK(t.files[2].layer_dir == "/t/A2");
  CHECK(t.end_reason == TraceEnd::kQuiet);
  CHECK(t.complete);
  CHECK(t.events == 5);
  CHECK(t.start == At(5.0));
  CHECK(t.files[2].first_access == absl::Milliseconds(300));
  CHECK(a.open_traces() == 0);
  // Events after the end are not traced.
  a.Add(Ev(10, "/t/base", "/late", 8));
  CHECK(a.stats().unattributed == 1);
}

TEST_CASE("TraceAssembler: the limit ends a trace that keeps opening new files",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container[10] = "c1";
  AssemblerOptions o;
  o.limit = absl::Seconds(30);
  TraceAssembler a(o, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  std::vector<Trace> done;
  for (int i = 0; i < 40 && done.empty(); ++i) {
    a.Add(Ev(10, "/t/base", "/f" + std::to_string(i), 1.0 + i));
    done = a.Tick(At(1.0 + i + 0.5));
  }
  REQUIRE(done.size() == 1);
  CHECK(done[0].end_reason == TraceEnd::kLimit);
  CHECK(done[0].files.size() == 30);  // f0 at 1 s .. f29 at 30 s, ended at 31.5 s
}

TEST_CASE("TraceAssembler: max_files caps a trace and marks it incomplete", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container[10] = "c1";
  AssemblerOptions o;
  o.max_files = 2;
  TraceAssembler a(o, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  for (int i = 0; i < 4; ++i) a.Add(Ev(10, "/t/base", "/f" + std::to_string(i), 1.0));
  std::optional<Trace> t = a.End("c1", At(2));
  REQUIRE(t);
  CHECK(Paths(*t) == std::vector<std::string>{"/f0", "/f1"});
  CHECK_FALSE(t->complete);
}

TEST_CASE("TraceAssembler: a watched container that never opens anything is given up",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
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
  a.Watch("c1", ChainA("c1"), At(0));
  a.Watch("c2", ChainA("c2"), At(0));
  a.Add(Ev(10, "/t/base", "/a", 1));
  a.Overflow();
  a.Watch("c3", ChainB("c3"), At(1.5));
  lk.pid_container[30] = "c3";
  a.Add(Ev(30, "/t/B2", "/x", 1.6));
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
  a.Watch("c1", ChainA("c1"), At(0));
  a.Watch("c2", ChainB("c2"), At(0));
  a.Add(Ev(10, "/t/base", "/bin/sh", 1.0));  // the shared base: by pid
  a.Add(Ev(20, "/t/base", "/bin/sh", 1.0));
  a.Add(Ev(11, "/t/A2", "/etc/c1only", 1.1));
  a.Add(Ev(20, "/t/B2", "/etc/c2only", 1.2));
  a.Add(Ev(20, "/t/base", "/lib/libc", 1.3));
  std::vector<Trace> done = a.Tick(At(5));
  REQUIRE(done.size() == 2);
  std::map<std::string, std::vector<std::string>> by;
  for (const Trace& t : done) {
    by[t.container] = Paths(t);
    CHECK(t.complete);
  }
  CHECK(by["c1"] == std::vector<std::string>{"/bin/sh", "/etc/c1only"});
  CHECK(by["c2"] == std::vector<std::string>{"/bin/sh", "/etc/c2only", "/lib/libc"});
}

TEST_CASE("TraceAssembler: upperdir files, other snapshots and unwatched containers are dropped",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {99, "other"}, {1, "containerd.service"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  a.Add(Ev(10, "/t/up-c1", "/tmp/out", 1.0));     // its own writes
  a.Add(Ev(1, "/t/unpacking", "/usr/lib/x", 1.0));  // containerd applying a layer
  a.Add(Ev(99, "/t/other-layer", "/u", 1.0));      // an unwatched container
  a.Add(Ev(10, "/t/B2", "/etc/b", 1.1));           // c1's pid, not its chain
  a.Add(Ev(10, "/t/base", "/bin/sh", 1.2));
  CHECK(a.stats().unattributed == 2);
  CHECK(a.stats().outside_chain == 1);
  std::optional<Trace> t = a.End("c1", At(3));
  REQUIRE(t);
  CHECK(Paths(*t) == std::vector<std::string>{"/bin/sh"});
  CHECK(t->dropped_upper == 1);
}

TEST_CASE("TraceAssembler: opens by a host process or a pid already gone are tied by the layer",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {4242, "containerd-shim"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  a.Watch("c2", ChainB("c2"), At(0));
  a.Add(Ev(4242, "/t/A2", "/etc/ld.so.cache", 1.0));  // a hook through c1's rootfs
  a.Add(Ev(10, "/t/base", "/bin/entry", 1.1));
  a.Add(Ev(11, "/t/A2", "/usr/bin/short", 1.15));     // pid 11 exited: no cgroup
  a.Add(Ev(12, "/t/base", "/lib/shared", 1.2));       // base is in both images
  std::optional<Trace> c1 = a.End("c1", At(3));
  std::optional<Trace> c2 = a.End("c2", At(3));
  REQUIRE((c1 && c2));
  CHECK(Paths(*c1) == std::vector<std::string>{"/etc/ld.so.cache", "/bin/entry", "/usr/bin/short"});
  CHECK(a.stats().by_layer == 2);
  // Nobody can say whose /lib/shared was: both may be short, and say so.
  CHECK(a.stats().ambiguous == 1);
  CHECK_FALSE(c1->complete);
  CHECK_FALSE(c2->complete);
  CHECK(c2->files.empty());
}

TEST_CASE("TraceAssembler: host reads before the container's first open do not start its clock",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {4242, "containerd"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  // CRI's CreateContainer reads /etc/passwd and /etc/group on the host...
  a.Add(Ev(4242, "/t/base", "/etc/passwd", 1.0));
  a.Add(Ev(4242, "/t/base", "/etc/group", 1.0));
  // ...and StartContainer comes 5 s later (a quiet period is 2 s).
  CHECK(a.Tick(At(5.9)).empty());
  a.Add(Ev(10, "/t/A2", "/app/run", 6.0));
  CHECK(a.Tick(At(7.0)).empty());
  std::vector<Trace> done = a.Tick(At(8.1));
  REQUIRE(done.size() == 1);
  CHECK(Paths(done[0]) == std::vector<std::string>{"/etc/passwd", "/etc/group", "/app/run"});
  CHECK(done[0].start == At(6.0));
  CHECK(done[0].end_reason == TraceEnd::kQuiet);
}

TEST_CASE("TraceAssembler: without a pid, containers of one image share the open",
          "[hbcsa][tracer]") {
  FakeLookup lk;
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  a.Watch("c2", ChainA("c2"), At(0));
  a.Add(Ev(77, "/t/base", "/lib/libc", 1.0));
  std::vector<Trace> done = a.EndAll(At(2));
  REQUIRE(done.size() == 2);
  size_t files = 0;
  for (const Trace& t : done) {
    files += t.files.size();
    CHECK(t.complete);  // either way the image's profile gets it
  }
  CHECK(files == 1);
  CHECK(a.stats().ambiguous == 0);
}

TEST_CASE("TraceAssembler: CPU is shared by events", "[hbcsa][tracer]") {
  FakeLookup lk;
  lk.pid_container = {{10, "c1"}, {20, "c2"}};
  TraceAssembler a(AssemblerOptions{}, &lk);
  a.Watch("c1", ChainA("c1"), At(0));
  a.Watch("c2", ChainA("c2"), At(0));
  a.Add(Ev(10, "/t/base", "/a", 1));
  a.Add(Ev(20, "/t/base", "/a", 1));
  a.Add(Ev(20, "/t/base", "/b", 1));
  a.Add(Ev(20, "/t/base", "/c", 1));
  a.ChargeCpu(absl::Milliseconds(4));
  a.ChargeCpu(absl::Milliseconds(4));  // no events since: nobody pays
  std::vector<Trace> done = a.EndAll(At(2));
  REQUIRE(done.size() == 2);
  for (const Trace& t : done) {
    CHECK(t.cpu == (t.container == "c1" ? absl::Milliseconds(1) : absl::Milliseconds(3)));
    CHECK(t.end_reason == TraceEnd::kShutdown);
  }
}

TEST_CASE("FillSizes: sizes from the layer, files gone from it are dropped", "[hbcsa][tracer]") {
  std::map<std::pair<std::string, std::string>, int64_t> files = {{{"L2", "bin/app"}, 4096},
                                                                  {{"L1", "lib/libc"}, 1 << 20}};
  SizeFn size_of = [&](const std::string& dir, const std::string& rel) -> std::optional<int64_t> {
    auto it = files.find({dir, rel});
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  Trace t;
  for (auto [path, dir] : {std::pair{"/bin/app", "L2"}, {"/lib/libc", "L1"}, {"/gone", "L1"}}) {
    TraceFile f;
    f.path = path;
    f.layer_dir = dir;
    t.files.push_back(f);
  }
  FillSizes(size_of, &t);
  REQUIRE(t.files.size() == 2);
  CHECK(t.files[0].size == 4096);
  CHECK(t.files[1].size == 1 << 20);
  CHECK(t.dropped_unresolved == 1);
}

TEST_CASE("SplitLayerPath: a file beneath a snapshot's fs dir, nothing else", "[hbcsa][tracer]") {
  const std::vector<std::string> roots = {"/n/fast", "/n/slow"};
  std::optional<LayerPath> p = SplitLayerPath(roots, "/n/slow/snapshots/12-1/fs/usr/bin/env");
  REQUIRE(p);
  CHECK(p->layer_dir == "/n/slow/snapshots/12-1/fs");
  CHECK(p->path == "/usr/bin/env");
  p = SplitLayerPath(roots, "/n/fast/snapshots/3/fs/x");
  REQUIRE(p);
  CHECK(p->path == "/x");
  CHECK_FALSE(SplitLayerPath(roots, "/n/fast/snapshots/3/work/x"));
  CHECK_FALSE(SplitLayerPath(roots, "/n/fast/staging/3-1-abc/fs/x"));
  CHECK_FALSE(SplitLayerPath(roots, "/n/fastx/snapshots/3/fs/x"));
  CHECK_FALSE(SplitLayerPath(roots, "/n/fast/snapshots/3/fs"));
  CHECK_FALSE(SplitLayerPath(roots, "/other/snapshots/3/fs/x"));
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

TEST_CASE("ProcLookup: a process gone before its cgroup is read is named by its parent's",
          "[hbcsa][tracer]") {
  std::map<int32_t, std::string> alive = {{10, "0::/default/c1\n"}, {20, "0::/\n"}};
  ProcLookup lookup([&](int32_t pid) {
    auto it = alive.find(pid);
    return it == alive.end() ? std::string() : it->second;
  });
  const absl::Time t0 = absl::Now();
  CHECK(lookup.ContainerOfPid(10) == "c1");
  CHECK(lookup.ContainerOfPid(20) == std::nullopt);  // the host
  CHECK(lookup.ContainerOfPid(99) == std::nullopt);  // gone, fork never seen

  // c1's shell (10) forks a cat (11), which forks (12); both gone at once.
  lookup.OnFork(Fork{10, 11}, t0);
  lookup.OnFork(Fork{11, 12}, t0);
  CHECK(lookup.ContainerOfPid(12) == "c1");
  CHECK(lookup.ContainerOfPid(11) == "c1");
  CHECK(lookup.by_parent() == 2);

  // A host process's short-lived child stays the host's.
  lookup.OnFork(Fork{20, 21}, t0);
  CHECK(lookup.ContainerOfPid(21) == std::nullopt);

  // The parent gone too: what it was when last seen alive.
  alive.erase(10);
  lookup.OnFork(Fork{10, 13}, t0);
  CHECK(lookup.ContainerOfPid(13) == "c1");

  // A reused pid is the new process: its old answer is forgotten at the fork.
  alive[30] = "0::/default/c2\n";
  CHECK(lookup.ContainerOfPid(30) == "c2");
  alive.erase(30);
  lookup.OnFork(Fork{20, 30}, t0);
  CHECK(lookup.ContainerOfPid(30) == std::nullopt);

  // A cycle in a corrupt history ends.
  lookup.OnFork(Fork{41, 40}, t0);
  lookup.OnFork(Fork{40, 41}, t0);
  CHECK(lookup.ContainerOfPid(40) == std::nullopt);
}

}  // namespace
}  // namespace ndocker::hbcsa
