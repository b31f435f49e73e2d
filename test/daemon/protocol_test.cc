// The snapshots.v1 protocol over the wire, as containerd's proxy client sees
// it: mounts (facts §2.2), Info fields and timestamps (§1.4), Update masks
// (§2.3), List batching, Usage, Remove/Cleanup (§2.3, §2.5), and the socket.
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {
namespace {

namespace fs = std::filesystem;
using Mounts = google::protobuf::RepeatedPtrField<PbMount>;

constexpr int64_t kGoZeroSeconds = -62135596800;  // 0001-01-01T00:00:00Z

std::string Real(const std::string& p) { return fs::canonical(p).string(); }

std::vector<std::string> Options(const PbMount& m) { return {m.options().begin(), m.options().end()}; }

// The snapshot directory (<tier>/snapshots/<id>) behind a mount list.
std::string SnapshotDirOf(const Mounts& m) {
  REQUIRE(m.size() == 1);
  if (m[0].type() == "bind") return fs::path(m[0].source()).parent_path().string();
  auto upper = MountOption(m[0], "upperdir");
  REQUIRE(upper.has_value());
  return fs::path(*upper).parent_path().string();
}

// containerd's du: st_blocks*512 over unique inodes, the root dir included.
pb::UsageResponse ExpectedUsage(const std::string& dir) {
  std::set<std::pair<dev_t, ino_t>> seen;
  pb::UsageResponse u;
  auto count = [&](const std::string& p) {
    struct stat st;
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    if (seen.emplace(st.st_dev, st.st_ino).second) {
      u.set_size(u.size() + st.st_blocks * 512);
      u.set_inodes(u.inodes() + 1);
    }
  };
  count(dir);
  for (const auto& e : fs::recursive_directory_iterator(dir)) count(e.path().string());
  return u;
}

void CheckInfoSane(const pb::Info& info) {
  INFO("info: " << info.ShortDebugString());
  CHECK(info.kind() != pb::UNKNOWN);
  CHECK(info.has_created_at());
  CHECK(info.has_updated_at());
  CHECK(info.created_at().nanos() >= 0);
  CHECK(info.created_at().nanos() < 1000000000);
  CHECK(info.updated_at().nanos() >= 0);
  CHECK(info.updated_at().nanos() < 1000000000);
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  CHECK(std::abs(info.created_at().seconds() - now) < 3600);
  CHECK(std::abs(info.updated_at().seconds() - now) < 3600);
}

bool Before(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() < b.seconds() || (a.seconds() == b.seconds() && a.nanos() < b.nanos());
}

TEST_CASE("the fixture notices changes and survives restarts", "[daemon][protocol][fixture]") {
  DaemonProcess d;
  StateSnapshot before = CaptureState(d);
  REQUIRE_OK(d.client().Prepare("k", ""));
  std::string diff = DiffStates(before, CaptureState(d));
  CHECK_THAT(diff, Catch::Contains("disk under root changed"));
  CHECK_THAT(diff, Catch::Contains("List result changed"));
  const pid_t first = d.pid();
  d.Restart(/*hard=*/true);
  CHECK(d.pid() != first);
  REQUIRE_OK(d.client().Stat("k"));
  d.Restart(/*hard=*/false);
  REQUIRE_OK(d.client().Stat("k"));
  CHECK(d.starts() == 3);
  // The client outlives restarts; while the daemon is down calls fail cleanly.
  SnapshotsClient& c = d.client();
  d.Kill();
  CHECK(CodeName(c.Stat("k")) == "UNAVAILABLE");
  d.Start();
  REQUIRE_OK(c.Stat("k"));
}

TEST_CASE("lifecycle: prepare, write, commit, view, prepare on top", "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();

  // Prepare with no parent: one rw bind of the snapshot's own fs.
  Mounts a_mounts;
  REQUIRE_OK(c.Prepare("a-active", "", {}, &a_mounts));
  REQUIRE(a_mounts.size() == 1);
  CHECK(a_mounts[0].type() == "bind");
  CHECK(Options(a_mounts[0]) == std::vector<std::string>{"rw", "rbind"});
  CHECK(a_mounts[0].target().empty());
  const std::string a_fs = a_mounts[0].source();
  REQUIRE(fs::is_directory(a_fs));
  CHECK(fs::path(a_fs).filename() == "fs");
  // Not an unpack key, so a container rootfs: the container tier, fast by
  // default (the test fast tier has room for its reserve). An active has a
  // work dir next to fs.
  CHECK(a_fs.rfind(d.fast_dir() + "/snapshots/", 0) == 0);
  CHECK(fs::is_directory(fs::path(a_fs).parent_path() / "work"));
  CHECK(fs::is_empty(a_fs));

  pb::Info a_prep;
  REQUIRE_OK(c.Stat("a-active", &a_prep));
  CheckInfoSane(a_prep);
  CHECK(a_prep.name() == "a-active");
  CHECK(a_prep.parent().empty());
  CHECK(a_prep.kind() == pb::ACTIVE);
  CHECK(SameTime(a_prep.created_at(), a_prep.updated_at()));

  // The applier writes straight into the bind source.
  WriteFile(a_fs + "/a.txt", "from layer a\n");
  fs::create_directory(a_fs + "/dir");
  WriteFile(a_fs + "/dir/nested", "nested\n");

  const LabelMap a_labels = {{"containerd.io/snapshot.ref", "sha256:aaaa"}};
  REQUIRE_OK(c.Commit("a", "a-active", a_labels));
  pb::Info a_info;
  REQUIRE_OK(c.Stat("a", &a_info));
  CheckInfoSane(a_info);
  CHECK(a_info.name() == "a");
  CHECK(a_info.kind() == pb::COMMITTED);
  CHECK(SameTime(a_info.created_at(), a_info.updated_at()));
  // Commit resets the times.
  CHECK_FALSE(Before(a_info.created_at(), a_prep.created_at()));
  CHECK(LabelMap(a_info.labels().begin(), a_info.labels().end()) == a_labels);
  CHECK(CodeName(c.Stat("a-active")) == "NOT_FOUND");
  // Committing keeps the data where it was (same tier, same id).
  CHECK(ReadFile(a_fs + "/a.txt") == "from layer a\n");

  // A one-parent view is a ro bind of the parent's fs.
  Mounts v_mounts;
  REQUIRE_OK(c.View("a-view", "a", {}, &v_mounts));
  REQUIRE(v_mounts.size() == 1);
  CHECK(v_mounts[0].type() == "bind");
  CHECK(Options(v_mounts[0]) == std::vector<std::string>{"ro", "rbind"});
  CHECK(Real(v_mounts[0].source()) == Real(a_fs));
  CHECK(ReadFile(v_mounts[0].source() + "/a.txt") == "from layer a\n");
  pb::Info v_info;
  REQUIRE_OK(c.Stat("a-view", &v_info));
  CheckInfoSane(v_info);
  CHECK(v_info.kind() == pb::VIEW);
  CHECK(v_info.parent() == "a");
  CHECK(SameTime(v_info.created_at(), v_info.updated_at()));
  Mounts again;
  REQUIRE_OK(c.Mounts("a-view", &again));
  CHECK(MountsString(again) == MountsString(v_mounts));

  // An active on top: one overlay with workdir, upperdir, lowerdir.
  Mounts b_mounts;
  REQUIRE_OK(c.Prepare("b-active", "a", {}, &b_mounts));
  REQUIRE(b_mounts.size() == 1);
  const PbMount& ov = b_mounts[0];
  INFO("overlay options: " << ov.ShortDebugString());
  CHECK(ov.type() == "overlay");
  CHECK(ov.source() == "overlay");
  auto work = MountOption(ov, "workdir");
  auto upper = MountOption(ov, "upperdir");
  auto lower = MountOption(ov, "lowerdir");
  REQUIRE(work.has_value());
  REQUIRE(upper.has_value());
  REQUIRE(lower.has_value());
  std::vector<std::string> opts = Options(ov);
  CHECK(std::count_if(opts.begin(), opts.end(), [](const std::string& o) { return o.rfind("workdir=", 0) == 0; }) == 1);
  CHECK(std::count_if(opts.begin(), opts.end(), [](const std::string& o) { return o.rfind("upperdir=", 0) == 0; }) == 1);
  CHECK(opts.back().rfind("lowerdir=", 0) == 0);
  if (::access("/sys/module/overlay/parameters/index", F_OK) == 0) {
    CHECK(opts.front() == "index=off");
  }
  CHECK(lower->find(':') == std::string::npos);  // one parent
  CHECK(Real(*lower) == Real(a_fs));
  CHECK(fs::is_directory(*upper));
  CHECK(fs::is_directory(*work));
  CHECK(fs::path(*upper).parent_path() == fs::path(*work).parent_path());
  CHECK(Real(*upper) != Real(a_fs));
  CHECK(fs::is_empty(*upper));
  REQUIRE_OK(c.Mounts("b-active", &again));
  CHECK(MountsString(again) == MountsString(b_mounts));

  pb::Info b_prep;
  REQUIRE_OK(c.Stat("b-active", &b_prep));
  CheckInfoSane(b_prep);
  CHECK(b_prep.kind() == pb::ACTIVE);
  CHECK(b_prep.parent() == "a");
  CHECK(SameTime(b_prep.created_at(), b_prep.updated_at()));

  WriteFile(*upper + "/b.txt", "from layer b\n");
  REQUIRE_OK(c.Commit("b", "b-active"));
  pb::Info b_info;
  REQUIRE_OK(c.Stat("b", &b_info));
  CHECK(b_info.kind() == pb::COMMITTED);
  CHECK(b_info.parent() == "a");
  CHECK(SameTime(b_info.created_at(), b_info.updated_at()));
  // Commit labels replace, not inherit: b was committed with none.
  CHECK(b_info.labels().empty());

  // A two-parent view: overlay of lowerdirs only, nearest parent first.
  Mounts bv_mounts;
  REQUIRE_OK(c.View("b-view", "b", {}, &bv_mounts));
  REQUIRE(bv_mounts.size() == 1);
  CHECK(bv_mounts[0].type() == "overlay");
  CHECK_FALSE(MountOption(bv_mounts[0], "upperdir").has_value());
  CHECK_FALSE(MountOption(bv_mounts[0], "workdir").has_value());
  auto bv_lower = MountOption(bv_mounts[0], "lowerdir");
  REQUIRE(bv_lower.has_value());
  const auto colon = bv_lower->find(':');
  REQUIRE(colon != std::string::npos);
  CHECK(Real(bv_lower->substr(0, colon)) == Real(*upper));
  CHECK(Real(bv_lower->substr(colon + 1)) == Real(a_fs));
}

TEST_CASE("Info timestamps round-trip to the nanosecond between Stat and List", "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  REQUIRE_OK(c.Prepare("p-active", ""));
  REQUIRE_OK(c.Commit("p", "p-active", {{"containerd.io/snapshot/t", "1"}}));
  REQUIRE_OK(c.Prepare("q-active", "p"));
  REQUIRE_OK(c.View("q-view", "p"));
  pb::Info updated;
  pb::Info req;
  req.set_name("p");
  (*req.mutable_labels())["containerd.io/snapshot/t"] = "2";
  REQUIRE_OK(c.Update(req, {"labels.containerd.io/snapshot/t"}, &updated));

  auto check_all = [&] {
    std::vector<pb::Info> listed;
    REQUIRE_OK(c.List({}, &listed));
    REQUIRE(listed.size() == 3);
    int nonzero_nanos = 0;
    for (const pb::Info& l : listed) {
      pb::Info s;
      REQUIRE_OK(c.Stat(l.name(), &s));
      INFO("list: " << l.ShortDebugString() << "\nstat: " << s.ShortDebugString());
      CheckInfoSane(l);
      CHECK(SameTime(l.created_at(), s.created_at()));
      CHECK(SameTime(l.updated_at(), s.updated_at()));
      CHECK(l.ShortDebugString() == s.ShortDebugString());
      nonzero_nanos += (l.created_at().nanos() != 0) + (l.updated_at().nanos() != 0);
    }
    // Six clock readings all on a whole second would mean truncation.
    CHECK(nonzero_nanos > 0);
    return listed;
  };
  std::vector<pb::Info> first = check_all();
  pb::Info p;
  REQUIRE_OK(c.Stat("p", &p));
  CHECK(SameTime(p.updated_at(), updated.updated_at()));
  CHECK(SameTime(p.created_at(), updated.created_at()));
  CHECK(Before(p.created_at(), p.updated_at()));

  // Stored times survive a crash and restart unchanged.
  d.Restart(/*hard=*/true);
  std::vector<pb::Info> second = check_all();
  auto lines = [](const std::vector<pb::Info>& v) {
    std::vector<std::string> out;
    for (const auto& i : v) out.push_back(i.ShortDebugString());
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(lines(first) == lines(second));
}

TEST_CASE("Update with Go zero times and kind=COMMITTED changes only the masked label",
          "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  REQUIRE_OK(c.Prepare("u-active", ""));
  REQUIRE_OK(c.Commit("u", "u-active", {{"keep", "x"}}));
  REQUIRE_OK(c.Prepare("w-active", "u", {{"containerd.io/snapshot/w", "1"}}));
  pb::Info before;
  REQUIRE_OK(c.Stat("u", &before));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  // What containerd 1.6 sends: non-nullable times at the Go zero time, kind
  // COMMITTED, name = backend key, and junk in the fields it ignores.
  pb::Info req;
  req.set_name("u");
  req.set_parent("not-a-parent");
  req.set_kind(pb::COMMITTED);
  req.mutable_created_at()->set_seconds(kGoZeroSeconds);
  req.mutable_created_at()->set_nanos(0);
  req.mutable_updated_at()->set_seconds(kGoZeroSeconds);
  req.mutable_updated_at()->set_nanos(0);
  (*req.mutable_labels())["a"] = "1";
  (*req.mutable_labels())["unmasked"] = "ignored";
  pb::Info out;
  REQUIRE_OK(c.Update(req, {"labels.a"}, &out));
  INFO("update response: " << out.ShortDebugString());
  CheckInfoSane(out);
  CHECK(out.name() == "u");
  CHECK(out.parent().empty());
  CHECK(out.kind() == pb::COMMITTED);
  CHECK(SameTime(out.created_at(), before.created_at()));
  CHECK(Before(before.updated_at(), out.updated_at()));
  CHECK(LabelMap(out.labels().begin(), out.labels().end()) == LabelMap{{"a", "1"}, {"keep", "x"}});
  pb::Info stat;
  REQUIRE_OK(c.Stat("u", &stat));
  CHECK(stat.ShortDebugString() == out.ShortDebugString());

  // A masked label absent from info (or empty) is deleted.
  req.mutable_labels()->clear();
  REQUIRE_OK(c.Update(req, {"labels.a"}, &out));
  CHECK(LabelMap(out.labels().begin(), out.labels().end()) == LabelMap{{"keep", "x"}});
  (*req.mutable_labels())["keep"] = "";
  REQUIRE_OK(c.Update(req, {"labels.keep"}, &out));
  CHECK(out.labels().empty());
  CHECK(SameTime(out.created_at(), before.created_at()));

  // The kind in the request means nothing: an active stays active.
  req.set_name("w-active");
  req.mutable_labels()->clear();
  (*req.mutable_labels())["b"] = "2";
  REQUIRE_OK(c.Update(req, {"labels.b"}, &out));
  CHECK(out.kind() == pb::ACTIVE);
  CHECK(out.parent() == "u");
  CHECK(LabelMap(out.labels().begin(), out.labels().end()) ==
        LabelMap{{"b", "2"}, {"containerd.io/snapshot/w", "1"}});

  // Empty mask and "labels" replace all labels.
  (*req.mutable_labels())["c"] = "3";
  REQUIRE_OK(c.Update(req, {}, &out));
  CHECK(LabelMap(out.labels().begin(), out.labels().end()) == LabelMap{{"b", "2"}, {"c", "3"}});
  req.mutable_labels()->clear();
  (*req.mutable_labels())["d"] = "4";
  REQUIRE_OK(c.Update(req, {"labels"}, &out));
  CHECK(LabelMap(out.labels().begin(), out.labels().end()) == LabelMap{{"d", "4"}});
}

TEST_CASE("List without filters streams everything in batches of at most 100", "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  constexpr int kCount = 250;
  std::set<std::string> want;
  for (int i = 0; i < kCount; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "default/%d/snap-%03d", i, i);
    REQUIRE_OK(c.Prepare(key, "", {{"containerd.io/snapshot/i", std::to_string(i)}}));
    want.insert(key);
  }
  std::vector<pb::Info> infos;
  std::vector<int> batches;
  REQUIRE_OK(c.List({}, &infos, &batches));
  INFO("batch sizes: " << Catch::Detail::stringify(batches));
  CHECK(infos.size() == static_cast<size_t>(kCount));
  std::set<std::string> got;
  for (const pb::Info& i : infos) {
    got.insert(i.name());
    CHECK(i.kind() == pb::ACTIVE);
  }
  CHECK(got == want);
  CHECK(batches.size() >= 3);
  int total = 0;
  for (int b : batches) {
    CHECK(b > 0);
    CHECK(b <= 100);
    total += b;
  }
  CHECK(total == kCount);

  // A filter that matches a subset streams just that subset.
  infos.clear();
  REQUIRE_OK(c.List({"labels.\"containerd.io/snapshot/i\"~=\"^1[0-9]$\"", "name==\"default/7/snap-007\""},
                    &infos));
  got.clear();
  for (const pb::Info& i : infos) got.insert(i.name());
  CHECK(got.size() == 11);
  CHECK(got.contains("default/7/snap-007"));
  CHECK(got.contains("default/15/snap-015"));
}

TEST_CASE("Usage: live for actives, stored for committed, zero for views", "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  Mounts m;
  REQUIRE_OK(c.Prepare("u-active", "", {}, &m));
  const std::string fs_dir = m[0].source();
  WriteFile(fs_dir + "/big", std::string(256 * 1024, 'x'));
  WriteFile(fs_dir + "/small", "s");
  fs::create_directory(fs_dir + "/d");
  WriteFile(fs_dir + "/d/f", "f");
  REQUIRE(::link((fs_dir + "/big").c_str(), (fs_dir + "/d/hardlink").c_str()) == 0);

  pb::UsageResponse u;
  REQUIRE_OK(c.Usage("u-active", &u));
  pb::UsageResponse want = ExpectedUsage(fs_dir);
  CHECK(u.size() == want.size());
  CHECK(u.inodes() == want.inodes());
  CHECK(u.inodes() == 5);  // fs, big (+hardlink), small, d, d/f
  CHECK(u.size() >= 256 * 1024);

  // Live: more data, more usage.
  WriteFile(fs_dir + "/more", std::string(64 * 1024, 'y'));
  pb::UsageResponse u2;
  REQUIRE_OK(c.Usage("u-active", &u2));
  CHECK(u2.size() == ExpectedUsage(fs_dir).size());
  CHECK(u2.size() > u.size());
  CHECK(u2.inodes() == 6);

  REQUIRE_OK(c.Commit("u", "u-active"));
  pb::UsageResponse committed;
  REQUIRE_OK(c.Usage("u", &committed));
  CHECK(committed.size() == u2.size());
  CHECK(committed.inodes() == u2.inodes());
  // Stored at commit: a later change on disk does not show.
  WriteFile(fs_dir + "/after-commit", std::string(64 * 1024, 'z'));
  pb::UsageResponse stored;
  REQUIRE_OK(c.Usage("u", &stored));
  CHECK(stored.size() == committed.size());
  CHECK(stored.inodes() == committed.inodes());
  // And survives a restart.
  d.Restart(/*hard=*/true);
  REQUIRE_OK(d.client().Usage("u", &stored));
  CHECK(stored.size() == committed.size());

  REQUIRE_OK(d.client().View("u-view", "u"));
  pb::UsageResponse view;
  REQUIRE_OK(d.client().Usage("u-view", &view));
  CHECK(view.size() == 0);
  CHECK(view.inodes() == 0);

  // An active on a parent counts only its own upper dir.
  Mounts top;
  REQUIRE_OK(d.client().Prepare("top", "u", {}, &top));
  pb::UsageResponse top_usage;
  REQUIRE_OK(d.client().Usage("top", &top_usage));
  CHECK(top_usage.size() == ExpectedUsage(*MountOption(top[0], "upperdir")).size());
  CHECK(top_usage.inodes() == 1);
}

TEST_CASE("Remove children first, then the parent, then Cleanup frees the directories", "[daemon][protocol]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  Mounts m;
  REQUIRE_OK(c.Prepare("keep-active", "", {}, &m));
  const std::string keep_dir = SnapshotDirOf(m);
  WriteFile(m[0].source() + "/keep", "keep\n");
  REQUIRE_OK(c.Commit("keep", "keep-active"));

  REQUIRE_OK(c.Prepare("base-active", "", {}, &m));
  const std::string base_dir = SnapshotDirOf(m);
  REQUIRE_OK(c.Commit("base", "base-active"));
  REQUIRE_OK(c.Prepare("child-active", "base", {}, &m));
  const std::string child_dir = SnapshotDirOf(m);
  REQUIRE_OK(c.Commit("child", "child-active"));
  REQUIRE_OK(c.Prepare("grandchild", "child", {}, &m));
  const std::string grandchild_dir = SnapshotDirOf(m);
  REQUIRE_OK(c.View("base-view", "base", {}, &m));
  // A one-parent view's mount is the parent's fs; its own dir sits next to
  // the others, named by its id. Find it as the only new snapshot dir.
  std::set<std::string> dirs_before_cleanup;
  for (const std::string& tier : {d.fast_dir(), d.slow_dir()}) {
    for (const auto& e : fs::directory_iterator(tier + "/snapshots")) dirs_before_cleanup.insert(e.path().string());
  }
  REQUIRE(dirs_before_cleanup.size() == 5);
  std::string view_dir;
  for (const std::string& p : dirs_before_cleanup) {
    if (p != keep_dir && p != base_dir && p != child_dir && p != grandchild_dir) view_dir = p;
  }
  REQUIRE_FALSE(view_dir.empty());
  CHECK(fs::is_directory(view_dir + "/fs"));
  CHECK_FALSE(fs::exists(view_dir + "/work"));  // a view has no work dir
  CHECK(fs::directory_iterator(d.root() + "/l") != fs::directory_iterator());

  grpc::Status st = c.Remove("base");
  CHECK(CodeName(st) == "FAILED_PRECONDITION");
  CHECK(CodeName(c.Remove("child")) == "FAILED_PRECONDITION");

  REQUIRE_OK(c.Remove("grandchild"));
  REQUIRE_OK(c.Remove("child"));
  CHECK(CodeName(c.Remove("base")) == "FAILED_PRECONDITION");  // the view is still a child
  REQUIRE_OK(c.Remove("base-view"));
  REQUIRE_OK(c.Remove("base"));
  for (const char* gone : {"grandchild", "child", "base-view", "base"}) {
    INFO(gone);
    CHECK(CodeName(c.Stat(gone)) == "NOT_FOUND");
    CHECK(CodeName(c.Remove(gone)) == "NOT_FOUND");
  }
  std::vector<pb::Info> listed;
  REQUIRE_OK(c.List({}, &listed));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].name() == "keep");

  // Like overlay's registered plugin, Remove leaves the data to Cleanup.
  REQUIRE_OK(c.Cleanup());
  std::set<std::string> remaining;
  for (const std::string& tier : {d.fast_dir(), d.slow_dir()}) {
    for (const auto& e : fs::directory_iterator(tier + "/snapshots")) remaining.insert(e.path().string());
    CHECK(fs::is_empty(tier + "/staging"));
  }
  CHECK(remaining == std::set<std::string>{keep_dir});
  for (const std::string& gone : {base_dir, child_dir, grandchild_dir, view_dir}) {
    CHECK_FALSE(fs::exists(gone));
  }
  // Only the survivor's short link is left, and it still resolves.
  std::vector<std::string> links;
  for (const auto& e : fs::directory_iterator(d.root() + "/l")) links.push_back(e.path().string());
  REQUIRE(links.size() == 1);
  CHECK(Real(links[0]) == Real(keep_dir + "/fs"));
  CHECK(ReadFile(keep_dir + "/fs/keep") == "keep\n");

  // A removed key can be reused at once; Cleanup is idempotent.
  REQUIRE_OK(c.Prepare("base-active", ""));
  REQUIRE_OK(c.Cleanup());
  REQUIRE_OK(c.Stat("base-active"));
  REQUIRE_OK(c.Stat("keep"));
}

