// The content tracker driven through pull timelines with a fake clock.
#include "lass/content_tracker.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lass/digest.h"

namespace ndocker::lass {
namespace {

std::string Digest(const std::string& seed) { return "sha256:" + *Sha256Hex(seed); }

struct Layer {
  std::string digest;
  int64_t size;
  std::string diff_id;
};

Layer MakeLayer(const std::string& name, int64_t size) {
  return Layer{Digest("blob:" + name), size, Digest("diff:" + name)};
}

std::string ManifestJson(const std::string& config_digest, const std::vector<Layer>& layers) {
  std::string out = absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1234,"digest":")",
      config_digest, R"("},"layers":[)");
  for (size_t i = 0; i < layers.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "",
                    R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":)",
                    layers[i].size, R"(,"digest":")", layers[i].digest, R"("})");
  }
  return out + "]}";
}

std::string ConfigJson(const std::vector<Layer>& layers) {
  std::string out = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[)";
  for (size_t i = 0; i < layers.size(); ++i) absl::StrAppend(&out, i ? "," : "", "\"", layers[i].diff_id, "\"");
  return out + "]}}";
}

std::string IndexJson(const std::string& amd64_manifest, const std::string& arm64_manifest) {
  return absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":")",
      arm64_manifest, R"(","platform":{"os":"linux","architecture":"arm64"}},)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":")",
      amd64_manifest, R"(","platform":{"os":"linux","architecture":"amd64"}}]})");
}

std::string IngestName(const std::string& ref) { return *Sha256Hex(ref); }

// Owns a tracker whose clock is `now`, and a few pull steps.
struct Harness {
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  ContentTracker tracker;

  explicit Harness(ContentTrackerOptions o = {}) : tracker(WithClock(std::move(o), &now)) {}
  static ContentTrackerOptions WithClock(ContentTrackerOptions o, absl::Time* clock) {
    o.clock = [clock] { return *clock; };
    o.platform = PlatformFromMachine("x86_64");
    return o;
  }

  void Advance(absl::Duration d) { now += d; }
  void Commit(const std::string& digest, std::optional<std::string> json = std::nullopt) {
    tracker.BlobCommitted(digest, now, std::move(json));
  }
  std::string StartIngest(const std::string& kind, const std::string& digest, int64_t total) {
    std::string ref = absl::StrCat("default/1/", kind, "-", digest);
    std::string name = IngestName(ref);
    tracker.IngestSeen(name, ref, total, now);
    return name;
  }
  // Containerd's commit: the blob appears, then the ingest folder goes.
  void FinishIngest(const std::string& name, const std::string& digest) {
    Commit(digest);
    tracker.IngestGone(name);
  }
  PullSession Session(const std::string& manifest) {
    auto s = tracker.SessionByManifest(manifest);
    REQUIRE(s);
    return *s;
  }
};

