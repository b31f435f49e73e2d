#include "hbcsa/promoter/hot_stacks.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/data_only_layers.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fault_point.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {
namespace {

// mount(2) takes one page of options; the stack's names its layers by their
// short links, so even 128 layers fit unless the root path is very long.
constexpr size_t kMaxMountData = 4095;

const HotLayerVersion* FindVersion(const std::vector<HotLayerRecord>& records, uint64_t id,
                                   const HotLayerRecord** owner = nullptr) {
  for (const HotLayerRecord& r : records) {
    for (const HotLayerVersion& v : r.versions) {
      if (v.id != id) continue;
      if (owner != nullptr) *owner = &r;
      return &v;
    }
  }
  return nullptr;
}

}  // namespace

bool StackInUse(const std::vector<MountInfoEntry>& mounts, const std::string& mount_point) {
  std::string device;
  std::vector<MountInfoEntry> others;
  for (const MountInfoEntry& m : mounts) {
    if (m.mount_point == mount_point) {
      if (m.fs_type == "overlay") device = m.major_minor;
      continue;
    }
    others.push_back(m);
  }
  if (!device.empty()) {
    for (const MountInfoEntry& m : others) {
      if (m.major_minor == device) return true;  // a bind mount of the stack (a view)
    }
  }
  return DirInUse(others, mount_point);
}

HotStacks::HotStacks(HotStacksOptions options) : options_(std::move(options)) {}

HotStacks::~HotStacks() { StopReaper(); }

