// The mover and the core's crash-safety rules on temporary directories:
// migrations keep old copies while snapshots made before them exist, ids are
// never reused, tiers have an owner, start-up survives what it cannot clean.
// (Real mounts, two filesystems and kill -9: test/daemon/crash_test.cc and
// test/integration/test_mover_live.sh.)
#include "snapshotter/mover.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "snapshotter/snapshotter.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

SnapshotterOptions OptionsAt(const TempDir& dir, const std::string& root = "root") {
  SnapshotterOptions o;
  o.root = dir / root;
  o.fast_path = dir / "fast";
  o.slow_path = dir / "slow";
  o.container_tier = Tier::kFast;
  return o;
}

std::unique_ptr<Snapshotter> OpenWith(SnapshotterOptions o) {
  auto s = Snapshotter::Open(std::move(o));
  REQUIRE(s.ok());
  return *std::move(s);
}

std::string Upper(const std::vector<Mount>& m) {
  REQUIRE(m.size() == 1);
  if (m[0].type == "bind") return m[0].source;
  for (const std::string& o : m[0].options) {
    if (o.rfind("upperdir=", 0) == 0) return o.substr(9);
  }
  FAIL("no upperdir");
  return "";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A committed layer holding one file with `content`.
void Layer(Snapshotter& s, const std::string& name, const std::string& parent, const std::string& content) {
  auto m = s.Prepare("tmp-" + name, parent, {});
  REQUIRE(m.ok());
  std::ofstream(Upper(*m) + "/file") << content;
  REQUIRE(s.Commit(name, "tmp-" + name, {}).ok());
}

SnapshotRecord Record(Snapshotter& s, const std::string& key) {
  auto entries = s.Entries();
  REQUIRE(entries.ok());
  for (const auto& e : *entries) {
    if (e.key == key) return e.record;
  }
  FAIL("no record " << key);
  return {};
}

}  // namespace

TEST_CASE("a migration copies, switches the record and the link, and drops the unused old copy",
          "[mover]") {
  TempDir dir;
  auto s = OpenWith(OptionsAt(dir));
  Layer(*s, "ns/1/sha256:base", "", "base-data");
  const SnapshotRecord before = Record(*s, "ns/1/sha256:base");
  REQUIRE(before.tier == Tier::kFast);

  auto moved = s->Migrate("sha256:base", Tier::kSlow, /*wait=*/true);
  REQUIRE(moved.ok());
  REQUIRE(moved->size() == 1);
  CHECK((*moved)[0].state == "migrated");
  const SnapshotRecord after = Record(*s, "ns/1/sha256:base");
  CHECK(after.tier == Tier::kSlow);
  CHECK(after.generation == 1);
  CHECK(after.retired.empty());  // nothing could use the old copy: reaped at once
  const std::string fs_dir = s->layout().FsDir(Tier::kSlow, before.id, 1);
  CHECK(ReadAll(fs_dir + "/file") == "base-data");
  CHECK(fs::read_symlink(s->layout().LinkPath(before.id)) == fs_dir);
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kFast, before.id, 0)));
  CHECK(fs::is_empty(s->layout().StagingDir(Tier::kSlow)));

  // Again to the same tier: nothing to do.
  auto again = s->Migrate("ns/1/sha256:base", Tier::kSlow, true);
  REQUIRE(again.ok());
  CHECK((*again)[0].state == "already");
}

TEST_CASE("old copies stay while snapshots made before the switch exist", "[mover]") {
  TempDir dir;
  auto s = OpenWith(OptionsAt(dir));
  Layer(*s, "base", "", "v");
  const uint64_t id = Record(*s, "base").id;
  // A container made before the migrations: its mount may hold generation 0.
  REQUIRE(s->Prepare("container", "base", {}).ok());

  REQUIRE(s->Migrate("base", Tier::kSlow, true).ok());
  REQUIRE(s->Migrate("base", Tier::kFast, true).ok());
  SnapshotRecord r = Record(*s, "base");
  CHECK(r.tier == Tier::kFast);
  CHECK(r.generation == 2);
  CHECK(r.placement_rule == "migrated");
  CHECK(r.placement_reason.rfind("migrated slow -> fast at ", 0) == 0);
  // The first placement is kept once, however often the layer moves.
  CHECK(r.placement_reason.find("; placed first by container-rootfs: ") != std::string::npos);
  CHECK(r.placement_reason.find("placed first by migrated") == std::string::npos);
  REQUIRE(r.retired.size() == 2);
  CHECK(fs::exists(s->layout().FsDir(Tier::kFast, id, 0) + "/file"));  // the container's copy
  CHECK(fs::exists(s->layout().FsDir(Tier::kSlow, id, 1) + "/file"));
  CHECK(fs::exists(s->layout().FsDir(Tier::kFast, id, 2) + "/file"));

  // A container made after the switch does not hold the old copies.
  REQUIRE(s->Prepare("later", "base", {}).ok());
  REQUIRE(s->Cleanup().ok());
  CHECK(Record(*s, "base").retired.size() == 2);

  REQUIRE(s->Remove("container").ok());
  REQUIRE(s->Cleanup().ok());
  r = Record(*s, "base");
  CHECK(r.retired.empty());
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kFast, id, 0)));
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kSlow, id, 1)));
  CHECK(ReadAll(s->layout().FsDir(Tier::kFast, id, 2) + "/file") == "v");
  // The later container's mounts name the link, which names generation 2.
  auto m = s->Mounts("later");
  REQUIRE(m.ok());
  CHECK(fs::read_symlink(s->layout().LinkPath(id)) == s->layout().FsDir(Tier::kFast, id, 2));
}

