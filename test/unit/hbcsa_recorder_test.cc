// The cold-start recorder's rules: which containers it has traced, what a
// trace becomes in the image's profile, and when the hot layer builder is
// told. A fake stands in for the fanotify tracer; the profiles are real
// (LMDB in a temp dir).
#include "hbcsa/recorder/cold_start_recorder.h"

#include <catch2/catch.hpp>

#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

const std::string kImage = "sha256:" + std::string(64, 'a');
const std::string kTop = "sha256:" + std::string(64, 'b');
const std::string kBase = "sha256:" + std::string(64, 'c');

class FakeWatch : public ContainerWatch {
 public:
  void WatchContainer(const std::string& container, RootfsChain chain) override {
    watched.emplace_back(container, std::move(chain));
  }
  void ContainerGone(const std::string& container) override { gone.push_back(container); }
  std::vector<std::pair<std::string, RootfsChain>> watched;
  std::vector<std::string> gone;
};

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<MetaStore> meta;
  std::unique_ptr<ProfileStore> profiles;
  FakeWatch watch;
  ColdStartRecorder recorder{[](const std::string& top) { return top == kTop ? kImage : ""; }};
  std::vector<std::string> told;

  Fixture() {
    auto m = MetaStore::Open(dir.path());
    REQUIRE(m.ok());
    meta = *std::move(m);
    profiles = std::make_unique<ProfileStore>(*meta, 100);
    recorder.OnProfileRecorded([this](const std::string& image) { told.push_back(image); });
    recorder.Attach(&watch, profiles.get());
  }

  // The core's report of a container rootfs over the image's two layers.
  static RootfsPrepared Rootfs(const std::string& container, uint64_t shared_lower) {
    RootfsPrepared r;
    r.key = "default/9/" + container;
    r.upper_dir = "/fast/snapshots/9/fs";
    r.lowers = {{"default/4/" + kTop, "/slow/snapshots/4/fs"}, {"default/2/" + kBase, "/slow/snapshots/2/fs"}};
    r.shared_lower = shared_lower;
    return r;
  }

  static Trace TraceOf(const std::string& container, std::vector<std::string> paths,
                       TraceEnd end = TraceEnd::kQuiet) {
    Trace t;
    t.container = container;
    t.end_reason = end;
    for (const std::string& p : paths) t.files.push_back(TraceFile{p, kTop, "/slow/snapshots/4/fs", 10, 0, {}});
    return t;
  }

  RootfsChain ChainOf(const std::string& container) const {
    for (const auto& [c, chain] : watch.watched) {
      if (c == container) return chain;
    }
    FAIL("not watched: " << container);
    return {};
  }

  Profile Current() {
    auto p = profiles->Get(kImage);
    REQUIRE(p.ok());
    REQUIRE(p->has_value());
    return **p;
  }
};

TEST_CASE("recorder: a container on the layer chain is traced and its start becomes a run",
          "[hbcsa][recorder]") {
  Fixture f;
  f.recorder.RootfsPrepared(Fixture::Rootfs("c1", 0));
  REQUIRE(f.watch.watched.size() == 1);
  const RootfsChain chain = f.ChainOf("c1");
  REQUIRE(chain.lowers.size() == 2);
  CHECK(chain.lowers[0].id == kTop);  // layers named by chainID, top first
  CHECK(chain.lowers[1].id == kBase);
  CHECK(f.recorder.TracingTops().contains(kTop));

  f.recorder.OnTrace(Fixture::TraceOf("c1", {"/bin/sh", "/app/a"}), chain);
  CHECK(f.recorder.TracingTops().empty());
  const Profile p = f.Current();
  CHECK(p.runs == 1);
  CHECK(p.files.size() == 2);
  CHECK(p.top_chain == kTop);
  CHECK(f.told == std::vector<std::string>{kImage});
}

TEST_CASE("recorder: a container that never started records nothing", "[hbcsa][recorder]") {
  Fixture f;
  f.recorder.RootfsPrepared(Fixture::Rootfs("c1", 0));
  f.recorder.OnTrace(Fixture::TraceOf("c1", {"/etc/hosts"}, TraceEnd::kNeverStarted), f.ChainOf("c1"));
  auto p = f.profiles->Get(kImage);
  REQUIRE(p.ok());
  CHECK_FALSE(p->has_value());
  CHECK(f.told.empty());
}