TEST_CASE("the socket is 0600 in a 0700 directory the daemon created", "[daemon][protocol]") {
  DaemonProcess d;
  struct stat st;
  REQUIRE(::lstat(d.socket_path().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  REQUIRE(::stat(d.run_dir().c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0700);

  // A clean stop exits 0 and removes the socket.
  const int status = d.Stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(fs::exists(fs::symlink_status(d.socket_path())));
}

TEST_CASE("an existing socket directory keeps its mode and the socket is still 0600", "[daemon][protocol]") {
  DaemonOptions opts;
  opts.precreate_run_dir = 0755;
  DaemonProcess d(opts);
  struct stat st;
  REQUIRE(::stat(d.run_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE(::lstat(d.socket_path().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("after SIGKILL the daemon replaces the stale socket and keeps its state", "[daemon][protocol]") {
  DaemonProcess d;
  Mounts before_mounts;
  REQUIRE_OK(d.client().Prepare("a-active", ""));
  REQUIRE_OK(d.client().Commit("a", "a-active", {{"containerd.io/snapshot/x", "y"}}));
  REQUIRE_OK(d.client().Prepare("b", "a", {}, &before_mounts));
  const std::vector<std::string> listed = d.client().ListLines();
  const auto disk = ListTree(d.root());

  d.Kill();
  struct stat st;
  REQUIRE(::lstat(d.socket_path().c_str(), &st) == 0);  // left behind
  CHECK(S_ISSOCK(st.st_mode));
  d.Start();
  CHECK(d.client().ListLines() == listed);
  CHECK(DiffMaps(disk, ListTree(d.root())) == "");
  Mounts after_mounts;
  REQUIRE_OK(d.client().Mounts("b", &after_mounts));
  CHECK(MountsString(after_mounts) == MountsString(before_mounts));

  // A second daemon on the same live socket refuses to start.
  const std::string bin = DaemonBinary();
  const std::string cmd = "timeout 30 '" + bin + "' --root '" + d.base() + "/root2' --address '" + d.socket_path() +
                          "' >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  CHECK(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 1);
  REQUIRE_OK(d.client().Stat("a"));
}

TEST_CASE("concurrent clients building chains on both tiers", "[daemon][protocol][concurrency]") {
  DaemonProcess d;
  constexpr int kThreads = 8, kDepth = 20;
  std::mutex mu;
  std::vector<std::string> errors;
  auto note = [&](const std::string& what, const grpc::Status& st) {
    if (st.ok()) return true;
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(what + ": " + Describe(st));
    return false;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string parent;
      for (int i = 0; i < kDepth; ++i) {
        const std::string key = absl::StrCat("t", t, "/extract-", i);
        const std::string name = absl::StrCat("t", t, "/layer-", i);
        Mounts m;
        if (!note("prepare " + key, d.client().Prepare(key, parent, {{kTierLabelKey, i % 2 ? "slow" : "fast"}}, &m))) return;
        const std::string dir = m[0].type() == "bind" ? m[0].source() : MountOption(m[0], "upperdir").value_or("?");
        try {
          WriteFile(dir + "/f" + std::to_string(i), "x");
        } catch (const std::exception& e) {
          note(e.what(), grpc::Status(grpc::StatusCode::INTERNAL, "write"));
          return;
        }
        if (!note("commit " + name, d.client().Commit(name, key))) return;
        note("list", d.client().List({}));
        if (i % 5 == 0) note("cleanup", d.client().Cleanup());
        note("view", d.client().View(name + "-view", name));
        note("remove view", d.client().Remove(name + "-view"));
        parent = name;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (const std::string& e : errors) UNSCOPED_INFO(e);
  CHECK(errors.empty());

  REQUIRE_OK(d.client().Cleanup());
  for (int t = 0; t < kThreads; ++t) {
    Mounts m;
    const std::string top = absl::StrCat("t", t, "/top");
    REQUIRE_OK(d.client().Prepare(top, absl::StrCat("t", t, "/layer-", kDepth - 1), {}, &m));
    auto lower = MountOption(m[0], "lowerdir");
    REQUIRE(lower.has_value());
    const std::vector<std::string> lowers = absl::StrSplit(*lower, ':');
    REQUIRE(lowers.size() == static_cast<size_t>(kDepth));
    for (int j = 0; j < kDepth; ++j) {
      INFO("thread " << t << " lowerdir " << j);
      CHECK(fs::exists(lowers[j] + "/f" + std::to_string(kDepth - 1 - j)));
    }
  }
  std::vector<pb::Info> infos;
  REQUIRE_OK(d.client().List({}, &infos));
  CHECK(infos.size() == static_cast<size_t>(kThreads * (kDepth + 1)));
  size_t dirs = 0;
  for (const std::string& tier : {d.fast_dir(), d.slow_dir()}) {
    for (const auto& e : fs::directory_iterator(tier + "/snapshots")) {
      (void)e;
      ++dirs;
    }
  }
  CHECK(dirs == static_cast<size_t>(kThreads * (kDepth + 1)));
}

}  // namespace
}  // namespace ndocker::daemon_test
