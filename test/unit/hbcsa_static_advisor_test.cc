// Static analysis as a placement input: the worker follows scripted pull
// sessions over a real content store; Advise answers from its cache. And the
// composite advisor's ordering.
#include "hbcsa/static_advisor.h"

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "hbcsa/composite_advisor.h"
#include "hbcsa_blobs.h"
#include "lass/image_json.h"
#include "temp_dir.h"

namespace ndocker::hbcsa {
namespace {

using namespace ndocker::hbcsa::testing;  // NOLINT

struct Image {
  std::string manifest;
  std::string config;
  std::vector<BuiltLayer> layers;
  std::vector<std::string> chains;

  lass::PullSession Session(std::vector<bool> done) const {
    lass::PullSession s;
    s.manifest_digest = manifest;
    s.config_digest = config;
    s.config_read = true;
    for (size_t i = 0; i < layers.size(); ++i) {
      lass::LayerProgress p;
      p.digest = layers[i].digest;
      p.diff_id = layers[i].diff_id;
      p.chain_id = chains[i];
      p.size = layers[i].size;
      p.state = done[i] ? lass::BlobState::kDone : lass::BlobState::kWaiting;
      s.layers.push_back(p);
    }
    return s;
  }
};

Image MakeImage(const std::string& root, std::vector<BuiltLayer> layers, const std::vector<std::string>& history,
                const nlohmann::json& config) {
  Image img;
  img.layers = std::move(layers);
  img.manifest = PutImage(root, img.layers, ConfigJson(img.layers, history, config), &img.config);
  std::vector<std::string> diffs;
  for (const BuiltLayer& l : img.layers) diffs.push_back(l.diff_id);
  img.chains = *lass::ChainIds(diffs);
  return img;
}

// base, python, app (COPY), corrupt
Image PythonImage(const std::string& root) {
  std::vector<BuiltLayer> layers;
  layers.push_back(PutLayer(root, {Exe("bin/busybox"), Symlink("bin/sh", "busybox"), File("etc/passwd")}));
  layers.push_back(PutLayer(root, {Exe("usr/bin/python3.11"), Symlink("usr/bin/python3", "python3.11"),
                                   File("usr/lib/python3.11/os.py")},
                            Compression::kZstd));
  layers.push_back(PutLayer(root, {File("app/app.py", "print('hi')")}));
  BuiltLayer corrupt;
  corrupt.diff_id = Sha256Digest("corrupt");
  corrupt.digest = PutBlob(root, std::string(2048, '\x7f'));
  corrupt.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  corrupt.size = 2048;
  layers.push_back(corrupt);
  return MakeImage(root, layers,
                   {"/bin/sh -c #(nop) ADD file:0 in / ", "RUN apt-get install -y python3",
                    "COPY app.py /app/ # buildkit", "RUN make"},
                   {{"Cmd", {"python3", "app.py"}}, {"WorkingDir", "/app"}});
}

PlacementRequest Unpack(const std::string& chain) {
  PlacementRequest r;
  r.key = "default/1/extract-1 " + chain;
  r.kind = Kind::kActive;
  r.unpack_chain_id = chain;
  return r;
}

TEST_CASE("hbcsa: the static advisor follows a pull and answers from memory", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image img = PythonImage(dir.path());
  std::vector<lass::PullSession> sessions = {img.Session({true, true, false, false})};
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  StaticAdvisor advisor(o);

  // Nothing analysed yet: no opinion on anything.
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[1])).has_value());

  CHECK(advisor.PollOnce());
  // Blobs 0 and 1 are read; 2 and 3 are still downloading.
  auto base = advisor.Verdict(img.chains[0]);
  REQUIRE(base.has_value());
  CHECK(base->layer_class == LayerClass::kBase);
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[0])).has_value());

  auto engine = advisor.Advise(Unpack(img.chains[1]));
  REQUIRE(engine.has_value());
  CHECK(engine->tier == Tier::kFast);
  CHECK(engine->rule == kRuleStaticEngine);
  CHECK(absl::StrContains(engine->reason, "layer 1 of image " + img.manifest.substr(7, 12) + " is engine"));
  CHECK(absl::StrContains(engine->reason, "cmd python3 resolves to /usr/bin/python3.11 in this layer"));
  CHECK(engine->expected_bytes == 2 * 4096);  // two small files, a block each

  // The COPY step is known from the history before its blob is complete.
  auto app = advisor.Advise(Unpack(img.chains[2]));
  REQUIRE(app.has_value());
  CHECK(app->rule == kRuleStaticApp);
  CHECK(absl::StrContains(app->reason, "from the history; file list not read yet"));
  CHECK(absl::StrContains(app->reason, "history: COPY app.py /app/"));
  CHECK(app->expected_bytes == img.layers[2].size * kUnreadUnpackRatio);  // not read: from the compressed size
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[3])).has_value());
  REQUIRE(advisor.Analysis(img.manifest).has_value());
  CHECK_FALSE(advisor.Analysis(img.manifest)->complete);

  sessions = {img.Session({true, true, true, true})};
  CHECK(advisor.PollOnce());
  app = advisor.Advise(Unpack(img.chains[2]));
  REQUIRE(app.has_value());
  CHECK_FALSE(absl::StrContains(app->reason, "not read yet"));
  CHECK(absl::StrContains(app->reason, "cmd script app.py resolves to /app/app.py in this layer"));
  CHECK(app->expected_bytes == 4096);
  // The corrupt blob is unknown, the rest unharmed.
  auto corrupt = advisor.Verdict(img.chains[3]);
  REQUIRE(corrupt.has_value());
  CHECK(corrupt->layer_class == LayerClass::kUnknown);
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[3])).has_value());
  CHECK(advisor.Verdict(img.chains[1])->layer_class == LayerClass::kEngine);
  auto analysis = advisor.Analysis(img.manifest);
  REQUIRE(analysis.has_value());
  CHECK(analysis->complete);

  // Done: nothing more to do, the result stays.
  CHECK_FALSE(advisor.PollOnce());
  CHECK(advisor.Advise(Unpack(img.chains[1])).has_value());

  // Not an unpack, or a chain nobody analysed: no opinion.
  PlacementRequest rootfs;
  rootfs.key = "default/9/container";
  CHECK_FALSE(advisor.Advise(rootfs).has_value());
  CHECK_FALSE(advisor.Advise(Unpack("sha256:" + std::string(64, 'f'))).has_value());
  advisor.Committed(CommitReport{});
}

