// Issue 8, the mover, against the real daemon on two real tier filesystems
// (a tmpfs and a loop-mounted ext4): Migrate under a mounted overlay, its
// errors, a full target tier, tier ownership (a second instance on populated
// tiers), and start-up with an undeletable file.
//
// Written against /work/notes/mover-spec.md; each test fails with a message
// that names the missing piece until the mover is in the tree.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <catch2/catch.hpp>

#include "snapshotter/layout.h"
#include "test/daemon/admin_client.h"
#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {
namespace {

namespace fs = std::filesystem;
using Mounts = google::protobuf::RepeatedPtrField<PbMount>;
using json = nlohmann::json;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Fails the test at once when ndockerctl has no `migrate` subcommand.
void RequireNdockerctlMigrate() {
  CommandResult r = RunCommand({NdockerctlBinary(), "--help"});
  INFO("ndockerctl --help -> exit " << r.exit_code() << ": " << r.output);
  if (!Contains(r.output, "\n  migrate ")) FAIL("ndockerctl has no `migrate` subcommand (issue 8's mover is not merged)");
}

// Waits up to `timeout` for pred(); true when it held.
template <typename Pred>
bool WaitUntil(Pred pred, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Fails the test at once when this tree has no Migrate RPC, naming why.
void RequireMigrateRpc(DaemonProcess& d) {
  AdminClient admin(d.socket_path());
  std::string resp;
  grpc::Status st = admin.Migrate("ndocker-test-probe-of-the-migrate-rpc", "slow", false, &resp);
  INFO("Migrate probe -> " << Describe(st));
  if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    FAIL("the daemon has no Admin.Migrate (issue 8's mover is not merged): " << st.error_message());
  }
  REQUIRE(st.error_code() == grpc::StatusCode::NOT_FOUND);
}

// "<tier>/<dir name>" of every directory in either tier's snapshots/, by the
// snapshot id its name starts with (<id> or <id>-<generation>).
std::map<uint64_t, std::vector<std::string>> SnapshotDirsById(const DaemonProcess& d) {
  std::map<uint64_t, std::vector<std::string>> out;
  for (const std::string tier : {"fast", "slow"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d.tier_dir(tier) + "/snapshots", ec)) {
      const std::string name = e.path().filename().string();
      out[std::stoull(name.substr(0, name.find('-')))].push_back(tier + "/" + name);
    }
  }
  return out;
}

std::vector<std::string> DirNames(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The fs dir a new mount of `key` uses now: <root>/l/<short id> resolved.
std::string CurrentFs(DaemonProcess& d, const std::string& key) {
  json j = LsEntry(d.socket_path(), key);
  if (j.is_null()) throw std::runtime_error("ndockerctl ls --json has no " + key);
  const uint64_t id = j.at("id").get<uint64_t>();
  return fs::canonical(d.root() + "/l/" + Layout::ShortId(id)).string();
}

std::string Show(const json& j) { return j.is_null() ? "null" : j.dump(); }

// A tree without its root entry (the root dir of a merged view belongs to
// the mount: an upperdir's for a container, the top layer's for a view).
std::map<std::string, std::string> Below(std::map<std::string, std::string> tree) {
  tree.erase(".");
  return tree;
}

// --------------------------------------------------------------------------
// (e) Migrate's errors

TEST_CASE("Migrate: unknown snapshot NOT_FOUND, active or view FAILED_PRECONDITION, nothing changes",
          "[daemon][mover]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  REQUIRE_OK(c.Prepare("base-active", "", {{kTierLabelKey, "fast"}}));
  Mounts m;
  REQUIRE_OK(c.Mounts("base-active", &m));
  WriteFile(m[0].source() + "/f", "data\n");
  REQUIRE_OK(c.Commit("base", "base-active"));
  REQUIRE_OK(c.Prepare("an-active", "base"));
  REQUIRE_OK(c.View("a-view", "base"));
  RequireMigrateRpc(d);

  AdminClient admin(d.socket_path());
  std::string resp;
  EXPECT_REJECTED(d, NOT_FOUND, admin.Migrate("no-such-snapshot", "slow", true, &resp));
  EXPECT_REJECTED(d, NOT_FOUND, admin.Migrate("sha256:0000000000000000000000000000000000000000000000000000000000000000",
                                              "slow", true, &resp));
  EXPECT_REJECTED(d, FAILED_PRECONDITION, admin.Migrate("an-active", "slow", true, &resp));
  EXPECT_REJECTED(d, FAILED_PRECONDITION, admin.Migrate("a-view", "slow", true, &resp));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, admin.Migrate("base", "warm", true, &resp));

  // ndockerctl says it too: non-zero exit, the key, no host path.
  RequireNdockerctlMigrate();
  struct Case {
    std::string key, want;
  };
  for (const Case& k : {Case{"no-such-snapshot", "NOT_FOUND"}, Case{"an-active", "FAILED_PRECONDITION"}}) {
    CommandResult r = Ndockerctl(d.socket_path(), {"migrate", k.key, "slow", "--wait"});
    INFO("ndockerctl migrate " << k.key << " slow --wait (want " << k.want << ") -> exit " << r.exit_code()
                               << ": " << r.output);
    CHECK(r.exit_code() != 0);
    CHECK(Contains(r.output, k.key));
    CHECK_FALSE(Contains(r.output, d.base()));
    if (k.want == "FAILED_PRECONDITION") CHECK(Contains(Lower(r.output), "commit"));
  }
}