void HotStacks::StopReaper() {
  {
    absl::MutexLock lock(&work_mu_);
    stopping_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
}

void HotStacks::Attach(HotStackWiring wiring) {
  absl::MutexLock lock(&wiring_mu_);
  wiring_ = std::move(wiring);
}

std::string HotStacks::MountPointOf(uint64_t id) const {
  return absl::StrCat(options_.mount_dir, "/", id);
}

absl::StatusOr<bool> HotStacks::IsMounted(const std::string& mount_point) const {
  // An overlay has a device of its own: a mount point whose device differs
  // from its parent directory's is mounted.
  struct stat mp, parent;
  if (::stat(mount_point.c_str(), &mp) != 0) {
    if (errno == ENOENT) return false;
    return LastErrnoStatus("stat", mount_point);
  }
  if (::stat(options_.mount_dir.c_str(), &parent) != 0) return LastErrnoStatus("stat", options_.mount_dir);
  return mp.st_dev != parent.st_dev;
}

HotStackWiring HotStacks::Wiring() {
  absl::MutexLock lock(&wiring_mu_);
  return wiring_;
}

absl::StatusOr<std::string> HotStacks::EnsureMounted(const HotStackWiring& w, const HotLayerVersion& v) {
  const std::string mp = MountPointOf(v.id);
  absl::StatusOr<bool> mounted = IsMounted(mp);
  if (!mounted.ok()) return mounted.status();
  if (*mounted) return mp;
  if (!w.mount_stacks) {
    return absl::FailedPreconditionError("hot layers are not mounted: the kernel has no data-only lower layers");
  }
  HotLayerStore* store = w.store;
  if (store == nullptr) return absl::UnavailableError("hot layers are not attached yet");
  std::vector<std::string> layers;
  for (const HotLayerSource& s : v.layers) layers.push_back(options_.layer_path(s.snapshot_id));
  const std::string data = DataOnlyOverlayOptions(store->DirOf(v.id), layers);
  if (data.size() > kMaxMountData) {
    return absl::FailedPreconditionError(absl::StrCat("hot layer ", v.id, ": its ", layers.size(),
                                                      " layers do not fit one mount option page (",
                                                      data.size(), " bytes)"));
  }
  if (::mkdir(options_.mount_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return LastErrnoStatus("mkdir", options_.mount_dir);
  }
  if (::mkdir(mp.c_str(), 0755) != 0 && errno != EEXIST) return LastErrnoStatus("mkdir", mp);
  if (::mount("overlay", mp.c_str(), "overlay", MS_RDONLY, data.c_str()) != 0) {
    return LastErrnoStatus("mount hot layer", mp);
  }
  spdlog::info("msg=\"hot layer mounted\" hot_layer={} mount_point={} layers={}", v.id, Q(mp), layers.size());
  return mp;
}

std::optional<SharedLower> HotStacks::ForParent(uint64_t parent_id) {
  const HotStackWiring w = Wiring();
  if (!w.mount_stacks || w.store == nullptr) return std::nullopt;
  absl::StatusOr<std::vector<HotLayerRecord>> records = w.store->List();
  if (!records.ok()) {
    spdlog::warn("msg=\"hot layers not readable; mounting the layer chain\" error={}", Q(records.status().message()));
    return std::nullopt;
  }
  const HotLayerVersion* best = nullptr;
  for (const HotLayerRecord& r : *records) {
    const HotLayerVersion* v = r.Current();
    if (v == nullptr || v->layers.empty() || v->layers.front().snapshot_id != parent_id) continue;
    if (best == nullptr || v->finished > best->finished) best = v;
  }
  if (best == nullptr) return std::nullopt;
  absl::MutexLock lock(&mount_mu_);
  absl::StatusOr<std::string> mp = EnsureMounted(w, *best);
  if (!mp.ok()) {
    spdlog::warn("msg=\"hot layer not used; mounting the layer chain\" hot_layer={} error={}", best->id,
                 Q(mp.status().message()));
    return std::nullopt;
  }
  ++pending_[best->id];
  return SharedLower{best->id, *mp};
}

void HotStacks::Settled(uint64_t id) {
  absl::MutexLock lock(&mount_mu_);
  auto it = pending_.find(id);
  if (it != pending_.end() && --it->second == 0) pending_.erase(it);
}

absl::StatusOr<std::string> HotStacks::Path(uint64_t id) {
  const HotStackWiring w = Wiring();
  if (w.store == nullptr) return absl::UnavailableError("hot layers are off");
  absl::StatusOr<std::vector<HotLayerRecord>> records = w.store->List();
  if (!records.ok()) return records.status();
  const HotLayerVersion* v = FindVersion(*records, id);
  if (v == nullptr || v->state == HotState::kBuilding) {
    return absl::NotFoundError(absl::StrCat("hot layer ", id, " does not exist"));
  }
  absl::MutexLock lock(&mount_mu_);
  return EnsureMounted(w, *v);
}

void HotStacks::Removed(uint64_t snapshot_id, Kind kind, uint64_t /*shared_lower*/) {
  // Any removal: a container on a stack leaves it unused, and one on the
  // chain may have held the old copies a stack waits for to be deleted.
  absl::MutexLock lock(&work_mu_);
  if (kind == Kind::kCommitted) removed_tops_.push_back(snapshot_id);
  reap_wanted_ = true;
}

void HotStacks::ReapSoon() {
  absl::MutexLock lock(&work_mu_);
  reap_wanted_ = true;
}

void HotStacks::StartReaper() {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

void HotStacks::ReaperLoop() {
  for (;;) {
    std::deque<uint64_t> tops;
    {
      absl::MutexLock lock(&work_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_) { return stopping_ || reap_wanted_; };
      // Also now and then: a layer migrated under an idle mounted stack
      // (ndockerctl migrate) sends no event, and its old copy waits for this.
      work_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.reap_interval);
      if (stopping_) return;
      reap_wanted_ = false;
      tops.swap(removed_tops_);
    }
    for (uint64_t top : tops) {
      if (absl::Status s = RetireImagesOnTop(top); !s.ok()) {
        spdlog::warn("msg=\"hot layers of a removed image not retired\" snapshot_id={} error={}", top,
                     Q(s.message()));
      }
    }
    if (absl::StatusOr<HotReapReport> r = Reap(); !r.ok()) {
      spdlog::warn("msg=\"hot layers not reaped\" error={}", Q(r.status().message()));
    }
  }
}

absl::Status HotStacks::RetireImagesOnTop(uint64_t top_snapshot_id) {
  HotLayerStore* store = Wiring().store;
  if (store == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<HotLayerRecord>> records = store->List();
  if (!records.ok()) return records.status();
  for (const HotLayerRecord& r : *records) {
    bool on_top = false;
    for (const HotLayerVersion& v : r.versions) {
      on_top = on_top || (!v.layers.empty() && v.layers.front().snapshot_id == top_snapshot_id);
    }
    if (!on_top) continue;
    absl::StatusOr<std::vector<uint64_t>> retired = store->RetireImage(r.image);
    if (!retired.ok()) return retired.status();
    spdlog::info("msg=\"image's top layer removed: its hot layers retired\" image={} retired={}", r.image,
                 retired->size());
  }
  return absl::OkStatus();
}

absl::Status HotStacks::Unmount(uint64_t id) {
  const std::string mp = MountPointOf(id);
  absl::StatusOr<bool> mounted = IsMounted(mp);
  if (!mounted.ok()) return mounted.status();
  if (*mounted && ::umount2(mp.c_str(), 0) != 0) return LastErrnoStatus("umount hot layer", mp);
  if (::rmdir(mp.c_str()) != 0 && errno != ENOENT) return LastErrnoStatus("rmdir", mp);
  return absl::OkStatus();
}

absl::StatusOr<HotReapReport> HotStacks::Reap() {
  const HotStackWiring w = Wiring();
  HotReapReport report;
  if (w.store == nullptr) return report;
  // Held from reading the records on: a Prepare that is handed a version
  // after that waits, and one handed a version before is pending here.
  absl::MutexLock lock(&mount_mu_);
  absl::StatusOr<StackUse> use = w.in_use();
  if (!use.ok()) return use.status();
  absl::StatusOr<std::vector<HotLayerRecord>> records = w.store->List();
  if (!records.ok()) return records.status();
  absl::StatusOr<std::vector<MountInfoEntry>> mounts = ReadMountInfo();
  if (!mounts.ok()) return mounts.status();
  const absl::flat_hash_set<uint64_t>* in_use = &use->versions;
  for (const HotLayerRecord& r : *records) {
    for (const HotLayerVersion& v : r.versions) {
      if (v.state == HotState::kBuilding) continue;
      const bool used =
          in_use->contains(v.id) || pending_.contains(v.id) || StackInUse(*mounts, MountPointOf(v.id));
      if (v.state == HotState::kReady) {
        // Kept mounted for the next container unless it holds a copy the
        // mover retired; then unmounted once unused and made again, over
        // the new copies, by the next container.
        bool pins = false;
        for (const HotLayerSource& l : v.layers) pins = pins || use->layers_with_retired_copies.contains(l.snapshot_id);
        absl::StatusOr<bool> mounted = IsMounted(MountPointOf(v.id));
        if (used || !pins || !mounted.ok() || !*mounted) continue;
        if (absl::Status s = Unmount(v.id); !s.ok()) {
          spdlog::warn("msg=\"unused hot layer not unmounted\" hot_layer={} error={}", v.id, Q(s.message()));
          continue;
        }
        report.unmounted.push_back(v.id);
        spdlog::info("msg=\"unused hot layer unmounted\" image={} hot_layer={}", r.image, v.id);
        continue;
      }
      if (used) {
        report.kept_in_use.push_back(v.id);
        continue;
      }
      if (absl::Status s = Unmount(v.id); !s.ok()) {
        // EBUSY: something we cannot see in our mount namespace uses it.
        spdlog::warn("msg=\"retired hot layer kept: not unmounted\" hot_layer={} error={}", v.id, Q(s.message()));
        report.kept_in_use.push_back(v.id);
        continue;
      }
      FaultPoint(fault::kHotDropAfterUnmount);
      if (absl::Status s = w.store->Drop(r.image, v.id); !s.ok()) return s;
      if (w.release_fast_bytes) w.release_fast_bytes(v.bytes);
      report.dropped.push_back(v.id);
      spdlog::info("msg=\"retired hot layer dropped\" image={} hot_layer={} bytes={}", r.image, v.id, v.bytes);
    }
  }
  // The layers they named may now be free for the core's Cleanup (removed
  // snapshots, or old copies the mover retired while a stack held them).
  if ((!report.dropped.empty() || !report.unmounted.empty()) && w.stacks_dropped) w.stacks_dropped();
  if (!w.mount_stacks) return report;
  // Ready versions that pin no retired copy (any more: the Cleanup above may
  // have deleted them) are mounted now rather than by their next container.
  absl::StatusOr<StackUse> now = w.in_use();
  if (!now.ok()) return now.status();
  for (const HotLayerRecord& r : *records) {
    const HotLayerVersion* v = r.Current();
    if (v == nullptr) continue;
    bool pins = false;
    for (const HotLayerSource& l : v->layers) pins = pins || now->layers_with_retired_copies.contains(l.snapshot_id);
    absl::StatusOr<bool> mounted = IsMounted(MountPointOf(v->id));
    if (pins || !mounted.ok() || *mounted) continue;
    if (absl::StatusOr<std::string> mp = EnsureMounted(w, *v); !mp.ok()) {
      spdlog::warn("msg=\"hot layer not mounted ahead\" hot_layer={} error={}", v->id, Q(mp.status().message()));
      continue;
    }
    report.mounted_ahead.push_back(v->id);
    spdlog::info("msg=\"hot layer mounted ahead of its containers\" image={} hot_layer={}", r.image, v->id);
  }
  return report;
}

absl::StatusOr<HotReapReport> HotStacks::Reconcile() {
  const HotStackWiring w = Wiring();
  if (w.store == nullptr) return HotReapReport{};
  absl::StatusOr<StackUse> use = w.in_use();
  if (!use.ok()) return use.status();
  absl::StatusOr<std::vector<HotLayerRecord>> records = w.store->List();
  if (!records.ok()) return records.status();
  {
    absl::MutexLock lock(&mount_mu_);
    for (uint64_t id : use->versions) {
      const HotLayerVersion* v = FindVersion(*records, id);
      if (v == nullptr) continue;  // Mounts falls back to the chain for it
      if (absl::StatusOr<std::string> mp = EnsureMounted(w, *v); !mp.ok()) {
        spdlog::warn("msg=\"hot layer a snapshot uses not mounted\" hot_layer={} error={}", id,
                     Q(mp.status().message()));
      }
    }
    // Mount points of versions that no longer exist (a crash between an
    // unmount and the record's drop, or a Recover that removed a build).
    absl::StatusOr<std::vector<MountInfoEntry>> mounts = ReadMountInfo();
    if (!mounts.ok()) return mounts.status();
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(options_.mount_dir, ec)) {
      uint64_t id = 0;
      if (!absl::SimpleAtoi(e.path().filename().string(), &id) || FindVersion(*records, id) != nullptr) continue;
      if (StackInUse(*mounts, MountPointOf(id))) continue;
      if (absl::Status s = Unmount(id); !s.ok()) {
        spdlog::warn("msg=\"leftover hot layer mount point kept\" path={} error={}", Q(e.path().string()),
                     Q(s.message()));
      }
    }
  }
  return Reap();
}

}  // namespace ndocker::hbcsa
