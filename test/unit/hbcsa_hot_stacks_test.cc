// Hot layers as shared lowers: handed out for their image's top layer only,
// mounted read-only over their layers as data-only layers, and dropped only
// when retired and unused by records, pending Prepares and mounts.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hbcsa/promoter/data_only_layers.h"
#include "hbcsa/promoter/hot_stacks.h"
#include "hbcsa/promoter/promoter.h"
#include "test/unit/file_util.h"
#include "test/unit/temp_dir.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;

MountInfoEntry Entry(std::string mount_point, std::string fs_type, std::string major_minor,
                     std::string options = "") {
  MountInfoEntry m;
  m.mount_point = std::move(mount_point);
  m.fs_type = std::move(fs_type);
  m.major_minor = std::move(major_minor);
  m.super_options = std::move(options);
  return m;
}

TEST_CASE("StackInUse: overlays and bind mounts of a stack use it, the stack itself does not",
          "[hbcsa][hot]") {
  const std::string mp = "/var/lib/ndocker/hot-mounts/7";
  const MountInfoEntry root = Entry("/", "ext4", "8:1");
  const MountInfoEntry stack =
      Entry(mp, "overlay", "0:77", "ro,lowerdir=/fast/hot/7::/var/lib/ndocker/l/4,metacopy=on");
  CHECK_FALSE(StackInUse({root, stack}, mp));
  CHECK_FALSE(StackInUse({root}, mp));  // not mounted at all
  // A container's overlay over it (also after the stack was detached).
  const MountInfoEntry container =
      Entry("/run/c1/rootfs", "overlay", "0:80", "rw,lowerdir=" + mp + ",upperdir=/slow/s/9/fs,workdir=/slow/s/9/work");
  CHECK(StackInUse({root, stack, container}, mp));
  CHECK(StackInUse({root, container}, mp));
  // A view: a bind mount of the stack shows its device.
  CHECK(StackInUse({root, stack, Entry("/run/v1", "overlay", "0:77")}, mp));
  // Another stack's users are not this one's.
  const MountInfoEntry other =
      Entry("/run/c2/rootfs", "overlay", "0:81", "rw,lowerdir=" + mp + "0,upperdir=/u,workdir=/w");
  CHECK_FALSE(StackInUse({root, stack, other}, mp));
}

using testing::ReadText;
using testing::WriteText;

bool Mounted(const std::string& path) {
  struct stat a, b;
  return ::stat(path.c_str(), &a) == 0 && ::stat(fs::path(path).parent_path().c_str(), &b) == 0 &&
         a.st_dev != b.st_dev;
}

const std::string kImage = "sha256:" + std::string(64, 'a');
const std::string kTop = "sha256:" + std::string(64, '2');
const std::string kBottom = "sha256:" + std::string(64, '1');
constexpr uint64_t kTopId = 12, kBottomId = 11;

// Two layers, a hot layer store, HotStacks attached with a test-held view of
// which versions snapshot records name. Everything mounted below the temp
// dir is detached at the end, whatever a failed check left.
struct Rig {
  testing::TempDir root;
  std::string l1 = root / "slow/snapshots/11/fs";
  std::string l2 = root / "fast/snapshots/12/fs";
  std::unique_ptr<MetaStore> meta;
  std::unique_ptr<HotLayerStore> store;
  std::unique_ptr<Promoter> promoter;
  std::unique_ptr<HotStacks> stacks;
  absl::flat_hash_set<uint64_t> in_use;
  absl::flat_hash_set<uint64_t> retired_copies;  // layers the mover moved
  int64_t released = 0;
  int dropped_calls = 0;
  std::vector<std::string> extra_mounts;

