#include "lass/content_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lass/digest.h"
#include "lass/store_reader.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/log.h"

namespace ndocker::lass {
namespace {

constexpr uint32_t kSelfGone = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED;
// Directories whose children we wait for (the store, blobs/) or which stand
// in for a store that does not exist yet (the anchor).
constexpr uint32_t kParentMask =
    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
constexpr uint32_t kIngestMask = kParentMask;
// IN_ATTRIB: containerd sets the mtime (the commit time) just after the
// rename. IN_CLOSE_WRITE: a blob written in place is complete. IN_MODIFY is
// left out on purpose: ingest sizes are polled, blobs are not modified.
constexpr uint32_t kBlobMask = kParentMask | IN_ATTRIB | IN_CLOSE_WRITE;

// How long an ingest may lack ref/startedat/total before it is reported with
// whatever is there.
constexpr absl::Duration kMetaPatience = absl::Seconds(2);
// An ingest whose data has not grown for this long (a failed download kept
// for resumption) is sized once per rescan instead of every poll.
constexpr absl::Duration kStaleAfter = absl::Seconds(10);

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ContentWatcher>> ContentWatcher::Start(ContentWatcherOptions options) {
  if (options.content_root.empty() || options.content_root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("content store path \"", options.content_root, "\" is not absolute"));
  }
  while (options.content_root.size() > 1 && options.content_root.back() == '/') {
    options.content_root.pop_back();
  }
  UniqueFd inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify.valid()) return LastErrnoStatus("inotify_init1");
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return LastErrnoStatus("eventfd");
  return std::unique_ptr<ContentWatcher>(
      new ContentWatcher(std::move(options), std::move(inotify), std::move(wake)));
}

ContentWatcher::ContentWatcher(ContentWatcherOptions options, UniqueFd inotify, UniqueFd wake)
    : options_(std::move(options)),
      tracker_([this] {
        ContentTrackerOptions t = options_.tracker;
        t.clock = options_.clock;
        return t;
      }()),
      inotify_(std::move(inotify)),
      wake_(std::move(wake)) {
  {
    absl::MutexLock lock(&health_mu_);
    health_.enabled = true;
    health_.detail = absl::StrCat("starting on ", options_.content_root);
  }
  thread_ = std::thread([this] { Run(); });
}

ContentWatcher::~ContentWatcher() {
  uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one))) {
    // An eventfd write only fails if the counter would overflow, which means
    // a wake-up is already pending; Run() sees it either way.
    spdlog::warn("msg=\"content watcher wake-up write failed\" error={}",
                 Q(std::strerror(errno)));
  }
  if (thread_.joinable()) thread_.join();
}

WatcherHealth ContentWatcher::Health() const {
  absl::MutexLock lock(&health_mu_);
  return health_;
}

void ContentWatcher::SetHealth(bool readable, std::string detail) {
  absl::MutexLock lock(&health_mu_);
  if (health_.store_readable == readable && health_.detail == detail) return;
  if (readable) {
    spdlog::info("msg=\"content watcher running\" detail={}", Q(detail));
  } else {
    spdlog::warn("msg=\"content watcher cannot see the content store\" detail={}", Q(detail));
  }
  health_.store_readable = readable;
  health_.detail = std::move(detail);
}

// --- the thread ---

void ContentWatcher::Run() {
  Setup();
  absl::Time next_tick = absl::Now() + options_.rescan_interval;
  while (true) {
    absl::Time now = absl::Now();
    absl::Time deadline = need_setup_ ? now : next_tick;
    for (const auto& [_, w] : ingests_) deadline = std::min(deadline, w.next_poll);
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(deadline - now, absl::Milliseconds(1))),
                            0, 60'000));
    struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      // Only EFAULT/EINVAL/ENOMEM: nothing to wait on, so back off.
      spdlog::error("msg=\"content watcher poll failed\" error={}", Q(std::strerror(errno)));
      absl::SleepFor(options_.rescan_interval);
      continue;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) ReadEvents();
    if (need_setup_) Setup();
    now = absl::Now();
    if (now >= next_tick) {
      next_tick = now + options_.rescan_interval;
      if (!FullySetUp()) {
        Setup();
      } else if (ReconcileIngests()) {
        // Clears an earlier listing error once the store reads again.
        SetHealth(true, absl::StrCat("watching ", options_.content_root));
      }
      tracker_.Prune();
    }
    PollIngests(now);
  }
}

// --- watches ---