// --------------------------------------------------------------------------
// Migration under a mounted overlay (the daemon-level twin of
// test/integration/test_mover_live.sh)

TEST_CASE("Migrate fast->slow->fast under a mounted overlay: reads never change, old copies go after unmount",
          "[daemon][mover]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  const LabelMap fast = {{kTierLabelKey, "fast"}};
  // L0: data, a hardlink pair, symlinks, xattrs; L1 on it: a whiteout, an
  // opaque dir, more data.
  Mounts m;
  REQUIRE_OK(c.Prepare("default/1/extract-l0", "", fast, &m));
  std::string dir = m[0].source();
  WriteFile(dir + "/big.bin", RandomBytes(6 * kMiB, 1));
  REQUIRE(::mkdir((dir + "/etc").c_str(), 0755) == 0);
  WriteFile(dir + "/etc/conf", "l0 conf\n");
  WriteFile(dir + "/etc/gone", "deleted in l1\n");
  REQUIRE(::mkdir((dir + "/opq").c_str(), 0755) == 0);
  WriteFile(dir + "/opq/hidden", "hidden by l1's opaque dir\n");
  REQUIRE(::link((dir + "/big.bin").c_str(), (dir + "/big.hardlink").c_str()) == 0);
  REQUIRE(::symlink("conf", (dir + "/etc/conf.rel").c_str()) == 0);
  REQUIRE(::setxattr((dir + "/etc/conf").c_str(), "user.k", "v", 1, 0) == 0);
  REQUIRE_OK(c.Commit("default/2/l0", "default/1/extract-l0", fast));
  REQUIRE_OK(c.Prepare("default/3/extract-l1", "default/2/l0", fast, &m));
  auto upper = MountOption(m[0], "upperdir");
  REQUIRE(upper.has_value());
  dir = *upper;
  REQUIRE(::mkdir((dir + "/etc").c_str(), 0755) == 0);
  REQUIRE(::mknod((dir + "/etc/gone").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  REQUIRE(::mkdir((dir + "/opq").c_str(), 0755) == 0);
  REQUIRE(::setxattr((dir + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0);
  WriteFile(dir + "/opq/new", "l1 opaque content\n");
  WriteFile(dir + "/l1.bin", RandomBytes(3 * kMiB, 2));
  REQUIRE_OK(c.Commit("default/4/l1", "default/3/extract-l1", fast));
  const std::vector<std::string> layers = {"default/2/l0", "default/4/l1"};

  RequireMigrateRpc(d);
  AdminClient admin(d.socket_path());

  // A container's rootfs on the layers, mounted, and what it shows.
  Mounts rootfs;
  REQUIRE_OK(c.Prepare("ctr-rootfs", "default/4/l1", {}, &rootfs));
  const std::string target = d.base() + "/mnt-ctr";
  fs::create_directories(target);
  ScopedMount mounted(ToCore(rootfs), target);
  REQUIRE(mounted.status().ok());
  const auto seen = ContentTree(target);
  REQUIRE(seen.count("etc/gone") == 0);      // whiteout applied
  REQUIRE(seen.count("opq/hidden") == 0);    // opaque dir applied
  REQUIRE(seen.count("big.hardlink") == 1);

  // The copies the mount uses (generation 0), and their bytes.
  std::map<std::string, std::string> gen0;
  std::map<std::string, std::map<std::string, std::string>> layer_tree;
  for (const std::string& k : layers) {
    gen0[k] = CurrentFs(d, k);
    layer_tree[k] = ContentTree(gen0[k]);
    REQUIRE(gen0[k].rfind(fs::canonical(d.fast_dir()).string() + "/", 0) == 0);
  }

  auto migrate_all = [&](const std::string& to) {
    for (const std::string& k : layers) {
      std::string resp;
      grpc::Status st = admin.Migrate(k, to, /*wait=*/true, &resp);
      INFO("Migrate(" << k << ", " << to << ", wait) -> " << Describe(st) << " response {" << resp << "}");
      REQUIRE(st.ok());
      const json j = LsEntry(d.socket_path(), k);
      INFO("ls --json " << k << ": " << Show(j));
      REQUIRE_FALSE(j.is_null());
      CHECK(j.value("tier", "") == to);
      CHECK(j.value("migration", "?") != "copying");
      CHECK(j.value("migration", "?") != "queued");
      // the copy a new mount gets: on `to`, byte-identical
      const std::string now = CurrentFs(d, k);
      CHECK(now.rfind(fs::canonical(d.tier_dir(to)).string() + "/", 0) == 0);
      if (d.tier_fs() == TierFs::kSeparate) CHECK(FsTypeOf(now) == (to == "fast" ? "tmpfs" : "ext4"));
      CHECK(DiffMaps(layer_tree[k], ContentTree(now)) == "");
    }
    // The mounted overlay reads exactly what it did; its copies are untouched.
    CHECK(DiffMaps(seen, ContentTree(target)) == "");
    for (const std::string& k : layers) {
      INFO(k << " generation-0 copy " << gen0[k] << " (in use by the mounted overlay)");
      REQUIRE(fs::is_directory(gen0[k]));
      CHECK(DiffMaps(layer_tree[k], ContentTree(gen0[k])) == "");
    }
    // A new mount of the same chain sees the same tree, from the new copies.
    Mounts view;
    REQUIRE_OK(c.View("view-" + to, "default/4/l1", {}, &view));
    const std::string vt = d.base() + "/mnt-view-" + to;
    fs::create_directories(vt);
    {
      ScopedMount vm(ToCore(view), vt);
      REQUIRE(vm.status().ok());
      CHECK(DiffMaps(Below(seen), Below(ContentTree(vt))) == "");
      REQUIRE(vm.Unmount().ok());
    }
    REQUIRE_OK(c.Remove("view-" + to));
  };

  migrate_all("slow");
  for (const std::string& k : layers) {
    const json j = LsEntry(d.socket_path(), k);
    INFO("after fast->slow, ls --json " << k << ": " << Show(j));
    CHECK(j.value("generation", -1) >= 1);
    // the old copy is retired, not deleted: the overlay still uses it
    bool listed = false;
    for (const json& r : j.value("retired", json::array())) {
      if (r.value("tier", "") == "fast") listed = true;
    }
    CHECK(listed);
  }
  REQUIRE_OK(c.Cleanup());  // Cleanup must not take a copy a mount uses either
  for (const std::string& k : layers) CHECK(fs::is_directory(gen0[k]));
  // The container keeps writing to its upper dir.
  WriteFile(target + "/written-during-migration", "ok\n");
  CHECK(ReadFile(target + "/written-during-migration") == "ok\n");
  REQUIRE(::unlink((target + "/written-during-migration").c_str()) == 0);

  migrate_all("fast");
  REQUIRE_OK(c.Cleanup());
  for (const std::string& k : layers) CHECK(fs::is_directory(gen0[k]));

  // The container goes: unmount, Remove, Cleanup. Then every retired copy
  // goes, and exactly one copy per snapshot is left.
  REQUIRE(mounted.Unmount().ok());
  REQUIRE_OK(c.Remove("ctr-rootfs"));
  REQUIRE_OK(c.Cleanup());
  auto one_copy_each = [&] {
    for (const auto& [id, dirs] : SnapshotDirsById(d)) {
      if (dirs.size() != 1) return false;
    }
    for (const std::string& k : layers) {
      if (!LsEntry(d.socket_path(), k).value("retired", json::array()).empty()) return false;
    }
    return true;
  };
  const bool reaped = WaitUntil(one_copy_each, std::chrono::seconds(40));
  {
    std::string dirs;
    for (const auto& [id, ds] : SnapshotDirsById(d)) {
      for (const std::string& x : ds) dirs += " " + x;
    }
    INFO("snapshot dirs:" << dirs);
    for (const std::string& k : layers) INFO("ls " << k << ": " << Show(LsEntry(d.socket_path(), k)));
    CHECK(reaped);
  }
  for (const std::string& k : layers) {
    INFO(k);
    CHECK_FALSE(fs::exists(gen0[k]));
    CHECK(DiffMaps(layer_tree[k], ContentTree(CurrentFs(d, k))) == "");
  }
  for (const std::string tier : {"fast", "slow"}) CHECK(DirNames(d.tier_dir(tier) + "/staging").empty());

  // And after a kill -9 it is all still there.
  const auto listed = c.ListLines();
  d.Restart(/*hard=*/true);
  CHECK(c.ListLines() == listed);
  for (const std::string& k : layers) CHECK(DiffMaps(layer_tree[k], ContentTree(CurrentFs(d, k))) == "");
}

// --------------------------------------------------------------------------
// (d ii) a full target tier

TEST_CASE("Migrate to a full slow tier is RESOURCE_EXHAUSTED and both copies stay intact", "[daemon][mover][enospc]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs a small tier filesystem (root)");
    return;
  }
  DaemonOptions o;
  o.slow_tier_bytes = 48 * kMiB;
  DaemonProcess d(o);
  if (d.tier_fs() != TierFs::kSeparate) {
    WARN("skipped: NDT_SAME_FS_TIERS=1");
    return;
  }
  SnapshotsClient& c = d.client();
  Mounts m;
  REQUIRE_OK(c.Prepare("default/1/extract-big", "", {{kTierLabelKey, "fast"}}, &m));
  const std::string src = m[0].source();
  WriteFile(src + "/big.bin", RandomBytes(12 * kMiB, 3));
  REQUIRE(::mkdir((src + "/d").c_str(), 0755) == 0);
  for (int i = 0; i < 50; ++i) WriteFile(src + "/d/f" + std::to_string(i), "small " + std::to_string(i) + "\n");
  REQUIRE_OK(c.Commit("default/2/big", "default/1/extract-big", {{kTierLabelKey, "fast"}}));
  RequireMigrateRpc(d);
  const std::string copy = CurrentFs(d, "default/2/big");
  const auto bytes = ContentTree(copy);

  // Fill the slow tier from a container's rootfs there, to the last block.
  REQUIRE_OK(c.Prepare("filler", "", {{kTierLabelKey, "slow"}}, &m));
  const std::string filler = m[0].source() + "/fill";
  {
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    const std::string chunk(1 << 20, 'x');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    const std::string small(4096, 'y');
    while (::write(fd, small.data(), small.size()) > 0) {
    }
    ::close(fd);
  }
  INFO("slow tier free after filling: " << FreeBytes(d.slow_dir()) << " bytes");
  // (ext4 keeps ~2% back for delayed allocation: statfs still shows ~1 MiB)
  REQUIRE(FreeBytes(d.slow_dir()) < 2 * kMiB);
  const auto slow_before = DirNames(d.slow_dir() + "/snapshots");

  AdminClient admin(d.socket_path());
  std::string resp;
  grpc::Status st = admin.Migrate("default/2/big", "slow", /*wait=*/true, &resp);
  INFO("Migrate to the full slow tier -> " << Describe(st) << " response {" << resp << "}");
  CHECK(CodeName(st) == "RESOURCE_EXHAUSTED");
  CHECK_FALSE(Contains(st.error_message(), d.base()));  // no host paths in messages

  // Both copies intact: the source where it was, byte-identical; nothing of
  // the attempt left on the slow tier.
  const json j = LsEntry(d.socket_path(), "default/2/big");
  INFO("ls --json after the failed migration: " << Show(j));
  CHECK(j.value("tier", "") == "fast");
  CHECK(j.value("retired", json::array()).empty());
  CHECK(CurrentFs(d, "default/2/big") == copy);
  CHECK(DiffMaps(bytes, ContentTree(copy)) == "");
  CHECK(WaitUntil([&] { return DirNames(d.slow_dir() + "/staging").empty(); }, std::chrono::seconds(10)));
  CHECK(DirNames(d.slow_dir() + "/snapshots") == slow_before);
  Mounts view;
  REQUIRE_OK(c.View("v1", "default/2/big", {}, &view));
  CHECK(fs::canonical(view[0].source()).string() == copy);

  // ndockerctl reports it: non-zero exit and a message about space.
  RequireNdockerctlMigrate();
  CommandResult r = Ndockerctl(d.socket_path(), {"migrate", "default/2/big", "slow", "--wait"});
  INFO("ndockerctl migrate default/2/big slow --wait -> exit " << r.exit_code() << ": " << r.output);
  CHECK(r.exit_code() != 0);
  const std::string msg = Lower(r.output);
  CHECK((Contains(msg, "space") || Contains(msg, "full") || Contains(msg, "exhausted")));
  CHECK_FALSE(Contains(r.output, d.base()));
  CHECK(DiffMaps(bytes, ContentTree(copy)) == "");

  // With room again the same migration succeeds, with the same bytes.
  REQUIRE(::unlink(filler.c_str()) == 0);
  st = admin.Migrate("default/2/big", "slow", /*wait=*/true, &resp);
  INFO("Migrate after freeing the slow tier -> " << Describe(st) << " {" << resp << "}");
  REQUIRE(st.ok());
  CHECK(LsEntry(d.socket_path(), "default/2/big").value("tier", "") == "slow");
  CHECK(DiffMaps(bytes, ContentTree(CurrentFs(d, "default/2/big"))) == "");
}

// --------------------------------------------------------------------------
// (b) tier ownership: a second instance on populated tiers

// Every entry below a tier, "<path below the tier> <type> <size>" (no mtimes).
std::map<std::string, std::string> TierListing(const std::string& tier) {
  CommandResult r = RunCommand({"find", tier, "-printf", "%P %y %s\\n"});
  if (!r.ok()) throw std::runtime_error("find " + tier + ": " + r.output);
  std::map<std::string, std::string> out;
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ' ') continue;  // the tier itself (%P empty)
    const size_t sp = line.find(' ');
    std::string rest = line.substr(sp + 1);
    // a directory's size is the filesystem's business; keep only its type
    if (rest.rfind("d ", 0) == 0) rest = "d";
    out[line.substr(0, sp)] = rest;
  }
  return out;
}