TEST_CASE("hbcsa: once the image has a cold-start trace, static analysis keeps nothing fast", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image img = PythonImage(dir.path());
  std::vector<lass::PullSession> sessions = {img.Session({true, true, true, true})};
  std::set<std::string> traced;
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  o.has_trace = [&traced](const std::string& manifest) { return traced.count(manifest) > 0; };
  StaticAdvisor advisor(o);
  CHECK(advisor.PollOnce());
  REQUIRE(advisor.Advise(Unpack(img.chains[1])).has_value());
  traced.insert(img.manifest);
  // The verdict stays (ndockerctl plan shows it); the placement is LASS's.
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[1])).has_value());
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[2])).has_value());
  CHECK(advisor.Verdict(img.chains[1])->layer_class == LayerClass::kEngine);
}

TEST_CASE("hbcsa: a pull whose other blobs never come keeps its partial analysis", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image img = PythonImage(dir.path());
  std::vector<lass::PullSession> sessions = {img.Session({true, true, false, false})};
  absl::Time now = absl::FromUnixSeconds(1700000000);
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  o.clock = [&now] { return now; };
  StaticAdvisor advisor(o);
  CHECK(advisor.PollOnce());
  now += absl::Minutes(1);
  CHECK_FALSE(advisor.PollOnce());
  now += absl::Minutes(2);
  CHECK_FALSE(advisor.PollOnce());  // idle: its file lists are dropped, the analysis stays
  CHECK_FALSE(advisor.PollOnce());  // and it is not started over
  CHECK(advisor.Verdict(img.chains[1])->layer_class == LayerClass::kEngine);
  CHECK(advisor.Verdict(img.chains[2])->provisional);
  // A blob that arrives after all starts it over.
  sessions = {img.Session({true, true, true, false})};
  CHECK(advisor.PollOnce());
  CHECK_FALSE(advisor.Verdict(img.chains[2])->provisional);
  CHECK(advisor.Verdict(img.chains[1])->layer_class == LayerClass::kEngine);
}

