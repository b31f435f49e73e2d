// The promoter: a profile's files become the hot layer's data, the rest
// metacopy stubs, under the store's protocol; a layer that moves during the
// build throws the build away. Needs root (trusted.overlay.* xattrs).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hbcsa/profiles/profile_store.h"
#include "hbcsa/promoter/hot_layer_book.h"
#include "hbcsa/promoter/promoter.h"
#include "hbcsa/promoter/xattrs.h"
#include "test/unit/file_util.h"
#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;

const std::string kImage = "sha256:" + std::string(64, 'a');
const std::string kTop = "sha256:" + std::string(64, '2');
const std::string kBottom = "sha256:" + std::string(64, '1');

using testing::ReadText;
using testing::WriteText;

struct Rig {
  testing::TempDir root;
  std::string l1 = root / "slow/snapshots/11/fs";
  std::string l2 = root / "fast/snapshots/12/fs";
  std::unique_ptr<MetaStore> meta;
  std::unique_ptr<HotLayerStore> store;
  uint64_t top_generation = 0;   // the mover's copy of the top layer
  int reads = 0;
  int move_after_read = -1;  // the chain read at which the top layer "moves"

  Rig() {
    WriteText(l1 + "/bin/app", "app binary");
    WriteText(l1 + "/etc/conf", "bottom conf");
    WriteText(l1 + "/usr/share/doc/big", std::string(10000, 'x'));
    WriteText(l2 + "/etc/conf", "top conf");
    WriteText(l2 + "/srv/data", "data");
    fs::create_directories(root / "metadata");
    auto m = MetaStore::Open(root / "metadata");
    REQUIRE(m.ok());
    meta = *std::move(m);
    store = std::make_unique<HotLayerStore>(*meta, root / "fast/hot");
  }

  Promoter::ChainReader Reader() {
    return [this](const std::string& top) -> absl::StatusOr<std::vector<ChainLayer>> {
      if (top != kTop) return absl::NotFoundError("no such chain");
      if (reads++ == move_after_read) ++top_generation;
      // Built one by one: GCC 12 -O3 warns (maybe-uninitialized) on the
      // nested initializer list's temporaries.
      std::vector<ChainLayer> chain(2);
      chain[0].source = HotLayerSource{kTop, 12, top_generation, Tier::kFast};
      chain[0].fs_dir = l2;
      chain[1].source = HotLayerSource{kBottom, 11, 0, Tier::kSlow};
      chain[1].fs_dir = l1;
      return chain;
    };
  }
};

bool CanBuild() {
  if (::geteuid() == 0) return true;
  WARN("skipped: metacopy stubs carry trusted.overlay.* xattrs, which need root");
  return false;
}

Profile MakeProfile(uint64_t version, std::vector<std::string> paths) {
  Profile p;
  p.image = kImage;
  p.top_chain = kTop;
  p.version = version;
  for (const std::string& path : paths) p.files.push_back(HotFile{path, kBottom, 1, 1});
  return p;
}

TEST_CASE("Promoter: the profile's files carry data, the rest are stubs, one version per profile version",
          "[hbcsa][hot][root]") {
  if (!CanBuild()) return;
  Rig rig;
  Promoter promoter(*rig.store, rig.Reader(), BuildOptions{.sync = false});
  absl::StatusOr<HotLayerRecord> r = promoter.Promote(MakeProfile(1, {"/bin/app", "/etc/conf"}));
  REQUIRE(r.ok());
  const HotLayerVersion* v = r->Current();
  REQUIRE(v != nullptr);
  CHECK(v->profile_version == 1);
  CHECK(v->hot_files == 2);
  CHECK(v->bytes > 0);
  CHECK(v->layers.size() == 2);
  const std::string dir = rig.store->DirOf(v->id);
  CHECK(ReadText(dir + "/bin/app") == "app binary");
  CHECK(ReadText(dir + "/etc/conf") == "top conf");  // the merged view's file
  CHECK_FALSE(GetXattr(dir + "/bin/app", "trusted.overlay.metacopy")->has_value());
  CHECK(GetXattr(dir + "/usr/share/doc/big", "trusted.overlay.metacopy")->has_value());
  CHECK(fs::file_size(dir + "/usr/share/doc/big") == 10000);

  // The same profile version again: the same layer, nothing rebuilt.
  absl::StatusOr<HotLayerRecord> again = promoter.Promote(MakeProfile(1, {"/bin/app", "/etc/conf"}));
  REQUIRE(again.ok());
  CHECK(again->Current()->id == v->id);
  CHECK(again->versions.size() == 1);

  // A new profile version: a new layer; the old one retired, still there.
  absl::StatusOr<HotLayerRecord> v2 = promoter.Promote(MakeProfile(2, {"/bin/app", "/srv/data"}));
  REQUIRE(v2.ok());
  CHECK(v2->Current()->id != v->id);
  CHECK(v2->versions.front().state == HotState::kRetired);
  CHECK(fs::exists(dir));
  CHECK(ReadText(rig.store->DirOf(v2->Current()->id) + "/srv/data") == "data");
}