TEST_CASE("a second instance on populated tiers refuses to start and deletes nothing, --claim-tiers=adopt keeps it all",
          "[daemon][mover][owner]") {
  DaemonProcess first;
  SnapshotsClient& c = first.client();
  // Three committed snapshots on two tiers, a chain across them, an active.
  Mounts m;
  REQUIRE_OK(c.Prepare("default/1/x0", "", {{kTierLabelKey, "fast"}}, &m));
  WriteFile(m[0].source() + "/a", RandomBytes(300000, 4));
  REQUIRE_OK(c.Commit("default/2/l0", "default/1/x0", {{kTierLabelKey, "fast"}}));
  REQUIRE_OK(c.Prepare("default/3/x1", "default/2/l0", {{kTierLabelKey, "slow"}}, &m));
  WriteFile(*MountOption(m[0], "upperdir") + "/b", "layer 1\n");
  REQUIRE_OK(c.Commit("default/4/l1", "default/3/x1", {{kTierLabelKey, "slow"}}));
  REQUIRE_OK(c.Prepare("default/5/x2", "default/4/l1", {{kTierLabelKey, "fast"}}, &m));
  WriteFile(*MountOption(m[0], "upperdir") + "/c", "layer 2\n");
  REQUIRE_OK(c.Commit("default/6/l2", "default/5/x2", {{kTierLabelKey, "fast"}}));
  REQUIRE_OK(c.Prepare("ctr", "default/6/l2"));
  const auto listed = c.ListLines();

  DaemonOptions o;
  o.root_name = "second-root";
  o.fast_path = first.fast_dir();
  o.slow_path = first.slow_dir();
  o.start = false;
  DaemonProcess second(o);

  auto both_tiers = [&] {
    std::map<std::string, std::string> all;
    for (const std::string tier : {"fast", "slow"}) {
      for (const auto& [p, v] : TierListing(first.tier_dir(tier))) all[tier + ":" + p] = v;
    }
    return all;
  };
  auto expect_refusal = [&](const std::string& when) {
    INFO(when);
    const auto before = both_tiers();
    CommandResult r = second.RunExpectingExit({}, std::chrono::seconds(10));
    INFO("second instance (new --root, same --fast-path/--slow-path) -> exit "
         << r.exit_code() << (r.exit_code() == 124 ? " (it served for 10 s instead of refusing; stopped by timeout)" : "")
         << ", output:\n"
         << r.output);
    CHECK(DiffMaps(before, both_tiers()) == "");
    CHECK(Contains(r.output, "--claim-tiers"));
    CHECK((Contains(r.output, first.fast_dir()) || Contains(r.output, first.slow_dir())));
    REQUIRE(r.exit_code() == 1);
  };

  // While the first instance runs, and after it stopped.
  expect_refusal("the first instance is running");
  CHECK(c.ListLines() == listed);
  first.Stop();
  const auto stopped = both_tiers();
  expect_refusal("the first instance is stopped");
  first.Start();
  CHECK(c.ListLines() == listed);
  first.Stop();

  // --claim-tiers=adopt: it starts, owns the tiers, and every entry that was
  // on them is still there, under <tier>/lost+found/.
  second.AddArgs({"--claim-tiers=adopt"});
  second.Start();
  CHECK(second.client().ListLines().empty());
  for (const std::string tier : {"fast", "slow"}) {
    INFO("tier " << tier);
    const std::string dir = first.tier_dir(tier);
    CHECK(DirNames(dir + "/snapshots").empty());
    const auto after = TierListing(dir);
    // Each file or dir that was below snapshots/<x> is now below lost+found/
    // with the same path suffix, type and size.
    for (const auto& [key, v] : stopped) {
      if (key.rfind(tier + ":snapshots/", 0) != 0) continue;
      const std::string suffix = key.substr(tier.size() + std::string(":snapshots").size());  // "/<x>/..."
      bool found = false;
      for (const auto& [p, w] : after) {
        if (p.rfind("lost+found/", 0) == 0 && p.size() >= suffix.size() &&
            p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0 && w == v) {
          found = true;
          break;
        }
      }
      INFO("was " << key << " (" << v << ")");
      CHECK(found);
    }
  }
  // It serves on both tiers.
  REQUIRE_OK(second.client().Prepare("n-fast", "", {{kTierLabelKey, "fast"}}));
  REQUIRE_OK(second.client().Prepare("n-slow", "", {{kTierLabelKey, "slow"}}));
  second.Stop();

  // Now the first root's metadata names tiers another instance owns: it
  // refuses too, and deletes nothing.
  const auto owned = both_tiers();
  CommandResult r = first.RunExpectingExit({}, std::chrono::seconds(10));
  INFO("the first instance after the second adopted its tiers -> exit " << r.exit_code() << ":\n" << r.output);
  CHECK(r.exit_code() == 1);
  CHECK(Contains(r.output, "--claim-tiers"));
  CHECK(DiffMaps(owned, both_tiers()) == "");
}