TEST_CASE("recorder: the opt-out label keeps a container untraced", "[hbcsa][recorder]") {
  Fixture f;
  RootfsPrepared r = Fixture::Rootfs("c1", 0);
  r.labels[kTraceLabel] = "false";
  f.recorder.RootfsPrepared(r);
  CHECK(f.watch.watched.empty());
  CHECK(f.recorder.TracingTops().empty());
}

TEST_CASE("recorder: a container over a hot layer is traced for the hot layer's misses",
          "[hbcsa][recorder]") {
  Fixture f;
  f.recorder.RootfsPrepared(Fixture::Rootfs("first", 0));
  f.recorder.OnTrace(Fixture::TraceOf("first", {"/bin/sh", "/app/a"}), f.ChainOf("first"));
  const uint64_t v1 = f.Current().version;
  f.told.clear();

  SECTION("watched with the image's layers, but not shown as tracing the image") {
    f.recorder.RootfsPrepared(Fixture::Rootfs("hot1", 7));
    CHECK(f.ChainOf("hot1").lowers.size() == 2);
    // `ndockerctl images` says "tracing" only for first starts: a trace of
    // misses can stay open for a long-running container.
    CHECK(f.recorder.TracingTops().empty());
  }
  SECTION("no misses: no run, the builder is not told") {
    f.recorder.RootfsPrepared(Fixture::Rootfs("hot1", 7));
    // Removed first, as with `ctr run --rm`: the tracer's OnTrace comes after.
    f.recorder.Removed("default/9/hot1", Kind::kActive);
    f.recorder.OnTrace(Fixture::TraceOf("hot1", {}, TraceEnd::kNeverStarted), f.ChainOf("hot1"));
    CHECK(f.Current().runs == 1);
    CHECK(f.Current().version == v1);
    CHECK(f.told.empty());
  }
  SECTION("misses join the profile as a new version and the builder is told") {
    f.recorder.RootfsPrepared(Fixture::Rootfs("hot1", 7));
    f.recorder.OnTrace(Fixture::TraceOf("hot1", {"/app/rare"}), f.ChainOf("hot1"));
    const Profile p = f.Current();
    CHECK(p.runs == 2);
    CHECK(p.version == v1 + 1);
    REQUIRE(p.files.size() == 3);
    CHECK(p.files[2].path == "/app/rare");
    CHECK(f.told == std::vector<std::string>{kImage});
  }
  SECTION("misses already in the profile: a run, but the builder is not told") {
    f.recorder.RootfsPrepared(Fixture::Rootfs("hot1", 7));
    // Another container's misses got there first (its hot layer is being
    // built). Removed before its trace ends, as with `ctr run --rm`: still
    // known as a trace over a hot layer.
    f.recorder.Removed("default/9/hot1", Kind::kActive);
    f.recorder.OnTrace(Fixture::TraceOf("hot1", {"/app/a"}), f.ChainOf("hot1"));
    CHECK(f.Current().runs == 2);
    CHECK(f.Current().version == v1);
    CHECK(f.told.empty());
  }
  SECTION("never started: host reads (a hook's) are not misses") {
    f.recorder.RootfsPrepared(Fixture::Rootfs("hot1", 7));
    f.recorder.OnTrace(Fixture::TraceOf("hot1", {"/app/rare"}, TraceEnd::kNeverStarted), f.ChainOf("hot1"));
    CHECK(f.Current().runs == 1);
    CHECK(f.Current().version == v1);
    CHECK(f.told.empty());
  }
}

TEST_CASE("recorder: removal of an active snapshot tells the tracer the container is gone",
          "[hbcsa][recorder]") {
  Fixture f;
  f.recorder.RootfsPrepared(Fixture::Rootfs("c1", 0));
  f.recorder.Removed("default/9/c1", Kind::kActive);
  CHECK(f.watch.gone == std::vector<std::string>{"c1"});
  CHECK(f.recorder.TracingTops().empty());
  // The tracer ends the trace after the removal (on its own thread).
  f.recorder.OnTrace(Fixture::TraceOf("c1", {"/bin/sh"}), f.ChainOf("c1"));
  CHECK(f.Current().runs == 1);
  f.recorder.Removed("default/4/" + kTop, Kind::kCommitted);
  CHECK(f.watch.gone.size() == 1);
}

}  // namespace
}  // namespace ndocker::hbcsa
