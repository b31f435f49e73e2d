// Hot layer records: the build protocol (Begin, build, Finish) and what a
// restart's Recover finds after a crash between any two of its steps. Each
// step is one LMDB transaction or one rename, so "a crash between steps" is
// the store closed and reopened with the disk as that step left it.
#include "hbcsa/promoter/hot_layer_store.h"
#include "hbcsa/promoter/image_chain.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>

#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;

const std::string kImage = "sha256:" + std::string(64, 'a');
const std::string kOther = "sha256:" + std::string(64, 'c');
const std::string kTop = "sha256:" + std::string(64, 'b');

std::vector<HotLayerSource> Layers() {
  return {{"sha256:" + std::string(64, '2'), 12, 1, Tier::kSlow},
          {"sha256:" + std::string(64, '1'), 11, 0, Tier::kFast}};
}

// A "built" layer: what the rename of a complete build leaves.
void MakeBuilt(const std::string& dir) {
  fs::create_directories(dir + "/usr/bin");
  std::ofstream(dir + "/usr/bin/app") << "hot data";
}

struct Node {
  testing::TempDir root;
  std::string hot = root / "fast/hot";
  std::unique_ptr<MetaStore> meta;
  std::unique_ptr<HotLayerStore> store;
  Node() { Restart(); }
  // The daemon killed and started again: a new store on the same disk.
  void Restart() {
    store.reset();
    meta.reset();
    fs::create_directories(root / "metadata");
    auto m = MetaStore::Open(root / "metadata");
    REQUIRE(m.ok());
    meta = *std::move(m);
    store = std::make_unique<HotLayerStore>(*meta, hot);
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    if (!fs::exists(hot)) return out;
    for (const auto& e : fs::directory_iterator(hot)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

BuildReport Report() {
  BuildReport r;
  r.directories = 3;
  r.regular_files = 5;
  r.hot_files = 1;
  r.hot_bytes = 8;
  return r;
}

TEST_CASE("hot layer record: JSON round trip", "[hbcsa][hot]") {
  HotLayerRecord r{kImage, kTop, {}};
  HotLayerVersion v;
  v.id = 7;
  v.profile_version = 3;
  v.state = HotState::kRetired;
  v.started = absl::FromUnixSeconds(100);
  v.finished = absl::FromUnixSeconds(101);
  v.bytes = 4096;
  v.entries = 9;
  v.hot_files = 2;
  v.hot_bytes = 17;
  v.layers = Layers();
  r.versions.push_back(v);
  HotLayerVersion building;
  building.id = 8;
  building.profile_version = 4;
  r.versions.push_back(building);
  absl::StatusOr<HotLayerRecord> back = DecodeHotLayerRecord(EncodeHotLayerRecord(r));
  REQUIRE(back.ok());
  CHECK(*back == r);
  CHECK(back->Current() == nullptr);  // retired and building: no version for new mounts
  CHECK_FALSE(DecodeHotLayerRecord("{").ok());
  CHECK(absl::IsDataLoss(DecodeHotLayerRecord(R"({"image":"x","top_chain":"y","versions":[{"id":1,
    "profile_version":1,"state":"half","started_ns":0,"finished_ns":0,"bytes":0,"entries":0,
    "hot_files":0,"hot_bytes":0,"layers":[]}]})").status()));
}

TEST_CASE("hot layers: build protocol, versions, retire and drop", "[hbcsa][hot]") {
  Node node;
  absl::StatusOr<HotLayerVersion> v1 = node.store->Begin(kImage, kTop, 1, Layers(), absl::Now());
  REQUIRE(v1.ok());
  CHECK(v1->state == HotState::kBuilding);
  CHECK(node.store->DirOf(v1->id) == node.hot + "/" + std::to_string(v1->id));
  // One build per image at a time; another image may build meanwhile.
  CHECK(absl::IsFailedPrecondition(node.store->Begin(kImage, kTop, 1, Layers(), absl::Now()).status()));
  absl::StatusOr<HotLayerVersion> o1 = node.store->Begin(kOther, kTop, 1, {}, absl::Now());
  REQUIRE(o1.ok());
  CHECK(o1->id != v1->id);
  REQUIRE(node.store->Abort(kOther, o1->id).ok());

  MakeBuilt(node.store->DirOf(v1->id));
  absl::StatusOr<HotLayerRecord> r = node.store->Finish(kImage, v1->id, Report(), 12288, absl::Now());
  REQUIRE(r.ok());
  REQUIRE(r->Current() != nullptr);
  CHECK(r->Current()->id == v1->id);
  CHECK(r->Current()->bytes == 12288);
  CHECK(r->Current()->entries == 8);
  CHECK(r->Current()->layers == Layers());
  CHECK(absl::IsFailedPrecondition(node.store->Finish(kImage, v1->id, Report(), 1, absl::Now()).status()));

  // A new profile version builds a new version; the old one is retired, kept
  // until no mount uses it, then dropped (record first, then its directory).
  absl::StatusOr<HotLayerVersion> v2 = node.store->Begin(kImage, kTop, 2, Layers(), absl::Now());
  REQUIRE(v2.ok());
  CHECK(node.store->Get(kImage)->value().Current()->id == v1->id);  // still v1 while v2 builds
  MakeBuilt(node.store->DirOf(v2->id));
  r = node.store->Finish(kImage, v2->id, Report(), 4096, absl::Now());
  REQUIRE(r.ok());
  CHECK(r->Current()->id == v2->id);
  REQUIRE(r->versions.size() == 2);
  CHECK(r->versions[0].state == HotState::kRetired);
  CHECK(absl::IsFailedPrecondition(node.store->Drop(kImage, v2->id)));  // ready: not droppable
  REQUIRE(node.store->Drop(kImage, v1->id).ok());
  CHECK_FALSE(fs::exists(node.store->DirOf(v1->id)));
  CHECK(absl::IsNotFound(node.store->Drop(kImage, v1->id)));

  // Durable: a restart sees the same record, and Recover keeps the ready one.
  node.Restart();
  absl::StatusOr<std::optional<HotLayerRecord>> got = node.store->Get(kImage);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->Current()->id == v2->id);
  absl::StatusOr<HotRecovery> rec = node.store->Recover();
  REQUIRE(rec.ok());
  CHECK(rec->building_dropped.empty());
  CHECK(rec->orphans_removed.empty());
  CHECK(node.Names() == std::vector<std::string>{std::to_string(v2->id)});
  CHECK(fs::exists(node.store->DirOf(v2->id) + "/usr/bin/app"));

  // The image goes: its ready version is retired (a mount may still use it),
  // then dropped like any retired one.
  absl::StatusOr<std::vector<uint64_t>> gone = node.store->RetireImage(kImage);
  REQUIRE(gone.ok());
  CHECK(*gone == std::vector<uint64_t>{v2->id});
  REQUIRE(node.store->Get(kImage)->has_value());
  CHECK((*node.store->Get(kImage))->Current() == nullptr);
  CHECK(node.Names() == std::vector<std::string>{std::to_string(v2->id)});
  REQUIRE(node.store->Drop(kImage, v2->id).ok());
  CHECK(node.Names().empty());
  CHECK_FALSE(node.store->Get(kImage)->has_value());  // its last version gone: the record too
  CHECK(node.store->List()->empty());
}

TEST_CASE("hot layers: a crash between any two build steps leaves nothing half for a new mount",
          "[hbcsa][hot]") {
  // Each section: the steps done before the kill, then a restart and Recover.
  Node node;
  // A ready version from before, which no crash may touch.
  absl::StatusOr<HotLayerVersion> ready = node.store->Begin(kImage, kTop, 1, Layers(), absl::Now());
  REQUIRE(ready.ok());
  MakeBuilt(node.store->DirOf(ready->id));
  REQUIRE(node.store->Finish(kImage, ready->id, Report(), 4096, absl::Now()).ok());

  absl::StatusOr<HotLayerVersion> v = node.store->Begin(kImage, kTop, 2, Layers(), absl::Now());
  REQUIRE(v.ok());
  SECTION("killed after Begin, before any byte") {}
  SECTION("killed during the build: a temp sibling") {
    MakeBuilt(node.hot + "/." + std::to_string(v->id) + ".building-Ab12Cd");
  }
  SECTION("killed after the rename, before Finish") { MakeBuilt(node.store->DirOf(v->id)); }
  node.Restart();
  absl::StatusOr<HotRecovery> rec = node.store->Recover();
  REQUIRE(rec.ok());
  CHECK(rec->building_dropped == std::vector<uint64_t>{v->id});
  CHECK(node.Names() == std::vector<std::string>{std::to_string(ready->id)});
  absl::StatusOr<std::optional<HotLayerRecord>> got = node.store->Get(kImage);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  REQUIRE((*got)->versions.size() == 1);
  CHECK((*got)->Current()->id == ready->id);
  // The crashed build's id is never given again: its directory could have
  // been left on a disk that was not mounted at the Recover.
  absl::StatusOr<HotLayerVersion> again = node.store->Begin(kImage, kTop, 2, Layers(), absl::Now());
  REQUIRE(again.ok());
  CHECK(again->id > v->id);
}

TEST_CASE("hot layers: a crash after Finish keeps the new version, leftovers nobody owns go",
          "[hbcsa][hot]") {
  Node node;
  absl::StatusOr<HotLayerVersion> v = node.store->Begin(kImage, kTop, 1, Layers(), absl::Now());
  REQUIRE(v.ok());
  MakeBuilt(node.store->DirOf(v->id));
  REQUIRE(node.store->Finish(kImage, v->id, Report(), 4096, absl::Now()).ok());
  // A dropped version whose directory removal was cut short, and names that
  // only look like ids.
  MakeBuilt(node.hot + "/99");
  MakeBuilt(node.hot + "/0" + std::to_string(v->id));
  std::ofstream(node.hot + "/notes") << "x";
  node.Restart();
  absl::StatusOr<HotRecovery> rec = node.store->Recover();
  REQUIRE(rec.ok());
  CHECK(rec->building_dropped.empty());
  std::vector<std::string> removed = rec->orphans_removed;
  std::sort(removed.begin(), removed.end());
  CHECK(removed == std::vector<std::string>{"0" + std::to_string(v->id), "99", "notes"});
  CHECK(node.Names() == std::vector<std::string>{std::to_string(v->id)});
  CHECK(node.store->Get(kImage)->value().Current()->id == v->id);
}

}  // namespace
}  // namespace ndocker::hbcsa