// --------------------------------------------------------------------------
// (c) an undeletable file does not stop start-up or Cleanup

TEST_CASE("a chattr +i file in a stray dir on the slow tier: the daemon starts, Cleanup skips it and removes the rest",
          "[daemon][mover][cleanup]") {
  if (::geteuid() != 0) {
    WARN("skipped: chattr +i needs root");
    return;
  }
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  Mounts m;
  REQUIRE_OK(c.Prepare("default/1/x", "", {{kTierLabelKey, "slow"}}, &m));
  WriteFile(m[0].source() + "/keep", "kept\n");
  REQUIRE_OK(c.Commit("default/2/kept", "default/1/x", {{kTierLabelKey, "slow"}}));
  const std::string kept = CurrentFs(d, "default/2/kept");
  d.Stop();

  // Garbage of a crashed run: stray snapshot dirs (one holding an immutable
  // file), a staging leftover on each tier.
  const std::string stuck = d.slow_dir() + "/snapshots/999990";
  fs::create_directories(stuck + "/fs/etc");
  WriteFile(stuck + "/fs/etc/immutable", "cannot be deleted\n");
  WriteFile(stuck + "/fs/etc/plain", "can be deleted\n");
  CommandResult chattr = RunCommand({"chattr", "+i", stuck + "/fs/etc/immutable"});
  REQUIRE(chattr.ok());
  struct Unfreeze {
    std::string path;
    ~Unfreeze() { (void)RunCommand({"chattr", "-i", path}); }
  } unfreeze{stuck + "/fs/etc/immutable"};
  const std::vector<std::string> garbage = {
      d.slow_dir() + "/snapshots/999991", d.fast_dir() + "/snapshots/999992",
      d.slow_dir() + "/staging/999993-1-abcdef", d.fast_dir() + "/staging/999994-1-abcdef"};
  for (const std::string& g : garbage) {
    fs::create_directories(g + "/fs/sub");
    WriteFile(g + "/fs/sub/file", "garbage\n");
  }

  try {
    d.Start();
  } catch (const std::exception& e) {
    FAIL("the daemon did not start with an undeletable file on the slow tier: " << e.what());
  }
  // It serves, and start-up's cleanup took everything else.
  REQUIRE_OK(c.Stat("default/2/kept"));
  CHECK(ReadFile(kept + "/keep") == "kept\n");
  REQUIRE_OK(c.Prepare("new", "", {{kTierLabelKey, "slow"}}));
  for (const std::string& g : garbage) {
    INFO(g);
    CHECK_FALSE(fs::exists(g));
  }
  CHECK(fs::exists(stuck + "/fs/etc/immutable"));
  const std::string log = ReadFile(d.log_path());
  CHECK(Contains(log, "999990"));  // the skipped dir is logged

  // The Cleanup RPC skips it as well, and still removes new garbage.
  REQUIRE_OK(c.Prepare("doomed", "", {{kTierLabelKey, "slow"}}));
  REQUIRE_OK(c.Remove("doomed"));
  const auto dirs_before = SnapshotDirsById(d).size();
  REQUIRE_OK(c.Cleanup());
  CHECK(SnapshotDirsById(d).size() == dirs_before - 1);
  CHECK(fs::exists(stuck + "/fs/etc/immutable"));
  // And once the flag is gone, Cleanup removes it.
  REQUIRE(RunCommand({"chattr", "-i", stuck + "/fs/etc/immutable"}).ok());
  REQUIRE_OK(c.Cleanup());
  CHECK_FALSE(fs::exists(stuck));
}

}  // namespace
}  // namespace ndocker::daemon_test