std::string ContentWatcher::PathOf(Role role) const {
  switch (role) {
    case kAnchor: return anchor_path_;
    case kRoot: return options_.content_root;
    case kIngest: return options_.content_root + "/ingest";
    case kBlobs: return options_.content_root + "/blobs";
    case kSha: return options_.content_root + "/blobs/sha256";
    case kRoles: break;
  }
  return {};
}

bool ContentWatcher::FullySetUp() const {
  return wd_[kRoot] >= 0 && wd_[kIngest] >= 0 && wd_[kBlobs] >= 0 && wd_[kSha] >= 0;
}

bool ContentWatcher::AddWatch(Role role, const std::string& path, uint32_t mask) {
  if (wd_[role] >= 0) return false;
  int wd = ::inotify_add_watch(inotify_.get(), path.c_str(), mask);
  if (wd < 0) {
    if (errno != ENOENT) {
      setup_error_ = absl::StrCat("inotify_add_watch ", path, ": ", std::strerror(errno));
    }
    return false;
  }
  wd_[role] = wd;
  return true;
}

void ContentWatcher::DropWatch(Role role) {
  if (wd_[role] < 0) return;
  // EINVAL: the kernel already dropped it (directory deleted).
  if (::inotify_rm_watch(inotify_.get(), wd_[role]) != 0 && errno != EINVAL) {
    spdlog::warn("msg=\"inotify_rm_watch failed\" path={} error={}", Q(PathOf(role)),
                 Q(std::strerror(errno)));
  }
  wd_[role] = -1;
}

void ContentWatcher::WatchAnchor() {
  // The deepest existing ancestor: its IN_CREATE is the first sign of the
  // store (or the directory on the way to it) appearing.
  auto deepest = [this] {
    std::string path = Parent(options_.content_root);
    while (path != "/" && !IsDir(path)) path = Parent(path);
    return path;
  };
  // A directory created below the anchor between the look-up and the watch
  // (containerd makes its root with mkdir -p at start) sends it no event:
  // look again after watching, until the anchor is the deepest. Bounded by
  // the path's depth.
  for (std::string path = deepest();; path = deepest()) {
    if (wd_[kAnchor] >= 0 && path == anchor_path_) return;
    DropWatch(kAnchor);
    anchor_path_ = path;
    if (!AddWatch(kAnchor, path, kParentMask)) {
      spdlog::debug("msg=\"cannot watch content store ancestor\" path={}", Q(path));
      return;
    }
  }
}

void ContentWatcher::Setup() {
  need_setup_ = false;
  setup_error_.clear();
  bool scan = false;
  if (wd_[kRoot] < 0) {
    int wd = ::inotify_add_watch(inotify_.get(), options_.content_root.c_str(), kParentMask);
    if (wd < 0) {
      int err = errno;
      WatchAnchor();
      if (err == ENOENT) {
        SetHealth(false, absl::StrCat("content store ", options_.content_root,
                                      " not found (waiting for containerd)"));
        // Created between the failed watch and the anchor watch: go again.
        if (IsDir(options_.content_root)) need_setup_ = true;
      } else {
        SetHealth(false, absl::StrCat("content store ", options_.content_root,
                                      " unreadable: ", std::strerror(err)));
      }
      // No store (or a file in its place): whatever was known from an
      // earlier store is gone with it. Other errors prove nothing.
      if (err == ENOENT || err == ENOTDIR) ForgetAll();
      return;
    }
    wd_[kRoot] = wd;
    DropWatch(kAnchor);
    scan = true;
  }
  scan |= AddWatch(kIngest, PathOf(kIngest), kIngestMask);
  scan |= AddWatch(kBlobs, PathOf(kBlobs), kParentMask);
  if (wd_[kBlobs] >= 0) scan |= AddWatch(kSha, PathOf(kSha), kBlobMask);
  // Watch first, then list: anything created in between shows up in both,
  // and both paths are idempotent.
  if (scan) {
    ReconcileBlobs(/*from_scan=*/true);
    ReconcileIngests();
  }
  if (setup_error_.empty()) {
    SetHealth(true, absl::StrCat("watching ", options_.content_root));
  } else {
    SetHealth(false, absl::StrCat("content store ", options_.content_root, " unreadable: ",
                                  setup_error_));
  }
}

