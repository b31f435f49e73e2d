// Hot-file profiles: merging traced runs (union, run counts, first-access
// order, versions), the JSON that nodes exchange, and durability in the
// metadata store.
#include "hbcsa/profiles/profile_store.h"

#include <catch2/catch.hpp>

#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

const std::string kImage = "sha256:" + std::string(64, 'a');
const std::string kTop = "sha256:" + std::string(64, 'b');
const std::string kL1 = "sha256:" + std::string(64, '1');
const std::string kL2 = "sha256:" + std::string(64, '2');

TracedRun Run(std::vector<HotFile> files, bool complete = true) { return TracedRun{std::move(files), complete}; }

std::vector<std::string> Paths(const Profile& p) {
  std::vector<std::string> out;
  for (const HotFile& f : p.files) out.push_back(f.path);
  return out;
}

}  // namespace

TEST_CASE("merging runs keeps the union in first-access order with run counts", "[hbcsa][profile]") {
  Profile p;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  MergeRun(p, Run({{"/bin/app", kL2, 100, 0}, {"/lib/ld.so", kL1, 50, 0}, {"/etc/conf", kL2, 10, 0}}), t0, 100);
  CHECK(p.version == 1);
  CHECK(p.runs == 1);
  CHECK(Paths(p) == std::vector<std::string>{"/bin/app", "/lib/ld.so", "/etc/conf"});
  CHECK(p.bytes() == 160);

  // The same files again (one twice in the run): counts, no new version.
  MergeRun(p, Run({{"/bin/app", kL2, 100, 0}, {"/lib/ld.so", kL1, 50, 0}, {"/bin/app", kL2, 100, 0}}), t0, 100);
  CHECK(p.version == 1);
  CHECK(p.runs == 2);
  CHECK(p.files[0].runs == 2);
  CHECK(p.files[2].runs == 1);

  // One more file: appended, new version.
  MergeRun(p, Run({{"/data/extra", kL2, 7, 0}, {"/bin/app", kL2, 100, 0}}, /*complete=*/false), t0, 100);
  CHECK(p.version == 2);
  CHECK(Paths(p) == std::vector<std::string>{"/bin/app", "/lib/ld.so", "/etc/conf", "/data/extra"});
  CHECK(p.files[0].runs == 3);
  CHECK(p.incomplete_runs == 1);

  // A file now served by another layer is a change too.
  MergeRun(p, Run({{"/etc/conf", kL1, 10, 0}}), t0, 100);
  CHECK(p.version == 3);
  CHECK(p.files[2].layer == kL1);
}

TEST_CASE("a profile never grows past its file limit", "[hbcsa][profile]") {
  Profile p;
  std::vector<HotFile> files;
  for (int i = 0; i < 10; ++i) files.push_back({"/f" + std::to_string(i), kL1, 1, 0});
  CHECK(MergeRun(p, Run(files), absl::Now(), 4) == 6);
  CHECK(Paths(p) == std::vector<std::string>{"/f0", "/f1", "/f2", "/f3"});
}

TEST_CASE("profile JSON round-trips and refuses what it cannot trust", "[hbcsa][profile]") {
  Profile p;
  p.image = kImage;
  p.top_chain = kTop;
  MergeRun(p, Run({{"/bin/app", kL2, 100, 0}, {"/lib/ld.so", kL1, 50, 0}}), absl::FromUnixSeconds(77), 100);
  auto back = ProfileFromJson(ToJson(p));
  REQUIRE(back.ok());
  CHECK(back->image == p.image);
  CHECK(back->top_chain == p.top_chain);
  CHECK(back->version == p.version);
  CHECK(back->runs == 1);
  CHECK(back->updated == absl::FromUnixSeconds(77));
  CHECK(back->files == p.files);

  for (const std::string& bad : std::vector<std::string>{
           std::string("[]"), std::string("{"),
           std::string(R"({"image":"latest","version":1,"runs":1,"files":[]})"),
           R"({"image":")" + kImage + R"(","version":-1,"runs":1,"files":[]})",
           R"({"image":")" + kImage + R"(","version":1,"runs":1,"files":[{"path":"rel","size":1,"runs":1}]})",
           R"({"image":")" + kImage + R"(","version":1,"runs":1,"files":[{"path":"/a/../../etc/shadow","size":1,"runs":1}]})",
           R"({"image":")" + kImage + R"(","version":1,"runs":1,"files":[{"path":"/a","size":1,"runs":1},{"path":"/a","size":1,"runs":1}]})",
           R"({"image":")" + kImage + R"(","version":1,"runs":1,"files":[{"path":"/a","layer":"x","size":1,"runs":1}]})",
       }) {
    INFO(bad);
    CHECK(ProfileFromJson(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("profiles are durable in the metadata store", "[hbcsa][profile]") {
  testing::TempDir dir;
  {
    auto meta = MetaStore::Open(dir.path());
    REQUIRE(meta.ok());
    ProfileStore store(**meta, 100);
    auto p = store.Record(kImage, kTop, Run({{"/bin/app", kL2, 100, 0}}), absl::Now());
    REQUIRE(p.ok());
    CHECK(p->version == 1);
    bool changed = false;
    p = store.Record(kImage, kTop, Run({{"/bin/app", kL2, 100, 0}, {"/x", kL1, 1, 0}}), absl::Now(), &changed);
    REQUIRE(p.ok());
    CHECK(p->version == 2);
    CHECK(changed);
    p = store.Record(kImage, kTop, Run({{"/x", kL1, 1, 0}}), absl::Now(), &changed);
    REQUIRE(p.ok());
    CHECK(p->version == 2);
    CHECK_FALSE(changed);  // a run of files already in it: one more run, same version
  }
  auto meta = MetaStore::Open(dir.path());
  REQUIRE(meta.ok());
  ProfileStore store(**meta, 100);
  auto got = store.Get(kImage);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->runs == 3);
  CHECK((*got)->files.size() == 2);
  CHECK(store.Has(kImage).value_or(false));
  auto all = store.List();
  REQUIRE(all.ok());
  CHECK(all->size() == 1);

  // An import from another node continues above the local version.
  Profile other = **got;
  other.version = 1;
  auto imported = store.Import(other);
  REQUIRE(imported.ok());
  CHECK(imported->version == 3);

  REQUIRE(store.Remove(kImage).ok());
  CHECK(store.Remove(kImage).code() == absl::StatusCode::kNotFound);
  auto gone = store.Get(kImage);
  REQUIRE(gone.ok());
  CHECK_FALSE(gone->has_value());
  auto has = store.Has(kImage);
  REQUIRE(has.ok());
  CHECK_FALSE(*has);
}

}  // namespace ndocker::hbcsa
