// The content watcher against a temp dir changed exactly the way containerd's
// local content store changes during a pull (facts §6.2).
#include "lass/content_watcher.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "lass/digest.h"
#include "test/unit/temp_dir.h"

namespace ndocker::lass {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

template <typename Pred>
bool WaitFor(Pred pred, absl::Duration limit = absl::Seconds(5)) {
  absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  REQUIRE(f.good());
}

// Does to a directory what containerd's local content store does.
class FakeContainerd {
 public:
  explicit FakeContainerd(std::string root) : root_(std::move(root)) {}

  void MakeStore() {
    fs::create_directories(root_ + "/ingest");
    fs::create_directories(root_ + "/blobs/sha256");
  }

  // ingest/<sha256(ref)>/ with ref, startedat, updatedat, total (each via
  // .tmp + rename), then an empty data file.
  std::string BeginIngest(const std::string& ref, int64_t total, absl::Time started) {
    std::string name = *Sha256Hex(ref);
    std::string dir = root_ + "/ingest/" + name;
    REQUIRE(fs::create_directory(dir));
    std::string ts = absl::FormatTime(absl::RFC3339_full, started, absl::UTCTimeZone());
    for (const auto& [file, content] : std::vector<std::pair<std::string, std::string>>{
             {"ref", ref}, {"startedat", ts}, {"updatedat", ts}, {"total", absl::StrCat(total)}}) {
      WriteFile(dir + "/" + file + ".tmp", content);
      fs::rename(dir + "/" + file + ".tmp", dir + "/" + file);
    }
    WriteFile(dir + "/data", "");
    return name;
  }

  void Append(const std::string& name, const std::string& bytes) {
    std::ofstream f(root_ + "/ingest/" + name + "/data", std::ios::binary | std::ios::app);
    f << bytes;
    REQUIRE(f.good());
  }

  // rename data → blobs/sha256/<hex>, set the times to the commit time,
  // remove the ingest folder, make the blob read-only.
  void Commit(const std::string& name, const std::string& hex, absl::Time commit_time) {
    fs::create_directories(root_ + "/blobs/sha256");
    std::string blob = root_ + "/blobs/sha256/" + hex;
    fs::rename(root_ + "/ingest/" + name + "/data", blob);
    struct timespec ts[2] = {absl::ToTimespec(commit_time), absl::ToTimespec(commit_time)};
    REQUIRE(::utimensat(AT_FDCWD, blob.c_str(), ts, 0) == 0);
    fs::remove_all(root_ + "/ingest/" + name);
    REQUIRE(::chmod(blob.c_str(), 0444) == 0);
  }

  // A whole download of `content` in one go. Returns "sha256:<hex>".
  std::string PutBlob(const std::string& kind, const std::string& content, absl::Time commit_time) {
    std::string hex = *Sha256Hex(content);
    std::string name = BeginIngest(absl::StrCat("default/1/", kind, "-sha256:", hex),
                                   static_cast<int64_t>(content.size()), commit_time);
    Append(name, content);
    Commit(name, hex, commit_time);
    return "sha256:" + hex;
  }

 private:
  std::string root_;
};

std::string Manifest(const std::string& config, const std::vector<std::pair<std::string, int64_t>>& layers) {
  std::string out = absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)",
      R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":100,"digest":")",
      config, R"("},"layers":[)");
  for (size_t i = 0; i < layers.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "",
                    R"({"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":)",
                    layers[i].second, R"(,"digest":")", layers[i].first, R"("})");
  }
  return out + "]}";
}

std::string Config(const std::vector<std::string>& diff_ids) {
  std::string out = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[)";
  for (size_t i = 0; i < diff_ids.size(); ++i) absl::StrAppend(&out, i ? "," : "", "\"", diff_ids[i], "\"");
  return out + "]}}";
}

std::string Diff(const std::string& seed) { return "sha256:" + *Sha256Hex(seed); }

std::unique_ptr<ContentWatcher> StartWatcher(const std::string& root) {
  ContentWatcherOptions o;
  o.content_root = root;
  o.poll_interval = absl::Milliseconds(20);
  o.rescan_interval = absl::Milliseconds(200);
  o.tracker.platform = PlatformFromMachine("x86_64");
  auto w = ContentWatcher::Start(std::move(o));
  REQUIRE(w.ok());
  return *std::move(w);
}

// A commit time with nanoseconds, as containerd's Chtimes sets it.
absl::Time CommitTime() { return absl::Now() + absl::Nanoseconds(123); }