void ContentWatcher::LoseWatch(Role role) {
  need_setup_ = true;
  switch (role) {
    case kAnchor:
      DropWatch(kAnchor);
      return;
    case kRoot:
      // A moved store keeps its subdirectory watches at the new place.
      for (Role r : {kRoot, kIngest, kBlobs, kSha}) DropWatch(r);
      SetHealth(false, absl::StrCat("content store ", options_.content_root,
                                    " not found (waiting for containerd)"));
      break;
    case kBlobs:
      DropWatch(kBlobs);
      DropWatch(kSha);
      break;
    case kIngest:
    case kSha:
      DropWatch(role);
      break;
    case kRoles:
      return;
  }
  ReconcileBlobs(/*from_scan=*/true);
  ReconcileIngests();
}

// --- events ---

void ContentWatcher::ReadEvents() {
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        spdlog::error("msg=\"reading inotify events failed\" error={}", Q(std::strerror(errno)));
      }
      return;
    }
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        spdlog::warn("msg=\"inotify queue overflowed; rescanning the content store\"");
        need_setup_ = true;
        ReconcileBlobs(/*from_scan=*/true);
        ReconcileIngests();
        continue;
      }
      OnEvent(ev->wd, ev->mask, ev->len > 0 ? std::string(ev->name) : std::string());
    }
  }
}

void ContentWatcher::OnEvent(int wd, uint32_t mask, const std::string& name) {
  int role = 0;
  while (role < kRoles && wd_[role] != wd) ++role;
  if (role == kRoles) return;  // a watch we already dropped
  if (mask & kSelfGone) {
    LoseWatch(static_cast<Role>(role));
    return;
  }
  const bool appeared = mask & (IN_CREATE | IN_MOVED_TO);
  const bool vanished = mask & (IN_DELETE | IN_MOVED_FROM);
  switch (role) {
    case kAnchor:
      need_setup_ = true;
      break;
    case kRoot:
    case kBlobs:
      if (appeared && (name == "ingest" || name == "blobs" || name == "sha256")) need_setup_ = true;
      break;
    case kIngest:
      if (!IsHex64(name)) break;
      if (appeared) OnIngest(name);
      if (vanished) OnIngestGone(name);
      break;
    case kSha:
      if (!IsHex64(name)) break;
      if (vanished) {
        OnBlobGone(name);
      } else if (appeared || blobs_.count(name)) {
        OnBlob(name, /*from_scan=*/false);
      }
      break;
  }
}

void ContentWatcher::ForgetAll() {
  // Blobs first, as in a real commit: a finished layer is done before its
  // ingest disappears.
  while (!blobs_.empty()) OnBlobGone(blobs_.begin()->first);
  while (!ingests_.empty()) OnIngestGone(ingests_.begin()->first);
}

// --- blobs ---

std::optional<std::set<std::string>> ContentWatcher::ListOrMarkUnreadable(Role role) {
  auto names = ListHex64Names(PathOf(role));
  if (!names.ok() && !absl::IsNotFound(names.status())) {
    // Known entries stay as they are: an unreadable directory is not proof
    // that they are gone.
    setup_error_ = std::string(names.status().message());
    SetHealth(false, absl::StrCat("content store ", options_.content_root, " unreadable: ",
                                  setup_error_));
    return std::nullopt;
  }
  std::set<std::string> on_disk;
  if (names.ok()) on_disk.insert(names->begin(), names->end());
  return on_disk;
}

namespace {

// Keys of `known` that are not in `on_disk`.
template <typename Map>
std::vector<std::string> Vanished(const Map& known, const std::set<std::string>& on_disk) {
  std::vector<std::string> gone;
  for (const auto& [name, _] : known) {
    if (!on_disk.count(name)) gone.push_back(name);
  }
  return gone;
}

}  // namespace

bool ContentWatcher::ReconcileBlobs(bool from_scan) {
  auto on_disk = ListOrMarkUnreadable(kSha);
  if (!on_disk) return false;
  for (const std::string& hex : Vanished(blobs_, *on_disk)) OnBlobGone(hex);
  // New blobs in commit order, so the tracker replays the pull as it
  // happened: index, manifest, config, then layers as they finished.
  std::vector<std::pair<absl::Time, std::string>> fresh;
  for (const std::string& hex : *on_disk) {
    if (blobs_.count(hex)) continue;
    auto info = StatBlob(options_.content_root, hex);
    if (info.ok()) fresh.emplace_back(info->mtime, hex);
  }
  std::sort(fresh.begin(), fresh.end());
  for (const auto& [_, hex] : fresh) OnBlob(hex, from_scan);
  return true;
}