namespace ndocker::hbcsa {
namespace {

SnapshotEntry Committed(std::string key, uint64_t id, std::string parent, Tier tier, uint64_t gen) {
  SnapshotEntry e;
  e.key = std::move(key);
  e.record.id = id;
  e.record.kind = Kind::kCommitted;
  e.record.parent = std::move(parent);
  e.record.tier = tier;
  e.record.generation = gen;
  return e;
}

TEST_CASE("ChainFromEntries: an image's layers from its top chainID, each at its current copy",
          "[hbcsa][hot]") {
  const Layout layout("/r", "/f", "/s");
  std::vector<SnapshotEntry> entries = {
      Committed("default/1/sha256:l1", 1, "", Tier::kFast, 0),
      Committed("default/2/sha256:l2", 2, "default/1/sha256:l1", Tier::kSlow, 3),
      Committed("default/3/sha256:top", 3, "default/2/sha256:l2", Tier::kFast, 0),
  };
  SnapshotEntry active;
  active.key = "default/9/c1";
  active.record.id = 9;
  active.record.kind = Kind::kActive;
  active.record.parent = "default/3/sha256:top";
  entries.push_back(active);

  absl::StatusOr<std::vector<ChainLayer>> chain = ChainFromEntries(entries, layout, "sha256:top");
  REQUIRE(chain.ok());
  REQUIRE(chain->size() == 3);
  CHECK((*chain)[0].source == HotLayerSource{"sha256:top", 3, 0, Tier::kFast});
  CHECK((*chain)[0].fs_dir == layout.FsDir(Tier::kFast, 3, 0));
  CHECK((*chain)[1].source == HotLayerSource{"sha256:l2", 2, 3, Tier::kSlow});
  CHECK((*chain)[1].fs_dir == "/s/snapshots/2-3/fs");
  CHECK((*chain)[2].source.chain_id == "sha256:l1");

  CHECK(absl::IsNotFound(ChainFromEntries(entries, layout, "sha256:nope").status()));
  CHECK(absl::IsNotFound(ChainFromEntries(entries, layout, "c1").status()));  // not a layer
  entries.erase(entries.begin());  // the bottom layer's record gone
  CHECK(absl::IsDataLoss(ChainFromEntries(entries, layout, "sha256:top").status()));
}

}  // namespace
}  // namespace ndocker::hbcsa