TEST_CASE("Tracker follows a pull: manifest, config, layers downloading at different rates", "[lass]") {
  Harness h;
  const std::vector<Layer> layers = {MakeLayer("base", 3'000'000), MakeLayer("app", 30'000'000)};
  const std::string config = Digest("config-A");
  const std::string manifest = Digest("manifest-A");
  const absl::Time t0 = h.now;

  h.Commit(manifest, ManifestJson(config, layers));
  PullSession s = h.Session(manifest);
  CHECK(s.started == t0);
  CHECK(s.config_digest == config);
  CHECK_FALSE(s.config_read);
  REQUIRE(s.layers.size() == 2);
  CHECK(s.layers[0].state == BlobState::kWaiting);
  CHECK(s.layers[1].size == 30'000'000);

  h.Advance(absl::Milliseconds(80));
  h.Commit(config, ConfigJson(layers));
  s = h.Session(manifest);
  REQUIRE(s.config_read);
  CHECK(s.layers[0].diff_id == layers[0].diff_id);
  CHECK(s.layers[0].chain_id == layers[0].diff_id);
  auto chain = ChainIds({layers[0].diff_id, layers[1].diff_id});
  REQUIRE(chain.ok());
  CHECK(s.layers[1].chain_id == (*chain)[1]);

  h.Advance(absl::Milliseconds(20));
  const absl::Time download_start = h.now;
  std::string in0 = h.StartIngest("layer", layers[0].digest, layers[0].size);
  std::string in1 = h.StartIngest("layer", layers[1].digest, layers[1].size);
  s = h.Session(manifest);
  CHECK(s.layers[0].state == BlobState::kDownloading);
  CHECK(s.layers[1].state == BlobState::kDownloading);
  CHECK(s.layers[1].download_start == download_start);

  // 1 MB/s and 4 MB/s, sampled every 50 ms for 1 s.
  int64_t off0 = 0, off1 = 0;
  for (int i = 0; i < 20; ++i) {
    h.Advance(absl::Milliseconds(50));
    off0 += 50'000;
    off1 += 200'000;
    h.tracker.IngestProgress(in0, off0, h.now);
    h.tracker.IngestProgress(in1, off1, h.now);
  }
  s = h.Session(manifest);
  CHECK(s.layers[0].offset == 1'000'000);
  CHECK(s.layers[1].offset == 4'000'000);
  CHECK(s.updated == h.now);
  BandwidthEstimate bw = h.tracker.Bandwidth();
  CHECK(bw.bytes_per_second == Approx(5'000'000).epsilon(0.02));
  CHECK(bw.active_downloads == 2);
  CHECK(bw.max_concurrent_seen == 2);

  const absl::Time base_done = h.now;
  h.FinishIngest(in0, layers[0].digest);
  s = h.Session(manifest);
  CHECK(s.layers[0].state == BlobState::kDone);
  CHECK(s.layers[0].download_end == base_done);
  CHECK(s.layers[0].download_start == download_start);
  CHECK_FALSE(s.layers[0].present_before);
  CHECK(s.layers[0].offset == layers[0].size);
  CHECK(s.layers[1].state == BlobState::kDownloading);

  // The planner's question at Prepare(app): which session has this chain?
  auto by_chain = h.tracker.SessionsWithChain((*chain)[1]);
  REQUIRE(by_chain.size() == 1);
  CHECK(by_chain[0].manifest_digest == manifest);
  CHECK(h.tracker.SessionsWithChain(Digest("nothing")).empty());
}

TEST_CASE("Tracker bandwidth survives samples without change and idle gaps", "[lass]") {
  Harness h;
  const std::string blob = Digest("big");
  std::string in = h.StartIngest("layer", blob, 100'000'000);
  CHECK(h.tracker.Bandwidth().bytes_per_second == 0);  // no measurement yet
  // Data arrives in 400 KB bursts every 200 ms, polled every 50 ms: three of
  // four samples show no change. True rate: 2 MB/s.
  int64_t off = 0;
  for (int i = 1; i <= 60; ++i) {
    h.Advance(absl::Milliseconds(50));
    if (i % 4 == 0) off += 400'000;
    h.tracker.IngestProgress(in, off, h.now);
    if (i >= 44) {  // window (2 s) fully covered
      CHECK(h.tracker.Bandwidth().bytes_per_second == Approx(2'000'000).epsilon(0.15));
    }
  }
  CHECK(h.tracker.Bandwidth().active_downloads == 1);
  // Stalled: the ingest stays (failed download kept for resumption). It stops
  // counting as active, and the last measured rate stands.
  for (int i = 0; i < 60; ++i) {
    h.Advance(absl::Milliseconds(50));
    h.tracker.IngestProgress(in, off, h.now);
  }
  BandwidthEstimate bw = h.tracker.Bandwidth();
  CHECK(bw.active_downloads == 0);
  CHECK(bw.bytes_per_second == Approx(2'000'000).epsilon(0.15));
  CHECK(bw.max_concurrent_seen == 1);
  h.tracker.IngestGone(in);

  // Five minutes later a new pull at 8 MB/s: the idle gap does not dilute it.
  h.Advance(absl::Minutes(5));
  std::string in2 = h.StartIngest("layer", Digest("next"), 50'000'000);
  off = 0;
  for (int i = 0; i < 10; ++i) {
    h.Advance(absl::Milliseconds(50));
    off += 400'000;
    h.tracker.IngestProgress(in2, off, h.now);
  }
  CHECK(h.tracker.Bandwidth().bytes_per_second == Approx(8'000'000).epsilon(0.05));
  h.tracker.IngestGone(in2);
  // max_concurrent_seen is forgotten after concurrency_memory without downloads.
  h.Advance(absl::Minutes(11));
  CHECK(h.tracker.Bandwidth().max_concurrent_seen == 0);
}