  Rig() {
    WriteText(l1 + "/bin/app", "app binary");
    WriteText(l1 + "/usr/share/doc/big", std::string(10000, 'x'));
    WriteText(l2 + "/etc/conf", "top conf");
    fs::create_directories(root / "metadata");
    auto m = MetaStore::Open(root / "metadata");
    REQUIRE(m.ok());
    meta = *std::move(m);
    store = std::make_unique<HotLayerStore>(*meta, root / "fast/hot");
    promoter = std::make_unique<Promoter>(
        *store,
        [this](const std::string& top) -> absl::StatusOr<std::vector<ChainLayer>> {
          if (top != kTop) return absl::NotFoundError("no such chain");
          std::vector<ChainLayer> chain(2);
          chain[0].source = HotLayerSource{kTop, kTopId, 0, Tier::kFast};
          chain[0].fs_dir = l2;
          chain[1].source = HotLayerSource{kBottom, kBottomId, 0, Tier::kSlow};
          chain[1].fs_dir = l1;
          return chain;
        },
        BuildOptions{.sync = false});
    HotStacksOptions o;
    o.mount_dir = root / "hot-mounts";
    o.layer_path = [this](uint64_t id) { return id == kTopId ? l2 : l1; };
    stacks = std::make_unique<HotStacks>(std::move(o));
    HotStackWiring w;
    w.store = store.get();
    w.in_use = [this]() -> absl::StatusOr<StackUse> { return StackUse{in_use, retired_copies}; };
    w.release_fast_bytes = [this](int64_t b) { released += b; };
    w.stacks_dropped = [this] { ++dropped_calls; };
    stacks->Attach(std::move(w));
  }
  ~Rig() {
    stacks.reset();
    for (const std::string& m : extra_mounts) ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / "hot-mounts", ec)) {
      ::umount2(e.path().c_str(), MNT_DETACH);
    }
  }

  HotLayerVersion Promote(uint64_t profile_version, std::vector<std::string> paths) {
    Profile p;
    p.image = kImage;
    p.top_chain = kTop;
    p.version = profile_version;
    for (const std::string& path : paths) p.files.push_back(HotFile{path, kBottom, 1, 1});
    absl::StatusOr<HotLayerRecord> r = promoter->Promote(p);
    REQUIRE(r.ok());
    REQUIRE(r->Current() != nullptr);
    return *r->Current();
  }
  std::vector<uint64_t> Versions() {
    absl::StatusOr<std::optional<HotLayerRecord>> r = store->Get(kImage);
    REQUIRE(r.ok());
    std::vector<uint64_t> ids;
    if (*r) {
      for (const HotLayerVersion& v : (*r)->versions) ids.push_back(v.id);
    }
    return ids;
  }
};

bool CanMount(const std::string& scratch) {
  if (::geteuid() != 0) {
    WARN("skipped: mounting overlays needs root");
    return false;
  }
  absl::StatusOr<bool> ok = DataOnlyLowerLayersSupported(scratch);
  if (!ok.ok() || !*ok) {
    WARN("skipped: this kernel has no data-only lower layers");
    return false;
  }
  return true;
}

