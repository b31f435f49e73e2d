// The core's semantics against containerd's overlay snapshotter (facts §2),
// on temporary directories: no containerd, no mounts.
#include "snapshotter/snapshotter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "snapshotter/labels.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::unique_ptr<Snapshotter> OpenAt(const TempDir& dir, int64_t budget = 0,
                                    Tier default_tier = Tier::kFast) {
  SnapshotterOptions o;
  o.root = dir / "root";
  o.fast_budget_bytes = budget;
  o.default_tier = default_tier;
  // These tests pin down overlay semantics on one tier; rootfs placement has its own.
  o.container_tier = default_tier;
  auto s = Snapshotter::Open(o);
  REQUIRE(s.ok());
  return *std::move(s);
}

std::string OptionValue(const Mount& m, const std::string& name) {
  for (const std::string& o : m.options) {
    if (o.rfind(name + "=", 0) == 0) return o.substr(name.size() + 1);
  }
  return "";
}

// The fs dir of an active snapshot: the upperdir or the bind source.
std::string UpperOf(const std::vector<Mount>& mounts) {
  REQUIRE(mounts.size() == 1);
  if (mounts[0].type == "bind") return mounts[0].source;
  return OptionValue(mounts[0], "upperdir");
}

void WriteFile(const std::string& path, size_t bytes) {
  std::ofstream out(path);
  out << std::string(bytes, 'x');
}