TEST_CASE("hbcsa: a layer shared by two images takes the strongest verdict", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image a = PythonImage(dir.path());
  // Same bottom layer, made by a COPY (FROM scratch) in this image, which runs busybox from it.
  const Image b = MakeImage(dir.path(), {a.layers[0]}, {"COPY busybox /bin/ # buildkit"},
                            {{"Cmd", {"/bin/busybox", "httpd"}}});
  REQUIRE(a.chains[0] == b.chains[0]);
  std::vector<lass::PullSession> sessions = {a.Session({true, true, true, true}), b.Session({true})};
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  StaticAdvisor advisor(o);
  advisor.PollOnce();
  auto v = advisor.Verdict(a.chains[0]);
  REQUIRE(v.has_value());
  CHECK(v->layer_class == LayerClass::kApplication);
  CHECK(v->manifest_digest == b.manifest);
  auto p = advisor.Advise(Unpack(a.chains[0]));
  REQUIRE(p.has_value());
  CHECK(p->rule == kRuleStaticApp);
}

TEST_CASE("hbcsa: missing config and vanished blobs", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  Image img = PythonImage(dir.path());
  std::vector<lass::PullSession> sessions = {img.Session({true, true, true, true})};
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  StaticAdvisor advisor(o);

  // The config is not in the store (yet): nothing to say, try again later.
  const std::string config_path = dir.path() + "/blobs/sha256/" + img.config.substr(7);
  const std::string moved = config_path + ".away";
  std::filesystem::rename(config_path, moved);
  CHECK_FALSE(advisor.PollOnce());
  CHECK_FALSE(advisor.Analysis(img.manifest).has_value());

  // A layer blob removed (discard_unpacked_layers, GC) before it was read.
  std::filesystem::rename(moved, config_path);
  std::filesystem::remove(dir.path() + "/blobs/sha256/" + img.layers[2].digest.substr(7));
  CHECK(advisor.PollOnce());
  auto v = advisor.Verdict(img.chains[2]);
  REQUIRE(v.has_value());
  CHECK(v->layer_class == LayerClass::kUnknown);
  CHECK(absl::StrContains(v->evidence.front().text, "not found"));
  CHECK(advisor.Verdict(img.chains[1])->layer_class == LayerClass::kEngine);
}

TEST_CASE("hbcsa: the worker thread picks up a pull on its own", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image img = PythonImage(dir.path());
  absl::Mutex mu;
  std::vector<lass::PullSession> sessions;
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&] {
    absl::MutexLock lock(&mu);
    return sessions;
  };
  o.poll_interval = absl::Seconds(30);  // only a wake-up makes it look again
  o.worker_nice = 5;
  StaticAdvisor advisor(o);
  {
    absl::MutexLock lock(&mu);
    sessions = {img.Session({true, true, true, true})};
  }
  // An unknown chainID wakes the worker.
  CHECK_FALSE(advisor.Advise(Unpack(img.chains[1])).has_value());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::optional<Placement> p;
  while (!p && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    if (!advisor.Verdict(img.chains[1])) {
      CHECK_FALSE(advisor.Advise(Unpack(img.chains[1])).has_value());
      continue;
    }
    p = advisor.Advise(Unpack(img.chains[1]));
  }
  REQUIRE(p.has_value());
  CHECK(p->rule == kRuleStaticEngine);
}