TEST_CASE("HotStacks: the top layer's containers get the mounted hot layer, a retired one goes when unused",
          "[hbcsa][hot][root]") {
  testing::TempDir probe;
  if (!CanMount(probe.path())) return;
  Rig rig;
  CHECK_FALSE(rig.stacks->ForParent(kTopId).has_value());  // no hot layer yet
  const HotLayerVersion v1 = rig.Promote(1, {"/bin/app"});
  CHECK_FALSE(rig.stacks->ForParent(kBottomId).has_value());  // not the image's top

  std::optional<SharedLower> got = rig.stacks->ForParent(kTopId);
  REQUIRE(got.has_value());
  CHECK(got->id == v1.id);
  CHECK(got->path == rig.stacks->MountPointOf(v1.id));
  REQUIRE(Mounted(got->path));
  // The image's merged view: hot data, the top layer's file, a stub's data
  // through its redirect into a data-only layer.
  CHECK(ReadText(got->path + "/bin/app") == "app binary");
  CHECK(ReadText(got->path + "/etc/conf") == "top conf");
  CHECK(ReadText(got->path + "/usr/share/doc/big") == std::string(10000, 'x'));
  CHECK(::access((got->path + "/bin/new").c_str(), F_OK) != 0);
  CHECK(::mkdir((got->path + "/x").c_str(), 0755) != 0);  // read-only
  CHECK(errno == EROFS);

  // A new version retires v1; v1 stays while anything may use it.
  const HotLayerVersion v2 = rig.Promote(2, {"/bin/app", "/etc/conf"});
  REQUIRE(v2.id != v1.id);
  absl::StatusOr<HotReapReport> r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->kept_in_use == std::vector<uint64_t>{v1.id});  // handed out, the Prepare not settled
  CHECK(r->mounted_ahead == std::vector<uint64_t>{v2.id});  // before any container asks
  CHECK(Mounted(rig.stacks->MountPointOf(v2.id)));
  rig.stacks->Settled(v1.id);
  rig.in_use.insert(v1.id);  // ... and its record committed
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->kept_in_use == std::vector<uint64_t>{v1.id});
  rig.in_use.clear();  // the snapshot was removed, but its overlay is still mounted
  const std::string upper = rig.root / "c/upper", work = rig.root / "c/work", merged = rig.root / "c/merged";
  for (const std::string& d : {upper, work, merged}) fs::create_directories(d);
  const std::string opts = "lowerdir=" + got->path + ",upperdir=" + upper + ",workdir=" + work;
  REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) == 0);
  rig.extra_mounts.push_back(merged);
  CHECK(ReadText(merged + "/usr/share/doc/big") == std::string(10000, 'x'));
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->kept_in_use == std::vector<uint64_t>{v1.id});
  CHECK(rig.dropped_calls == 0);
  REQUIRE(::umount2(merged.c_str(), 0) == 0);
  rig.extra_mounts.clear();

  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->dropped == std::vector<uint64_t>{v1.id});
  CHECK(r->kept_in_use.empty());
  CHECK_FALSE(fs::exists(rig.stacks->MountPointOf(v1.id)));
  CHECK_FALSE(fs::exists(rig.store->DirOf(v1.id)));
  CHECK(rig.released == v1.bytes);
  CHECK(rig.dropped_calls == 1);
  CHECK(rig.Versions() == std::vector<uint64_t>{v2.id});

  // A ready version's mount stays for the next container, also unused...
  got = rig.stacks->ForParent(kTopId);
  REQUIRE(got.has_value());
  CHECK(got->id == v2.id);
  rig.in_use.insert(v2.id);
  rig.stacks->Settled(v2.id);
  rig.retired_copies.insert(kBottomId);  // the mover moved a layer it names
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->unmounted.empty());  // in use
  CHECK(Mounted(got->path));
  rig.in_use.clear();
  rig.retired_copies.clear();
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->unmounted.empty());  // unused, but it pins no retired copy
  CHECK(Mounted(got->path));
  // ... unless it holds a copy the mover retired: then it goes, and the next
  // container mounts it again (over the new copies).
  rig.retired_copies.insert(kBottomId);
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->unmounted == std::vector<uint64_t>{v2.id});
  CHECK(r->dropped.empty());
  CHECK_FALSE(Mounted(got->path));
  CHECK(rig.dropped_calls == 2);
  CHECK(rig.Versions() == std::vector<uint64_t>{v2.id});
  CHECK(r->mounted_ahead.empty());  // it still pins the old copy
  // The old copy gone (the Cleanup after the unmount deleted it): mounted
  // again ahead of the next container, over the new copies.
  rig.retired_copies.clear();
  r = rig.stacks->Reap();
  REQUIRE(r.ok());
  CHECK(r->mounted_ahead == std::vector<uint64_t>{v2.id});
  CHECK(Mounted(got->path));
  REQUIRE(::umount2(got->path.c_str(), 0) == 0);
  rig.retired_copies.insert(kBottomId);
  got = rig.stacks->ForParent(kTopId);
  REQUIRE(got.has_value());
  CHECK(Mounted(got->path));
  rig.stacks->Settled(v2.id);

  // A mount lost (a reboot): Path mounts it again for the snapshot that
  // recorded it; an unknown version is an error (the core then mounts the chain).
  REQUIRE(::umount2(got->path.c_str(), 0) == 0);
  absl::StatusOr<std::string> path = rig.stacks->Path(v2.id);
  REQUIRE(path.ok());
  CHECK(Mounted(*path));
  CHECK(ReadText(*path + "/etc/conf") == "top conf");
  CHECK(absl::IsNotFound(rig.stacks->Path(v1.id).status()));

  // The image's top layer is removed: its hot layer is retired and, unused,
  // dropped by the background reaper.
  rig.stacks->StartReaper();
  rig.stacks->Removed(kBottomId, Kind::kCommitted, 0);  // not a top: nothing happens to v2
  rig.stacks->Removed(kTopId, Kind::kCommitted, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!rig.Versions().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(rig.Versions().empty());
  CHECK_FALSE(fs::exists(rig.stacks->MountPointOf(v2.id)));
  CHECK(rig.released == v1.bytes + v2.bytes);
}

}  // namespace
}  // namespace ndocker::hbcsa