TEST_CASE("retired copies survive a restart and are reaped after it", "[mover]") {
  TempDir dir;
  uint64_t id = 0;
  {
    auto s = OpenWith(OptionsAt(dir));
    Layer(*s, "base", "", "v");
    id = Record(*s, "base").id;
    REQUIRE(s->Prepare("container", "base", {}).ok());
    REQUIRE(s->Migrate("base", Tier::kSlow, true).ok());
  }
  auto s = OpenWith(OptionsAt(dir));
  CHECK(Record(*s, "base").retired.size() == 1);
  CHECK(fs::exists(s->layout().FsDir(Tier::kFast, id, 0) + "/file"));
  REQUIRE(s->Remove("container").ok());
  REQUIRE(s->Cleanup().ok());
  CHECK(Record(*s, "base").retired.empty());
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kFast, id, 0)));
}

TEST_CASE("migrate refuses what it cannot move and changes nothing", "[mover]") {
  TempDir dir;
  SnapshotterOptions o = OptionsAt(dir);
  o.fast_budget_bytes = 64 * 1024;
  auto s = OpenWith(o);
  CHECK(s->Migrate("nope", Tier::kSlow, true).status().code() == absl::StatusCode::kNotFound);
  REQUIRE(s->Prepare("active", "", {}).ok());
  CHECK(s->Migrate("active", Tier::kSlow, true).status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->Migrate("active", Tier::kSlow, false).status().code() == absl::StatusCode::kFailedPrecondition);

  // A slow layer too big for the fast budget stays where it is.
  auto m = s->Prepare("tmp", "", {{"containerd.io/snapshot/ndocker.tier", "slow"}});
  REQUIRE(m.ok());
  std::ofstream(Upper(*m) + "/big") << std::string(100 * 1024, 'x');
  REQUIRE(s->Commit("big", "tmp", {}).ok());
  const SnapshotRecord before = Record(*s, "big");
  auto st = s->Migrate("big", Tier::kFast, true);
  CHECK(st.status().code() == absl::StatusCode::kResourceExhausted);
  const SnapshotRecord after = Record(*s, "big");
  CHECK(after.tier == Tier::kSlow);
  CHECK(after.generation == before.generation);
  CHECK(fs::is_empty(s->layout().StagingDir(Tier::kFast)));
  CHECK(fs::is_empty(s->layout().SnapshotsDir(Tier::kFast)) == false);  // "active" lives there
  auto stats = s->Stats();
  REQUIRE(stats.ok());
  CHECK((*stats)[0].committed_bytes == 0);
}

TEST_CASE("queued migrations run in the background", "[mover]") {
  TempDir dir;
  auto s = OpenWith(OptionsAt(dir));
  Layer(*s, "base", "", "v");
  auto q = s->Migrate("base", Tier::kSlow, /*wait=*/false);
  REQUIRE(q.ok());
  CHECK((*q)[0].state == "queued");
  for (int i = 0; i < 500 && Record(*s, "base").tier != Tier::kSlow; ++i) ::usleep(10'000);
  CHECK(Record(*s, "base").tier == Tier::kSlow);
}

TEST_CASE("stopping the mover ends a throttled copy in flight and refuses new migrations",
          "[mover]") {
  TempDir dir;
  SnapshotterOptions o = OptionsAt(dir);
  o.migrate_bytes_per_second = 256 * 1024;  // 4 MiB would take 16 s
  auto s = OpenWith(o);
  Layer(*s, "ns/1/sha256:base", "", std::string(4 << 20, 'x'));
  const SnapshotRecord before = Record(*s, "ns/1/sha256:base");
  absl::StatusOr<std::vector<MigrationOutcome>> moved;
  std::thread demote([&] { moved = s->Migrate("sha256:base", Tier::kSlow, /*wait=*/true); });
  // Until the copy is under way (a block copied).
  for (int i = 0; i < 500; ++i) {
    const auto m = s->Health().migrations;
    if (!m.empty() && m[0].bytes_copied > 0) break;
    ::usleep(10'000);
  }
  s->StopMigrations();
  demote.join();
  // Cancelled mid-copy (not a wall-clock bound: the copy did not run to its end).
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.status().code() == absl::StatusCode::kCancelled);
  // Where it was, intact; nothing of the copy left.
  const SnapshotRecord after = Record(*s, "ns/1/sha256:base");
  CHECK(after.tier == Tier::kFast);
  CHECK(after.generation == before.generation);
  CHECK(ReadAll(s->layout().FsDir(Tier::kFast, before.id, before.generation) + "/file").size() == (4u << 20));
  CHECK(fs::is_empty(s->layout().StagingDir(Tier::kSlow)));
  CHECK_FALSE(fs::exists(s->layout().SnapshotDir(Tier::kSlow, before.id, before.generation + 1)));

  auto refused = s->Migrate("sha256:base", Tier::kSlow, /*wait=*/false);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kUnavailable);
  CHECK(s->Health().migrations.empty());
}