TEST_CASE("Promoter: a layer moved during the build, or a chain not held, records nothing",
          "[hbcsa][hot][root]") {
  if (!CanBuild()) return;
  Rig rig;
  Promoter promoter(*rig.store, rig.Reader(), BuildOptions{.sync = false});
  rig.move_after_read = 1;  // the read after the build sees a new copy
  absl::StatusOr<HotLayerRecord> r = promoter.Promote(MakeProfile(1, {"/bin/app"}));
  CHECK(absl::IsAborted(r.status()));
  CHECK_FALSE(rig.store->Get(kImage)->has_value());
  CHECK(fs::is_empty(rig.root / "fast/hot"));
  // Built again from the new copy: fine.
  r = promoter.Promote(MakeProfile(1, {"/bin/app"}));
  REQUIRE(r.ok());
  CHECK(r->Current()->layers.front().generation == 1);

  Profile other = MakeProfile(1, {"/bin/app"});
  other.image = "sha256:" + std::string(64, 'c');
  other.top_chain = "sha256:" + std::string(64, '9');
  CHECK(absl::IsNotFound(promoter.Promote(other).status()));
  CHECK_FALSE(rig.store->Get(other.image)->has_value());
}

TEST_CASE("Promoter: a hot layer counts against the fast budget, one that does not fit is thrown away",
          "[hbcsa][hot][root]") {
  if (!CanBuild()) return;
  Rig rig;
  int64_t counted = 0, limit = 0;
  Promoter::FastBudget budget;
  budget.reserve = [&](int64_t bytes) {
    if (counted + bytes > limit) return absl::ResourceExhaustedError("over the fast budget");
    counted += bytes;
    return absl::OkStatus();
  };
  budget.release = [&](int64_t bytes) { counted -= bytes; };
  Promoter promoter(*rig.store, rig.Reader(), BuildOptions{.sync = false}, budget);

  limit = 1;  // nothing fits
  absl::StatusOr<HotLayerRecord> r = promoter.Promote(MakeProfile(1, {"/bin/app"}));
  CHECK(absl::IsResourceExhausted(r.status()));
  CHECK(counted == 0);
  CHECK_FALSE(rig.store->Get(kImage)->has_value());
  CHECK(fs::is_empty(rig.root / "fast/hot"));

  limit = int64_t{1} << 30;
  r = promoter.Promote(MakeProfile(1, {"/bin/app"}));
  REQUIRE(r.ok());
  CHECK(counted == r->Current()->bytes);
  CHECK(counted > 0);

  // At a restart, what is kept is counted again.
  absl::StatusOr<HotRecovery> rec = rig.store->Recover();
  REQUIRE(rec.ok());
  CHECK(rec->kept_bytes == counted);
}

TEST_CASE("Hot layer book: promote builds, then demotes the ready version's layers unless told not to",
          "[hbcsa][hot][root]") {
  if (!CanBuild()) return;
  Rig rig;
  Promoter promoter(*rig.store, rig.Reader(), BuildOptions{.sync = false});
  ProfileStore profiles(*rig.meta, 100);
  REQUIRE(profiles.Import(MakeProfile(1, {"/bin/app"})).ok());
  StoreProfileBook profile_book(profiles, [](const std::string&) { return std::string(); });

  struct Call {
    uint64_t version_id;
    bool wait;
  };
  std::vector<Call> calls;
  absl::Status demote_result = absl::OkStatus();
  int promoted = 0;
  StoreHotLayerBook::Wiring wiring;
  wiring.demote = [&](const HotLayerVersion& v, bool wait) -> absl::StatusOr<DemotionPlan> {
    calls.push_back({v.id, wait});
    if (!demote_result.ok()) return demote_result;
    return DemotionPlan{{"layer-a"}, {"pinned-b"}};
  };
  wiring.promoted = [&] { ++promoted; };
  StoreHotLayerBook book(*rig.store, promoter, profile_book, std::move(wiring));

  absl::StatusOr<HotLayerBook::Promotion> p = book.Promote(kImage, {.keep_layers = false, .wait = true});
  REQUIRE(p.ok());
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].wait);
  CHECK(p->demoted == std::vector<std::string>{"layer-a"});
  CHECK(p->pinned_fast == std::vector<std::string>{"pinned-b"});
  CHECK(p->layers_kept_why.empty());
  CHECK(promoted == 1);
  CHECK(p->hot_json.find("\"ready\"") != std::string::npos);

  // --keep-layers: the same version, nothing demoted, and why.
  p = book.Promote(kImage, {.keep_layers = true, .wait = false});
  REQUIRE(p.ok());
  CHECK(calls.size() == 1);
  CHECK(p->demoted.empty());
  CHECK_THAT(p->layers_kept_why, Catch::Contains("keep"));

  // A failed demotion fails the call and says the hot layer is ready.
  demote_result = absl::UnavailableError("mover stopped");
  p = book.Promote(kImage, {});
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(p.status().message()), Catch::Contains("is ready") && Catch::Contains("mover stopped"));

  // No demotion wired (demote = false, or no hot layer mounts): the reason given.
  StoreHotLayerBook::Wiring off;
  off.no_demotion_why = "demotion is off ([hbcsa] demote = false)";
  StoreHotLayerBook quiet(*rig.store, promoter, profile_book, std::move(off));
  p = quiet.Promote(kImage, {});
  REQUIRE(p.ok());
  CHECK(p->demoted.empty());
  CHECK(p->layers_kept_why == "demotion is off ([hbcsa] demote = false)");

  // An image without a profile: NotFound, nothing demoted.
  CHECK(book.Promote("sha256:" + std::string(64, 'f'), {}).status().code() == absl::StatusCode::kNotFound);
  CHECK(calls.size() == 2);
}

}  // namespace
}  // namespace ndocker::hbcsa