void ContentWatcher::OnBlob(const std::string& hex, bool from_scan) {
  auto info = StatBlob(options_.content_root, hex);
  if (!info.ok()) {
    if (absl::IsNotFound(info.status())) {
      OnBlobGone(hex);
    } else {
      spdlog::debug("msg=\"ignoring blob\" digest=sha256:{} error={}", hex,
                    Q(std::string(info.status().message())));
    }
    return;
  }
  auto known = blobs_.find(hex);
  const bool is_new = known == blobs_.end();
  if (!is_new && known->second.mtime == info->mtime && !known->second.json_pending) return;
  std::optional<std::string> json;
  bool pending = false;
  // Only new (or not yet whole) blobs are read; an old one found by a scan is
  // only read when recent enough to belong to a pull still in progress.
  bool candidate = info->size <= kMaxJsonBlobSize &&
                   (is_new || known->second.json_pending) &&
                   (!from_scan || info->mtime >= options_.clock() - options_.startup_window);
  if (candidate) {
    auto bytes = ReadJsonBlob(options_.content_root, hex);
    if (bytes.ok()) {
      json = *std::move(bytes);
    } else if (absl::IsUnavailable(bytes.status())) {
      pending = true;
    } else if (!absl::IsNotFound(bytes.status())) {
      spdlog::warn("msg=\"cannot read blob\" digest=sha256:{} error={}", hex,
                   Q(std::string(bytes.status().message())));
    }
  }
  blobs_[hex] = KnownBlob{info->mtime, pending};
  tracker_.BlobCommitted(absl::StrCat("sha256:", hex), info->mtime, std::move(json));
}

void ContentWatcher::OnBlobGone(const std::string& hex) {
  if (blobs_.erase(hex) == 0) return;
  tracker_.BlobRemoved(absl::StrCat("sha256:", hex));
}

// --- ingests ---

bool ContentWatcher::ReconcileIngests() {
  auto on_disk = ListOrMarkUnreadable(kIngest);
  if (!on_disk) return false;
  for (const std::string& name : Vanished(ingests_, *on_disk)) OnIngestGone(name);
  for (const std::string& name : *on_disk) OnIngest(name);
  return true;
}

void ContentWatcher::OnIngest(const std::string& name) {
  if (ingests_.count(name)) return;
  absl::Time now = absl::Now();
  IngestWatch& w = ingests_[name];
  w.first_seen = now;
  w.last_change = now;
  w.next_poll = now;
  // The metadata is often there already by the time the event is read.
  TryReportIngest(name, w, now);
}

void ContentWatcher::OnIngestGone(const std::string& name) {
  auto it = ingests_.find(name);
  if (it == ingests_.end()) return;
  bool reported = it->second.reported;
  ingests_.erase(it);
  if (reported) tracker_.IngestGone(name);
}

void ContentWatcher::TryReportIngest(const std::string& name, IngestWatch& w, absl::Time now) {
  auto meta = ReadIngestMeta(options_.content_root, name);
  if (!meta.ok()) {
    if (!absl::IsNotFound(meta.status())) {
      spdlog::debug("msg=\"cannot read ingest\" ingest={} error={}", name,
                    Q(std::string(meta.status().message())));
    }
    w.next_poll = now + options_.poll_interval;
    return;
  }
  if (!meta->complete && now - w.first_seen < kMetaPatience) {
    w.next_poll = now + options_.poll_interval;
    return;
  }
  tracker_.IngestSeen(name, meta->ref, meta->total, meta->started_at);
  w.reported = true;
  w.next_poll = now;  // take the first size sample right away
}

void ContentWatcher::PollIngests(absl::Time now) {
  for (auto& [name, w] : ingests_) {
    if (now < w.next_poll) continue;
    if (!w.reported) {
      TryReportIngest(name, w, now);
      if (!w.reported) continue;
    }
    auto size = IngestDataSize(options_.content_root, name);
    if (size.ok()) {
      tracker_.IngestProgress(name, *size, options_.clock());
      if (*size != w.last_offset) {
        w.last_offset = *size;
        w.last_change = now;
      }
    } else if (!absl::IsNotFound(size.status())) {
      spdlog::debug("msg=\"cannot size ingest data\" ingest={} error={}", name,
                    Q(std::string(size.status().message())));
    }
    w.next_poll =
        now + (now - w.last_change > kStaleAfter ? options_.rescan_interval : options_.poll_interval);
  }
}

}  // namespace ndocker::lass