// Prepare + write + Commit: a committed layer with `bytes` of data.
void MakeLayer(Snapshotter& s, const std::string& name, const std::string& parent, size_t bytes,
               const Labels& labels = {}) {
  auto m = s.Prepare("tmp-" + name, parent, labels);
  REQUIRE(m.ok());
  WriteFile(UpperOf(*m) + "/data-" + std::to_string(bytes), bytes);
  REQUIRE(s.Commit(name, "tmp-" + name, {}).ok());
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("prepare without parent gives a rw bind of a 0755 fs dir", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  mode_t old = ::umask(077);
  auto m = s->Prepare("default/1/a", "", {});
  ::umask(old);
  REQUIRE(m.ok());
  REQUIRE(m->size() == 1);
  CHECK((*m)[0].type == "bind");
  CHECK((*m)[0].options == std::vector<std::string>{"rw", "rbind"});
  struct stat st;
  REQUIRE(::stat((*m)[0].source.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  // Directories are named by id, never by key.
  CHECK((*m)[0].source.find("default/1/a") == std::string::npos);
  CHECK((*m)[0].source == s->layout().FsDir(Tier::kFast, 1));
  CHECK(fs::is_directory(s->layout().WorkDir(Tier::kFast, 1)));
}

TEST_CASE("mounts follow overlay's rules for 0, 1 and N parents", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  MakeLayer(*s, "l1", "", 10);
  MakeLayer(*s, "l2", "l1", 10);

  auto v1 = s->View("v1", "l1", {});
  REQUIRE(v1.ok());
  CHECK((*v1)[0].type == "bind");
  CHECK((*v1)[0].source == s->layout().FsDir(Tier::kFast, 1));
  CHECK((*v1)[0].options == std::vector<std::string>{"ro", "rbind"});

  auto v0 = s->View("v0", "", {});
  REQUIRE(v0.ok());
  CHECK((*v0)[0].options == std::vector<std::string>{"ro", "rbind"});

  auto v2 = s->View("v2", "l2", {});
  REQUIRE(v2.ok());
  CHECK((*v2)[0].type == "overlay");
  CHECK(OptionValue((*v2)[0], "lowerdir") ==
        s->layout().LinkPath(2) + ":" + s->layout().LinkPath(1));
  CHECK(OptionValue((*v2)[0], "upperdir").empty());

  auto a = s->Prepare("a", "l2", {});
  REQUIRE(a.ok());
  const Mount& om = (*a)[0];
  CHECK(om.type == "overlay");
  CHECK(om.source == "overlay");
  const std::string upper = OptionValue(om, "upperdir");
  CHECK(OptionValue(om, "workdir") == upper.substr(0, upper.size() - 2) + "work");
  // The short links resolve to the parents' fs dirs (nearest parent first).
  CHECK(fs::read_symlink(s->layout().LinkPath(2)) == s->layout().FsDir(Tier::kFast, 2));
  const bool has_index = ::access("/sys/module/overlay/parameters/index", F_OK) == 0;
  CHECK((om.options[0] == "index=off") == has_index);

  auto again = s->Mounts("a");
  REQUIRE(again.ok());
  CHECK(*again == *a);
}

TEST_CASE("error codes follow containerd's storage layer", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  REQUIRE(s->Prepare("active", "", {}).ok());
  MakeLayer(*s, "base", "", 1);

  CHECK(s->Prepare("x", "missing", {}).status().code() == absl::StatusCode::kNotFound);
  CHECK(s->Prepare("x", "active", {}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(s->Prepare("active", "", {}).status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(s->View("active", "base", {}).status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(s->Mounts("missing").status().code() == absl::StatusCode::kNotFound);
  CHECK(s->Mounts("base").status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->Commit("n", "missing", {}).code() == absl::StatusCode::kNotFound);
  CHECK(s->Commit("base", "active", {}).code() == absl::StatusCode::kAlreadyExists);
  REQUIRE(s->View("view", "base", {}).ok());
  CHECK(s->Commit("n", "view", {}).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->Remove("missing").code() == absl::StatusCode::kNotFound);
  auto has_child = s->Remove("base");
  CHECK(has_child.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(has_child.message()), Catch::Contains("remove"));
  CHECK(s->Stat("missing").status().code() == absl::StatusCode::kNotFound);
  CHECK(s->GetUsage("missing").status().code() == absl::StatusCode::kNotFound);
  SnapshotInfo missing;
  missing.name = "missing";
  CHECK(s->Update(missing, {}).status().code() == absl::StatusCode::kNotFound);
  SnapshotInfo base;
  base.name = "base";
  CHECK(s->Update(base, {"parent"}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(s->Prepare("", "", {}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("oversized labels are rejected and change nothing", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  Labels big{{"k", std::string(kMaxLabelBytes, 'v')}};
  CHECK(s->Prepare("a", "", big).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(s->Stat("a").status().code() == absl::StatusCode::kNotFound);
  CHECK(CountEntries(s->layout().SnapshotsDir(Tier::kFast)) == 0);
  Labels fits{{"k", std::string(kMaxLabelBytes - 1, 'v')}};
  CHECK(s->Prepare("a", "", fits).ok());
  CHECK(s->Commit("c", "a", big).code() == absl::StatusCode::kInvalidArgument);
  auto still = s->Stat("a");
  REQUIRE(still.ok());
  CHECK(still->kind == Kind::kActive);
}

TEST_CASE("commit resets times, replaces labels and stores usage", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  auto m = s->Prepare("a", "", {{"containerd.io/snapshot/x", "1"}});
  REQUIRE(m.ok());
  auto before = s->Stat("a");
  REQUIRE(before.ok());
  CHECK(before->created == before->updated);
  CHECK(before->kind == Kind::kActive);
  WriteFile(UpperOf(*m) + "/f", 10000);
  auto live = s->GetUsage("a");
  REQUIRE(live.ok());
  CHECK(live->size >= 10000);
  CHECK(live->inodes == 2);

  REQUIRE(s->Commit("c", "a", {{"y", "2"}}).ok());
  CHECK(s->Stat("a").status().code() == absl::StatusCode::kNotFound);
  auto after = s->Stat("c");
  REQUIRE(after.ok());
  CHECK(after->kind == Kind::kCommitted);
  CHECK(after->labels == Labels{{"y", "2"}});
  CHECK(after->created == after->updated);
  CHECK(after->created > before->created);
  auto stored = s->GetUsage("c");
  REQUIRE(stored.ok());
  CHECK(stored->size == live->size);
  CHECK(stored->inodes == live->inodes);

  // A removed key and a removed name can be used again at once.
  REQUIRE(s->Remove("c").ok());
  REQUIRE(s->Prepare("a", "", {}).ok());
  REQUIRE(s->Commit("c", "a", {}).ok());
}

TEST_CASE("update changes labels only, with containerd's mask rules", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  REQUIRE(s->Prepare("a", "", {{"l1", "v1"}, {"l2", "v2"}}).ok());
  auto created = s->Stat("a");
  REQUIRE(created.ok());

  SnapshotInfo in;
  in.name = "a";
  in.parent = "ignored";
  in.labels = {{"l1", "v1"}, {"l3", "v3"}};
  auto all = s->Update(in, {});
  REQUIRE(all.ok());
  CHECK(all->labels == Labels{{"l1", "v1"}, {"l3", "v3"}});
  CHECK(all->parent.empty());
  CHECK(all->created == created->created);
  CHECK(all->updated > created->updated);

  in.labels = {{"l1", "changed"}, {"l4", "v4"}};
  auto one = s->Update(in, {"labels.l1", "labels.l3"});
  REQUIRE(one.ok());
  // l3 is absent from the request, so the mask deletes it; l4 is not masked.
  CHECK(one->labels == Labels{{"l1", "changed"}});

  in.labels = {{"l5", "v5"}, {"empty", ""}};
  auto replaced = s->Update(in, {"labels"});
  REQUIRE(replaced.ok());
  CHECK(replaced->labels == Labels{{"l5", "v5"}});
  auto stat = s->Stat("a");
  REQUIRE(stat.ok());
  CHECK(stat->labels == replaced->labels);
  CHECK(stat->updated == replaced->updated);
}

TEST_CASE("walk applies containerd filters", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  MakeLayer(*s, "p", "", 1);
  REQUIRE(s->Prepare("a", "p", {{"containerd.io/gc.root", "x"}}).ok());
  REQUIRE(s->View("v", "p", {}).ok());
  auto names = [&](const std::vector<std::string>& filters) {
    auto f = Filter::ParseAll(filters);
    REQUIRE(f.ok());
    std::vector<std::string> out;
    REQUIRE(s->Walk(*f, [&](const SnapshotInfo& i) {
                 out.push_back(i.name);
                 return absl::OkStatus();
               }).ok());
    return out;
  };
  CHECK(names({}) == std::vector<std::string>{"a", "p", "v"});
  CHECK(names({"kind==committed"}) == std::vector<std::string>{"p"});
  CHECK(names({"parent==p"}) == std::vector<std::string>{"a", "v"});
  CHECK(names({"labels.\"containerd.io/gc.root\"==x"}) == std::vector<std::string>{"a"});
  CHECK(names({"name==p", "kind==view"}) == std::vector<std::string>{"p", "v"});
  CHECK(Filter::ParseAll({"name=="}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("the tier label picks the tier and the budget overrides fast", "[snapshotter][tiers]") {
  TempDir dir;
  auto s = OpenAt(dir, /*budget=*/64 * 1024);
  auto slow = s->Prepare("s", "", {{std::string(kTierLabel), "slow"}});
  REQUIRE(slow.ok());
  CHECK(UpperOf(*slow).rfind(s->layout().TierRoot(Tier::kSlow), 0) == 0);
  auto fast = s->Prepare("f", "", {{std::string(kTierLabel), "fast"}});
  REQUIRE(fast.ok());
  CHECK(UpperOf(*fast).rfind(s->layout().TierRoot(Tier::kFast), 0) == 0);
  CHECK(s->Prepare("bad", "", {{std::string(kTierLabel), "warm"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);

  // 40 KiB fits in 64 KiB; the next 40 KiB does not and moves to slow at
  // commit; then the tier is not full, so new snapshots still start on fast.
  MakeLayer(*s, "l1", "", 40 * 1024);
  MakeLayer(*s, "l2", "l1", 40 * 1024);
  auto entries = s->Entries();
  REQUIRE(entries.ok());
  std::map<std::string, Tier> tiers;
  for (const auto& e : *entries) tiers[e.key] = e.record.tier;
  CHECK(tiers["l1"] == Tier::kFast);
  CHECK(tiers["l2"] == Tier::kSlow);
  // ids: s=1, f=2, l1=3, l2=4.
  // The move made generation 1 on slow; the active's old dir is gone (no
  // mount could use it).
  CHECK(fs::exists(s->layout().FsDir(Tier::kSlow, 4, 1) + "/data-40960"));
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kFast, 4)));
  CHECK(fs::read_symlink(s->layout().LinkPath(4)) == s->layout().FsDir(Tier::kSlow, 4, 1));
  auto stats = s->Stats();
  REQUIRE(stats.ok());
  CHECK((*stats)[0].committed_bytes <= 64 * 1024);

  // Fill the fast tier exactly (16 KiB of data plus its 4 KiB dir): then
  // Prepare goes to slow directly.
  MakeLayer(*s, "l3", "l1", 16 * 1024);
  stats = s->Stats();
  REQUIRE(stats.ok());
  REQUIRE((*stats)[0].committed_bytes == 64 * 1024);
  auto full = s->Prepare("after-full", "", {});
  REQUIRE(full.ok());
  CHECK(UpperOf(*full).rfind(s->layout().TierRoot(Tier::kSlow), 0) == 0);
}

TEST_CASE("cleanup removes only what no snapshot owns", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  MakeLayer(*s, "keep", "", 1);
  MakeLayer(*s, "drop", "keep", 1);
  REQUIRE(s->Remove("drop").ok());
  // Data stays until Cleanup, like containerd's overlay (asynchronous remove).
  CHECK(fs::exists(s->layout().SnapshotDir(Tier::kFast, 2)));
  fs::create_directories(s->layout().SnapshotsDir(Tier::kSlow) + "/99/fs");
  fs::create_directories(s->layout().StagingDir(Tier::kSlow) + "/7-abc/fs");
  REQUIRE(s->Cleanup().ok());
  CHECK(fs::exists(s->layout().SnapshotDir(Tier::kFast, 1)));
  CHECK(fs::is_symlink(s->layout().LinkPath(1)));
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kFast, 2)));
  CHECK_FALSE(fs::is_symlink(s->layout().LinkPath(2)));
  CHECK(CountEntries(s->layout().SnapshotsDir(Tier::kSlow)) == 0);
  CHECK(CountEntries(s->layout().StagingDir(Tier::kSlow)) == 0);
}

TEST_CASE("state survives a restart and links are repaired", "[snapshotter]") {
  TempDir dir;
  absl::Time created;
  {
    auto s = OpenAt(dir);
    MakeLayer(*s, "base", "", 100);
    REQUIRE(s->Prepare("active", "base", {{"a", "b"}}).ok());
    created = s->Stat("active")->created;
    fs::remove(s->layout().LinkPath(1));  // as if we crashed before relinking
  }
  auto s = OpenAt(dir);
  auto info = s->Stat("active");
  REQUIRE(info.ok());
  CHECK(info->created == created);
  CHECK(info->parent == "base");
  CHECK(info->labels == Labels{{"a", "b"}});
  CHECK(fs::read_symlink(s->layout().LinkPath(1)) == s->layout().FsDir(Tier::kFast, 1));
  // Ids keep growing: a new snapshot never reuses a directory.
  auto m = s->Prepare("next", "", {});
  REQUIRE(m.ok());
  CHECK(UpperOf(*m) == s->layout().FsDir(Tier::kFast, 3));
}

TEST_CASE("a new snapshot's fs takes its parent's owner", "[snapshotter]") {
  TempDir dir;
  auto s = OpenAt(dir);
  auto m = s->Prepare("a", "", {});
  REQUIRE(m.ok());
  REQUIRE(::chown(UpperOf(*m).c_str(), 1000, 1001) == 0);
  REQUIRE(s->Commit("p", "a", {}).ok());
  auto child = s->Prepare("c", "p", {});
  REQUIRE(child.ok());
  struct stat st;
  REQUIRE(::stat(UpperOf(*child).c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 1001);
}

}  // namespace ndocker

namespace ndocker {

TEST_CASE("fast-tier room comes back when fast layers are removed, also after restart",
          "[snapshotter][tiers]") {
  TempDir dir;
  {
    auto s = OpenAt(dir, /*budget=*/16 * 1024);
    MakeLayer(*s, "full", "", 12 * 1024);  // 12 KiB + its 4 KiB dir: exactly full
    auto m = s->Prepare("while-full", "", {});
    REQUIRE(m.ok());
    CHECK(UpperOf(*m).rfind(s->layout().TierRoot(Tier::kSlow), 0) == 0);
  }
  // The counter is rebuilt from the records at Open.
  auto s = OpenAt(dir, /*budget=*/16 * 1024);
  auto still_full = s->Prepare("still-full", "", {});
  REQUIRE(still_full.ok());
  CHECK(UpperOf(*still_full).rfind(s->layout().TierRoot(Tier::kSlow), 0) == 0);
  REQUIRE(s->Remove("full").ok());
  auto room = s->Prepare("room", "", {});
  REQUIRE(room.ok());
  CHECK(UpperOf(*room).rfind(s->layout().TierRoot(Tier::kFast), 0) == 0);
}

// Records what the core asks and answers from a script.
class ScriptedAdvisor : public PlacementAdvisor {
 public:
  std::optional<Placement> Advise(const PlacementRequest& request) override {
    asked.push_back(request.key + "|" + request.unpack_chain_id);
    if (request.unpack_chain_id.empty()) return std::nullopt;
    return Placement{Tier::kSlow, rule::kLdlBelow, "scripted"};
  }
  void Committed(const CommitReport& report) override { commits.push_back(report); }
  std::vector<std::string> asked;
  std::vector<CommitReport> commits;
};

TEST_CASE("placement: label, then advisor, then defaults, with rule and reason are stored",
          "[snapshotter][placement]") {
  TempDir dir;
  auto advisor = std::make_shared<ScriptedAdvisor>();
  SnapshotterOptions o;
  o.root = dir / "root";
  o.default_tier = Tier::kFast;
  o.advisor = advisor;
  auto opened = Snapshotter::Open(o);
  REQUIRE(opened.ok());
  auto& s = *opened;
  const std::string chain = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

  // An unpack Prepare (ctr's key form): the advisor decides.
  REQUIRE(s->Prepare("extract-1-abcd " + chain, "", {}).ok());
  // The label wins over the advisor, which is then not asked.
  REQUIRE(s->Prepare("extract-2-abcd " + chain, "", {{std::string(kTierLabel), "fast"}}).ok());
  // A container rootfs: the advisor has no opinion, the container tier (slow by default) applies.
  REQUIRE(s->Prepare("default/1/web", "", {}).ok());
  // A view: default tier.
  REQUIRE(s->View("v", "", {}).ok());
  CHECK(advisor->asked == std::vector<std::string>{"extract-1-abcd " + chain + "|" + chain,
                                                   "default/1/web|", "v|"});

  auto entries = s->Entries();
  REQUIRE(entries.ok());
  std::map<std::string, SnapshotRecord> by_key;
  for (const auto& e : *entries) by_key[e.key] = e.record;
  CHECK(by_key["extract-1-abcd " + chain].tier == Tier::kSlow);
  CHECK(by_key["extract-1-abcd " + chain].placement_rule == rule::kLdlBelow);
  CHECK(by_key["extract-1-abcd " + chain].placement_reason == "scripted");
  CHECK(by_key["extract-2-abcd " + chain].tier == Tier::kFast);
  CHECK(by_key["extract-2-abcd " + chain].placement_rule == rule::kLabel);
  CHECK(by_key["default/1/web"].tier == Tier::kSlow);
  CHECK(by_key["default/1/web"].placement_rule == rule::kContainerRootfs);
  CHECK(by_key["v"].tier == Tier::kFast);
  CHECK(by_key["v"].placement_rule == rule::kDefault);

  // Commit keeps the rule, tells the advisor, and the record survives a reopen.
  WriteFile(UpperOf(*s->Mounts("extract-1-abcd " + chain)) + "/f", 8192);
  REQUIRE(s->Commit(chain, "extract-1-abcd " + chain, {}).ok());
  REQUIRE(advisor->commits.size() == 1);
  CHECK(advisor->commits[0].name == chain);
  CHECK(advisor->commits[0].tier == Tier::kSlow);
  CHECK(advisor->commits[0].rule == rule::kLdlBelow);
  CHECK(advisor->commits[0].size >= 8192);
  CHECK(advisor->commits[0].committed >= advisor->commits[0].prepared);
  s.reset();
  o.advisor = nullptr;
  auto reopened = Snapshotter::Open(o);
  REQUIRE(reopened.ok());
  auto again = (*reopened)->Entries();
  REQUIRE(again.ok());
  bool found = false;
  for (const auto& e : *again) {
    if (e.key != chain) continue;
    found = true;
    CHECK(e.record.tier == Tier::kSlow);
    CHECK(e.record.placement_rule == rule::kLdlBelow);
    CHECK(e.record.placement_reason == "scripted");
  }
  CHECK(found);
}

TEST_CASE("a container rootfs on the fast tier needs room for what it may write", "[snapshotter][placement]") {
  TempDir dir;
  SnapshotterOptions o;
  o.root = dir / "root";
  o.container_tier = Tier::kFast;
  o.container_expected_bytes = 4096;  // surely free
  auto opened = Snapshotter::Open(o);
  REQUIRE(opened.ok());
  REQUIRE((*opened)->Prepare("default/1/fits", "", {}).ok());
  opened->reset();
  o.container_expected_bytes = int64_t{1} << 60;  // more than any filesystem has
  opened = Snapshotter::Open(o);
  REQUIRE(opened.ok());
  REQUIRE((*opened)->Prepare("default/2/too-big", "", {}).ok());
  // A view is no container: no reserve asked.
  REQUIRE((*opened)->View("default/3/view", "", {}).ok());
  auto entries = (*opened)->Entries();
  REQUIRE(entries.ok());
  std::map<std::string, SnapshotRecord> by_key;
  for (const auto& e : *entries) by_key[e.key] = e.record;
  CHECK(by_key["default/1/fits"].tier == Tier::kFast);
  CHECK(by_key["default/1/fits"].placement_rule == rule::kContainerRootfs);
  CHECK(by_key["default/2/too-big"].tier == Tier::kSlow);
  CHECK(by_key["default/2/too-big"].placement_rule == rule::kFastFsFull);
  CHECK(by_key["default/3/view"].tier == Tier::kFast);
}

TEST_CASE("a layer moved to slow at commit gets rule budget-commit", "[snapshotter][placement]") {
  TempDir dir;
  auto s = OpenAt(dir, /*budget=*/16 * 1024);
  auto m = s->Prepare("big", "", {});
  REQUIRE(m.ok());
  WriteFile(UpperOf(*m) + "/f", 64 * 1024);
  REQUIRE(s->Commit("big-c", "big", {}).ok());
  auto entries = s->Entries();
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].record.tier == Tier::kSlow);
  CHECK((*entries)[0].record.placement_rule == rule::kBudgetCommit);
  CHECK((*entries)[0].record.placement_reason.find("do not fit") != std::string::npos);
}

}  // namespace ndocker