TEST_CASE("Watcher follows a pull: downloading with growing offset, then done at the commit time", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "io.containerd.content.v1.content";
  FakeContainerd ctrd(root);
  ctrd.MakeStore();
  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
  CHECK(w->Health().enabled);
  CHECK(absl::StrContains(w->Health().detail, "watching " + root));

  const std::string layer_bytes(300'000, 'x');
  const std::string layer = "sha256:" + *Sha256Hex(layer_bytes);
  const std::string config = ctrd.PutBlob("config", Config({Diff("l0")}), CommitTime());
  const std::string manifest = ctrd.PutBlob("manifest", Manifest(config, {{layer, 300'000}}), CommitTime());
  REQUIRE(WaitFor([&] {
    auto s = w->tracker().SessionByManifest(manifest);
    return s && s->config_read;
  }));
  CHECK(w->tracker().SessionByManifest(manifest)->layers[0].chain_id == Diff("l0"));
  CHECK(w->tracker().SessionByManifest(manifest)->layers[0].state == BlobState::kWaiting);

  const absl::Time started = absl::Now();
  const std::string ingest = ctrd.BeginIngest("default/1/layer-" + layer, 300'000, started);
  int64_t written = 0;
  for (int chunk = 0; chunk < 5; ++chunk) {
    ctrd.Append(ingest, layer_bytes.substr(written, 60'000));
    written += 60'000;
    REQUIRE(WaitFor([&] {
      auto s = w->tracker().SessionByManifest(manifest);
      return s->layers[0].state == BlobState::kDownloading && s->layers[0].offset == written;
    }));
    absl::SleepFor(absl::Milliseconds(100));  // spread over > 250 ms for a rate
  }
  CHECK(absl::ToUnixMicros(w->tracker().SessionByManifest(manifest)->layers[0].download_start) ==
        absl::ToUnixMicros(started));
  CHECK(w->tracker().Bandwidth().bytes_per_second > 0);

  const absl::Time commit = CommitTime();
  ctrd.Commit(ingest, layer.substr(7), commit);
  REQUIRE(WaitFor([&] {
    auto s = w->tracker().SessionByManifest(manifest);
    return s->layers[0].state == BlobState::kDone && s->layers[0].download_end == commit;
  }));
  PullSession s = *w->tracker().SessionByManifest(manifest);
  CHECK_FALSE(s.layers[0].present_before);
  CHECK(s.layers[0].offset == 300'000);

  // Content GC deletes the blob: back to waiting.
  fs::remove(root + "/blobs/sha256/" + layer.substr(7));
  REQUIRE(WaitFor([&] {
    return w->tracker().SessionByManifest(manifest)->layers[0].state == BlobState::kWaiting;
  }));
  CHECK_FALSE(w->tracker().IsPresent(layer));
}

TEST_CASE("Watcher waits for a store created after it started", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "var/lib/containerd/io.containerd.content.v1.content";
  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] { return absl::StrContains(w->Health().detail, "not found"); }));
  WatcherHealth h = w->Health();
  CHECK(h.enabled);
  CHECK_FALSE(h.store_readable);
  CHECK(h.detail == "content store " + root + " not found (waiting for containerd)");

  FakeContainerd ctrd(root);
  fs::create_directories(tmp / "var/lib/containerd");
  absl::SleepFor(absl::Milliseconds(30));  // let the anchor move down a level first
  fs::create_directories(root + "/ingest");  // containerd creates ingest/ at start…
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
  // …and blobs/sha256 at the first commit.
  const std::string manifest = ctrd.PutBlob("manifest", Manifest(Diff("cfg"), {{Diff("blob"), 5}}), CommitTime());
  REQUIRE(WaitFor([&] { return w->tracker().SessionByManifest(manifest).has_value(); }));
}

TEST_CASE("Watcher survives the store being removed and recreated", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "io.containerd.content.v1.content";
  FakeContainerd ctrd(root);
  ctrd.MakeStore();
  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
  const std::string layer = ctrd.PutBlob("layer", "layer-bytes", CommitTime());
  REQUIRE(WaitFor([&] { return w->tracker().IsPresent(layer); }));

  fs::remove_all(root);
  REQUIRE(WaitFor([&] { return !w->tracker().IsPresent(layer) && !w->Health().store_readable; }));
  CHECK(absl::StrContains(w->Health().detail, "not found (waiting for containerd)"));

  ctrd.MakeStore();
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
  const std::string manifest = ctrd.PutBlob("manifest", Manifest(Diff("c"), {{layer, 11}}), CommitTime());
  REQUIRE(WaitFor([&] { return w->tracker().SessionByManifest(manifest).has_value(); }));
  CHECK(w->tracker().SessionByManifest(manifest)->layers[0].state == BlobState::kWaiting);
}

TEST_CASE("Watcher picks up a pull in progress when it starts", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "io.containerd.content.v1.content";
  FakeContainerd ctrd(root);
  ctrd.MakeStore();
  const absl::Time t0 = absl::Now() - absl::Minutes(2);
  // An image pulled an hour ago: its manifest is too old to be read.
  const std::string old_layer = ctrd.PutBlob("layer", "old-base", t0 - absl::Hours(1));
  const std::string old_manifest =
      ctrd.PutBlob("manifest", Manifest(Diff("oldcfg"), {{old_layer, 8}}), t0 - absl::Hours(1));
  // The pull that was running when the daemon restarted.
  const std::string done_bytes = "finished-layer", partial_bytes(50'000, 'p');
  const std::string done_layer = "sha256:" + *Sha256Hex(done_bytes);
  const std::string partial_layer = "sha256:" + *Sha256Hex(partial_bytes);
  const std::string config = ctrd.PutBlob("config", Config({Diff("a"), Diff("b"), Diff("c")}), t0 + absl::Seconds(1));
  const std::string manifest = ctrd.PutBlob(
      "manifest",
      Manifest(config, {{old_layer, 8}, {done_layer, 14}, {partial_layer, 100'000}}), t0);
  ctrd.PutBlob("layer", done_bytes, t0 + absl::Seconds(5));
  const std::string ingest = ctrd.BeginIngest("default/1/layer-" + partial_layer, 100'000, t0 + absl::Seconds(2));
  ctrd.Append(ingest, partial_bytes);

  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] {
    auto s = w->tracker().SessionByManifest(manifest);
    return s && s->layers[2].state == BlobState::kDownloading && s->layers[2].offset == 50'000;
  }));
  PullSession s = *w->tracker().SessionByManifest(manifest);
  CHECK(s.started == t0);
  CHECK(s.config_read);
  CHECK(s.layers[0].state == BlobState::kDone);
  CHECK(s.layers[0].present_before);
  CHECK(s.layers[1].state == BlobState::kDone);
  CHECK_FALSE(s.layers[1].present_before);
  CHECK(s.layers[1].download_end == t0 + absl::Seconds(5));
  CHECK_FALSE(w->tracker().SessionByManifest(old_manifest));
  CHECK(w->tracker().IsPresent(old_manifest));
  // No burst from the 50 KB written before the watcher started.
  CHECK(w->tracker().Bandwidth().bytes_per_second == 0);
}

TEST_CASE("Watcher reports a content root that is not a directory", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "io.containerd.content.v1.content";
  WriteFile(root, "not a directory");
  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] { return absl::StrContains(w->Health().detail, "unreadable"); }));
  WatcherHealth h = w->Health();
  CHECK(h.enabled);
  CHECK_FALSE(h.store_readable);
  CHECK(absl::StrContains(h.detail, "Not a directory"));

  // Replaced by a real store: the watcher recovers on its own.
  fs::remove(root);
  FakeContainerd(root).MakeStore();
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
}

TEST_CASE("Watcher ignores names that are not digests and symlinked blobs", "[lass]") {
  TempDir tmp;
  const std::string root = tmp / "io.containerd.content.v1.content";
  FakeContainerd ctrd(root);
  ctrd.MakeStore();
  auto w = StartWatcher(root);
  REQUIRE(WaitFor([&] { return w->Health().store_readable; }));
  const std::string secret = tmp / "secret.json";
  const std::string json = Manifest(Diff("c"), {{Diff("l"), 1}});
  WriteFile(secret, json);
  const std::string hex = *Sha256Hex(json);
  fs::create_symlink(secret, root + "/blobs/sha256/" + hex);
  WriteFile(root + "/blobs/sha256/not-a-digest", json);
  // A real blob afterwards proves the watcher has handled the events above.
  const std::string real = ctrd.PutBlob("layer", "real", CommitTime());
  REQUIRE(WaitFor([&] { return w->tracker().IsPresent(real); }));
  CHECK_FALSE(w->tracker().IsPresent("sha256:" + hex));
  CHECK(w->tracker().Sessions().empty());
}

TEST_CASE("ContentWatcher::Start rejects a relative path", "[lass]") {
  ContentWatcherOptions o;
  o.content_root = "relative/content";
  CHECK(absl::IsInvalidArgument(ContentWatcher::Start(std::move(o)).status()));
}

}  // namespace
}  // namespace ndocker::lass