TEST_CASE("ids are never reused, not even ids only a leftover directory shows", "[mover]") {
  TempDir dir;
  {
    auto s = OpenWith(OptionsAt(dir));
    REQUIRE(s->Prepare("a", "", {}).ok());  // id 1
    CHECK(s->Prepare("a", "", {}).status().code() == absl::StatusCode::kAlreadyExists);
    REQUIRE(s->Prepare("b", "", {}).ok());
    CHECK(Record(*s, "b").id == 2);
  }
  // A crash left a directory of an id the store never recorded.
  fs::create_directories(dir / "slow/snapshots/40-3/fs");
  auto s = OpenWith(OptionsAt(dir));
  REQUIRE(s->Prepare("c", "", {}).ok());
  CHECK(Record(*s, "c").id == 41);
  CHECK_FALSE(fs::exists(dir / "slow/snapshots/40-3"));  // and it was garbage
}

TEST_CASE("a root that does not own populated tiers refuses to start and deletes nothing", "[mover][owner]") {
  TempDir dir;
  {
    auto s = OpenWith(OptionsAt(dir));
    Layer(*s, "base", "", "v");
    REQUIRE(s->Prepare("container", "base", {}).ok());
  }
  auto count = [&] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::recursive_directory_iterator(dir / "fast")) ++n;
    return n;
  };
  const size_t before = count();
  SnapshotterOptions other = OptionsAt(dir, "other-root");
  auto refused = Snapshotter::Open(other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(refused.status().message()).find("--claim-tiers") != std::string::npos);
  CHECK(count() == before);

  // The owner still starts and has everything.
  {
    auto s = OpenWith(OptionsAt(dir));
    CHECK(ReadAll(s->layout().FsDir(Tier::kFast, Record(*s, "base").id) + "/file") == "v");
  }
  // Lost metadata (a new root for the same tiers) is refused the same way;
  // adopting keeps the data in lost+found.
  other.claim_tiers = ClaimMode::kAdopt;
  auto adopted = OpenWith(other);
  CHECK(fs::is_empty(dir / "fast/snapshots"));
  size_t kept = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "fast/lost+found")) ++kept;
  CHECK(kept == 1);
  // Now the old root is the stranger.
  CHECK(Snapshotter::Open(OptionsAt(dir)).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("swapped tier paths are refused", "[mover][owner]") {
  TempDir dir;
  { OpenWith(OptionsAt(dir)); }
  SnapshotterOptions swapped = OptionsAt(dir);
  std::swap(swapped.fast_path, swapped.slow_path);
  auto s = Snapshotter::Open(swapped);
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.status().message()).find("swapped") != std::string::npos);
}

TEST_CASE("a missing snapshot directory is reported, never linked", "[mover]") {
  TempDir dir;
  uint64_t id = 0;
  {
    auto s = OpenWith(OptionsAt(dir));
    Layer(*s, "base", "", "v");
    id = Record(*s, "base").id;
  }
  fs::remove_all(dir / ("fast/snapshots/" + std::to_string(id)));
  fs::remove(dir / ("root/l/" + Layout::ShortId(id)));
  auto s = OpenWith(OptionsAt(dir));
  const StoreHealth h = s->Health();
  REQUIRE(h.missing.size() == 1);
  CHECK(h.missing[0] == "base");
  CHECK_FALSE(fs::is_symlink(s->layout().LinkPath(id)));
}

TEST_CASE("start-up and Cleanup go on past an undeletable file", "[mover][cleanup]") {
  if (::geteuid() != 0) {
    WARN("needs root for chattr +i; skipped");
    return;
  }
  TempDir dir;
  { OpenWith(OptionsAt(dir)); }
  fs::create_directories(dir / "slow/snapshots/77/fs");
  fs::create_directories(dir / "slow/snapshots/78/fs");
  const std::string stuck = dir / "slow/snapshots/77/fs/immutable";
  std::ofstream(stuck) << "x";
  int fd = ::open(stuck.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  int flags = 0;
  REQUIRE(::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0);
  flags |= FS_IMMUTABLE_FL;
  const bool immutable = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  if (!immutable) {
    ::close(fd);
    WARN("this filesystem has no immutable flag; skipped");
    return;
  }
  {
    auto s = OpenWith(OptionsAt(dir));  // must start
    CHECK(fs::exists(stuck));
    CHECK_FALSE(fs::exists(dir / "slow/snapshots/78"));
    REQUIRE(s->Prepare("works", "", {}).ok());
    CHECK(s->Cleanup().ok());
  }
  flags &= ~FS_IMMUTABLE_FL;
  REQUIRE(::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
  ::close(fd);
}

}  // namespace ndocker