class FakeAdvisor : public PlacementAdvisor {
 public:
  explicit FakeAdvisor(std::optional<Placement> answer) : answer_(std::move(answer)) {}
  std::optional<Placement> Advise(const PlacementRequest&) override {
    ++asked;
    return answer_;
  }
  void Committed(const CommitReport& r) override { committed.push_back(r.key); }
  void DecidedElsewhere(const PlacementRequest&, const Placement& p) override { told.push_back(p.rule); }
  int asked = 0;
  std::vector<std::string> committed;
  std::vector<std::string> told;  // rules other inputs decided

 private:
  std::optional<Placement> answer_;
};

TEST_CASE("hbcsa: the composite advisor asks in order and tells every commit to all", "[hbcsa]") {
  auto none = std::make_shared<FakeAdvisor>(std::nullopt);
  auto fast = std::make_shared<FakeAdvisor>(Placement{Tier::kFast, "first", "a"});
  auto slow = std::make_shared<FakeAdvisor>(Placement{Tier::kSlow, "second", "b"});
  CompositeAdvisor c({none, nullptr, fast, slow});
  auto p = c.Advise(Unpack("sha256:x"));
  REQUIRE(p.has_value());
  CHECK(p->rule == "first");
  CHECK(none->asked == 1);
  CHECK(fast->asked == 1);
  CHECK(slow->asked == 0);  // never asked once an earlier input decided
  // ...but told what was decided, as is the input that had no opinion.
  CHECK(slow->told == std::vector<std::string>{"first"});
  CHECK(none->told == std::vector<std::string>{"first"});
  CHECK(fast->told.empty());

  CompositeAdvisor reversed({slow, fast});
  CHECK(reversed.Advise(Unpack("sha256:x"))->rule == "second");

  CompositeAdvisor silent({none});
  CHECK_FALSE(silent.Advise(Unpack("sha256:x")).has_value());
  CompositeAdvisor empty({});
  CHECK_FALSE(empty.Advise(Unpack("sha256:x")).has_value());

  CommitReport r;
  r.key = "k1";
  c.Committed(r);
  CHECK(none->committed == std::vector<std::string>{"k1"});
  CHECK(fast->committed == std::vector<std::string>{"k1"});
  CHECK(slow->committed == std::vector<std::string>{"k1"});
}

TEST_CASE("hbcsa: static analysis before LASS: fast if either says fast", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const Image img = PythonImage(dir.path());
  std::vector<lass::PullSession> sessions = {img.Session({true, true, true, true})};
  StaticAdvisorOptions o;
  o.content_root = dir.path();
  o.sessions = [&sessions] { return sessions; };
  o.start_thread = false;
  auto stat = std::make_shared<StaticAdvisor>(o);
  stat->PollOnce();
  // LASS stand-in: every layer below the LDL goes slow.
  auto lass = std::make_shared<FakeAdvisor>(Placement{Tier::kSlow, "ldl-below", "a later layer downloads longer"});
  CompositeAdvisor c({stat, lass});
  CHECK(c.Advise(Unpack(img.chains[0]))->rule == "ldl-below");      // base: LASS decides
  CHECK(c.Advise(Unpack(img.chains[1]))->rule == kRuleStaticEngine);  // engine: fast
  CHECK(c.Advise(Unpack(img.chains[2]))->rule == kRuleStaticApp);     // application: fast
  CHECK(c.Advise(Unpack(img.chains[3]))->rule == "ldl-below");      // unknown: LASS decides
  CHECK(lass->asked == 2);
  CHECK(lass->told == std::vector<std::string>{kRuleStaticEngine, kRuleStaticApp});
}

}  // namespace
}  // namespace ndocker::hbcsa