TEST_CASE("Tracker does not count an old ingest's bytes as a burst", "[lass]") {
  Harness h;
  // Found at startup: 90 MB written an hour ago.
  std::string ref = "default/1/layer-" + Digest("resumed");
  std::string name = IngestName(ref);
  h.tracker.IngestSeen(name, ref, 100'000'000, h.now - absl::Hours(1));
  h.tracker.IngestProgress(name, 90'000'000, h.now);
  for (int i = 0; i < 10; ++i) {
    h.Advance(absl::Milliseconds(50));
    h.tracker.IngestProgress(name, 90'000'000 + (i + 1) * 100'000, h.now);
  }
  CHECK(h.tracker.Bandwidth().bytes_per_second == Approx(2'000'000).epsilon(0.05));
}

TEST_CASE("Tracker marks blobs present before the manifest as done", "[lass]") {
  Harness h;
  const std::vector<Layer> layers = {MakeLayer("debian", 50'000'000), MakeLayer("nginx", 9'000'000)};
  const absl::Time base_commit = h.now;
  h.Commit(layers[0].digest);  // from an earlier image
  h.Advance(absl::Hours(3));
  const std::string manifest = Digest("manifest-nginx");
  h.Commit(manifest, ManifestJson(Digest("config-nginx"), layers));
  PullSession s = h.Session(manifest);
  CHECK(s.layers[0].state == BlobState::kDone);
  CHECK(s.layers[0].present_before);
  CHECK(s.layers[0].download_end == base_commit);
  CHECK(s.layers[1].state == BlobState::kWaiting);
  CHECK_FALSE(s.layers[1].present_before);
}

TEST_CASE("Tracker: two sessions sharing base layers, newest first", "[lass]") {
  Harness h;
  const Layer base = MakeLayer("alpine", 3'000'000);
  const std::vector<Layer> a = {base, MakeLayer("app-a", 1'000'000)};
  const std::vector<Layer> b = {base, MakeLayer("app-b", 2'000'000)};
  const std::string ma = Digest("manifest-a"), mb = Digest("manifest-b");
  h.Commit(ma, ManifestJson(Digest("config-a"), a));
  h.Commit(Digest("config-a"), ConfigJson(a));
  std::string in = h.StartIngest("layer", base.digest, base.size);
  h.Advance(absl::Seconds(1));
  h.FinishIngest(in, base.digest);
  h.Advance(absl::Seconds(1));
  // Image b arrives while image a's top layer is still waiting.
  h.Commit(mb, ManifestJson(Digest("config-b"), b));
  h.Commit(Digest("config-b"), ConfigJson(b));
  PullSession sb = h.Session(mb);
  CHECK(sb.layers[0].state == BlobState::kDone);
  CHECK(sb.layers[0].present_before);
  CHECK_FALSE(h.Session(ma).layers[0].present_before);

  auto with_base = h.tracker.SessionsWithChain(base.diff_id);
  REQUIRE(with_base.size() == 2);
  CHECK(with_base[0].manifest_digest == mb);
  CHECK(with_base[1].manifest_digest == ma);
  CHECK(h.tracker.Sessions().size() == 2);
  // The top layers have different chains.
  auto chain_b = ChainIds({b[0].diff_id, b[1].diff_id});
  auto only_b = h.tracker.SessionsWithChain((*chain_b)[1]);
  REQUIRE(only_b.size() == 1);
  CHECK(only_b[0].manifest_digest == mb);
}

TEST_CASE("Tracker: content GC sends layers back to waiting and drops the session", "[lass]") {
  Harness h;
  const std::vector<Layer> layers = {MakeLayer("gc0", 100), MakeLayer("gc1", 200)};
  const std::string manifest = Digest("manifest-gc");
  h.Commit(manifest, ManifestJson(Digest("config-gc"), layers));
  h.Commit(layers[0].digest);
  h.Commit(layers[1].digest);
  CHECK(h.Session(manifest).layers[1].state == BlobState::kDone);
  CHECK(h.tracker.IsPresent(layers[1].digest));

  h.tracker.BlobRemoved(layers[1].digest);
  PullSession s = h.Session(manifest);
  CHECK(s.layers[1].state == BlobState::kWaiting);
  CHECK(s.layers[1].download_end == absl::InfinitePast());
  CHECK(s.layers[0].state == BlobState::kDone);
  CHECK_FALSE(h.tracker.IsPresent(layers[1].digest));

  // Re-fetch in progress when the manifest goes: the session lives on until
  // nothing of it downloads any more.
  std::string in = h.StartIngest("layer", layers[1].digest, 200);
  h.tracker.BlobRemoved(manifest);
  CHECK(h.tracker.SessionByManifest(manifest));
  h.tracker.IngestGone(in);  // aborted
  CHECK_FALSE(h.tracker.SessionByManifest(manifest));
}

TEST_CASE("Tracker: sessions expire after the TTL, and a manifest seen again renews", "[lass]") {
  Harness h;
  const std::vector<Layer> layers = {MakeLayer("ttl0", 100)};
  const std::string manifest = Digest("manifest-ttl");
  const std::string json = ManifestJson(Digest("config-ttl"), layers);
  h.Commit(manifest, json);
  h.Commit(layers[0].digest);
  h.Advance(absl::Minutes(20));
  h.Commit(manifest, json);  // pulled again (e.g. after GC and re-fetch)
  h.Advance(absl::Minutes(20));
  CHECK(h.tracker.SessionByManifest(manifest));
  h.Advance(absl::Minutes(11));
  CHECK_FALSE(h.tracker.SessionByManifest(manifest));
  h.tracker.Prune();
  CHECK(h.tracker.Sessions().empty());

  // Incomplete sessions (layers skipped by unpack) use the longer TTL.
  const std::string m2 = Digest("manifest-skipped");
  h.Commit(m2, ManifestJson(Digest("config-skipped"), {MakeLayer("never", 1)}));
  h.Advance(absl::Minutes(31));
  CHECK(h.tracker.SessionByManifest(m2));
  h.Advance(absl::Hours(2));
  CHECK_FALSE(h.tracker.SessionByManifest(m2));
}

TEST_CASE("Tracker: index maps to the host platform's manifest", "[lass]") {
  Harness h;
  const std::string amd = Digest("manifest-amd64"), arm = Digest("manifest-arm64");
  const std::string index = Digest("index");
  h.Commit(index, IndexJson(amd, arm));
  auto m = h.tracker.ManifestForIndex(index);
  REQUIRE(m);
  CHECK(*m == amd);
  CHECK_FALSE(h.tracker.ManifestForIndex(amd));
  h.Commit(amd, ManifestJson(Digest("config-x"), {MakeLayer("x", 1)}));
  PullSession s = h.Session(amd);
  REQUIRE(s.index_digests.size() == 1);
  CHECK(s.index_digests[0] == index);
}

TEST_CASE("Tracker: config committed before its manifest still fills chain IDs", "[lass]") {
  Harness h;
  const std::vector<Layer> layers = {MakeLayer("c0", 10), MakeLayer("c1", 20)};
  h.Commit(Digest("config-early"), ConfigJson(layers));
  REQUIRE(h.tracker.ConfigByDigest(Digest("config-early")));
  h.Commit(Digest("manifest-late"), ManifestJson(Digest("config-early"), layers));
  PullSession s = h.Session(Digest("manifest-late"));
  CHECK(s.config_read);
  CHECK(s.layers[1].diff_id == layers[1].diff_id);
}

TEST_CASE("Tracker keeps at most max_sessions, evicting the oldest idle", "[lass]") {
  ContentTrackerOptions o;
  o.max_sessions = 2;
  Harness h(o);
  const Layer busy = MakeLayer("busy", 1000);
  h.Commit(Digest("m1"), ManifestJson(Digest("c1"), {busy}));
  std::string in = h.StartIngest("layer", busy.digest, busy.size);  // m1 is downloading
  h.Advance(absl::Seconds(1));
  h.Commit(Digest("m2"), ManifestJson(Digest("c2"), {MakeLayer("idle2", 1)}));
  h.Advance(absl::Seconds(1));
  h.Commit(Digest("m3"), ManifestJson(Digest("c3"), {MakeLayer("idle3", 1)}));
  CHECK(h.tracker.SessionByManifest(Digest("m1")));  // older, but downloading
  CHECK_FALSE(h.tracker.SessionByManifest(Digest("m2")));
  CHECK(h.tracker.SessionByManifest(Digest("m3")));
  h.tracker.IngestGone(in);
}

TEST_CASE("Tracker ignores invalid digests and unknown JSON", "[lass]") {
  Harness h;
  h.tracker.BlobCommitted("sha256:../../etc/passwd", h.now, std::string("{}"));
  CHECK_FALSE(h.tracker.IsPresent("sha256:../../etc/passwd"));
  h.Commit(Digest("artifact"), std::string(R"({"schemaVersion":2,"artifactType":"x"})"));
  CHECK(h.tracker.IsPresent(Digest("artifact")));
  CHECK(h.tracker.Sessions().empty());
  // A manifest whose JSON is broken creates no session.
  h.Commit(Digest("broken"), std::string(R"({"config":{},"layers":[{"digest":"x"}]})"));
  CHECK(h.tracker.Sessions().empty());
}

}  // namespace
}  // namespace ndocker::lass
