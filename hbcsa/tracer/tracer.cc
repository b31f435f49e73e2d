#include "hbcsa/tracer/tracer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/log.h"
#include "snapshotter/mountinfo.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

namespace ndocker::hbcsa {

namespace {

// The calling thread's CPU time. CLOCK_THREAD_CPUTIME_ID rather than
// getrusage(RUSAGE_THREAD): same quantity, but getrusage here is tick-sampled
// (a traced start read 0 us or 1.6 ms for the same work), the clock is exact.
absl::Duration ThreadCpu() {
  struct timespec ts;
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return absl::ZeroDuration();
  return absl::DurationFromTimespec(ts);
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct MountLine {
  uint64_t id = 0;
  uint64_t dev = 0;
  std::string mount_point;
  std::string fs_type;
  std::string super_options;  // raw (',' in values escaped)
};

std::vector<MountLine> ReadMountLines() {
  std::vector<MountLine> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 10) continue;
    MountLine m;
    if (!absl::SimpleAtoi(f[0], &m.id)) continue;
    std::pair<absl::string_view, absl::string_view> mm = absl::StrSplit(f[2], ':');
    unsigned maj = 0, min = 0;
    if (!absl::SimpleAtoi(mm.first, &maj) || !absl::SimpleAtoi(mm.second, &min)) continue;
    m.dev = makedev(maj, min);
    m.mount_point = UnescapeMountInfo(f[4]);
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 3 >= f.size()) continue;
    m.fs_type = std::string(f[dash + 1]);
    m.super_options = std::string(f[dash + 3]);
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<uint64_t> UniqueMountId(const std::string& path) {
  struct statx stx;
  if (::statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID_UNIQUE,
              &stx) != 0 ||
      !(stx.stx_mask & STATX_MNT_ID_UNIQUE)) {
    return std::nullopt;
  }
  return stx.stx_mnt_id;
}

}  // namespace

std::string ContainerIdFromCgroupPath(const std::string& cgroup_path) {
  absl::string_view base = cgroup_path;
  if (size_t slash = base.rfind('/'); slash != absl::string_view::npos) base = base.substr(slash + 1);
  absl::ConsumeSuffix(&base, ".scope");
  for (absl::string_view prefix : {"cri-containerd-", "docker-", "crio-"}) {
    if (absl::ConsumePrefix(&base, prefix)) break;
  }
  // systemd driver: "cri-containerd:<id>" is in the path as a slice name; a
  // plain ":" separated tail keeps the last part.
  if (size_t colon = base.rfind(':'); colon != absl::string_view::npos) base = base.substr(colon + 1);
  return std::string(base);
}

std::optional<std::string> CgroupPathFromProcText(const std::string& text) {
  std::optional<std::string> v1;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3 || f[2] == "/" || f[2].empty()) continue;
    if (f[0] == "0" && f[1].empty()) return std::string(f[2]);
    // v1: the pids or systemd hierarchy first (a runtime sets them per container).
    if (!v1 || f[1] == "pids") v1 = std::string(f[2]);
  }
  return v1;
}

// ---- ProcLookup

void ProcLookup::Rescan() {
  last_scan_ = absl::Now();
  host_ids_.clear();
  std::vector<MountLine> lines = ReadMountLines();
  for (const MountLine& m : lines) {
    if (std::find(tier_devs_.begin(), tier_devs_.end(), m.dev) != tier_devs_.end()) {
      host_ids_.insert(m.id);
      if (auto unique = UniqueMountId(m.mount_point)) host_ids_.insert(*unique);
    }
    if (m.fs_type != "overlay") continue;
    for (absl::string_view opt : absl::StrSplit(m.super_options, ',')) {
      if (!absl::ConsumePrefix(&opt, "upperdir=")) continue;
      const std::string upper = UnescapeMountInfo(opt);
      for (const auto& [container, chain] : chain_of_) {
        if (upper == chain.upper_dir) mountpoint_[container] = m.mount_point;
      }
    }
  }
}

bool ProcLookup::IsHostMount(uint64_t mnt_id) {
  if (auto it = host_.find(mnt_id); it != host_.end()) return it->second;
  if (absl::Now() - last_scan_ >= absl::Milliseconds(100)) Rescan();
  if (host_.size() > 100000) host_.clear();
  const bool host = host_ids_.count(mnt_id) > 0;
  host_[mnt_id] = host;
  return host;
}

std::optional<std::string> ProcLookup::ContainerOfPid(int32_t pid) {
  const std::string text = ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup");
  std::optional<std::string> path = CgroupPathFromProcText(text);
  if (!path) return std::nullopt;
  return ContainerIdFromCgroupPath(*path);
}

std::optional<std::pair<std::string, std::string>> ProcLookup::ContainerOfHostPath(
    const std::string& path) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [container, mp] : mountpoint_) {
      if (path.size() > mp.size() && absl::StartsWith(path, mp) && path[mp.size()] == '/') {
        return std::make_pair(container, mp);
      }
    }
    // A watched rootfs not yet seen mounted: look again (rate-limited).
    if (pass == 0 && mountpoint_.size() < chain_of_.size() &&
        absl::Now() - last_scan_ >= absl::Milliseconds(100)) {
      Rescan();
    } else {
      break;
    }
  }
  return std::nullopt;
}

std::vector<std::string> ProcLookup::ContainersServing(const TraceEvent& event) {
  std::vector<std::string> out;
  const std::string rel = event.path.substr(1);
  const std::pair<uint64_t, uint64_t> want{event.dev, event.ino};
  for (const auto& [container, chain] : chain_of_) {
    bool match = !chain.upper_dir.empty() && IdentifyInDir(chain.upper_dir, rel) == want;
    for (size_t i = 0; !match && i < chain.lowers.size(); ++i) {
      match = IdentifyInDir(chain.lowers[i].dir, rel) == want;
    }
    if (match) out.push_back(container);
  }
  return out;
}

void ProcLookup::Watch(const std::string& container, const RootfsChain& chain) {
  chain_of_[container] = chain;
}

void ProcLookup::Forget(const std::string& container) {
  chain_of_.erase(container);
  mountpoint_.erase(container);
}

// ---- IdentifyInDir

std::optional<std::pair<uint64_t, uint64_t>> IdentifyInDir(const std::string& dir,
                                                           const std::string& rel) {
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return std::nullopt;
  int fd = root.get();
  UniqueFd file;
  if (!rel.empty()) {
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV;
    const long r = ::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how);
    if (r < 0) return std::nullopt;
    file.Reset(static_cast<int>(r));
    fd = file.get();
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return std::nullopt;
  // A whiteout (0/0 char device) serves nothing.
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return std::nullopt;
  return std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
}

// ---- Tracer

Tracer::Tracer(FanotifyGroup group, const TracerOptions& options, TraceSink* sink,
               std::vector<uint64_t> tier_devs)
    : group_(std::move(group)),
      options_(options),
      sink_(sink),
      lookup_(std::move(tier_devs)),
      assembler_(options.assembler, &lookup_) {}

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::Start(const std::vector<std::string>& tier_roots,
                                                      const TracerOptions& options,
                                                      TraceSink* sink) {
  absl::StatusOr<FanotifyGroup> group =
      FanotifyGroup::Create(FanotifyGroup::Options{.unlimited_queue = options.unlimited_queue});
  if (!group.ok()) return group.status();
  const uint64_t mask = options.mask ? options.mask : (FAN_OPEN | FAN_OPEN_EXEC);
  std::vector<uint64_t> devs;
  for (const std::string& root : tier_roots) {
    struct stat st;
    if (::stat(root.c_str(), &st) != 0) return LastErrnoStatus("stat(tier root)", root);
    if (std::find(devs.begin(), devs.end(), st.st_dev) != devs.end()) continue;  // one mark per sb
    if (absl::Status s = group->MarkFilesystem(root, mask); !s.ok()) return s;
    devs.push_back(st.st_dev);
  }
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return LastErrnoStatus("eventfd");
  std::unique_ptr<Tracer> t(new Tracer(*std::move(group), options, sink, std::move(devs)));
  t->wake_.Reset(efd);
  t->loop_ = std::thread([p = t.get()] { p->Loop(); });
  t->finisher_ = std::thread([p = t.get()] { p->FinishLoop(); });
  spdlog::info("msg=\"tracer started\" tiers={} unlimited_queue={}", tier_roots.size(),
               options.unlimited_queue);
  return t;
}

Tracer::~Tracer() {
  stop_ = true;
  const uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof one) < 0) {
    spdlog::warn("msg=\"tracer wake failed\"");
  }
  if (loop_.joinable()) loop_.join();
  {
    absl::MutexLock l(&mu_);
    Hand(assembler_.EndAll(absl::Now()));
    finisher_stop_ = true;
  }
  if (finisher_.joinable()) finisher_.join();
}

void Tracer::WatchContainer(const std::string& container, RootfsChain chain) {
  absl::MutexLock l(&mu_);
  lookup_.Watch(container, chain);
  chains_[container] = std::move(chain);
  assembler_.Watch(container, absl::Now());
}

void Tracer::ContainerGone(const std::string& container) {
  absl::MutexLock l(&mu_);
  if (std::optional<Trace> t = assembler_.End(container, absl::Now())) {
    std::vector<Trace> one;
    one.push_back(*std::move(t));
    Hand(std::move(one));
  }
  lookup_.Forget(container);
  chains_.erase(container);
}

TracerStats Tracer::stats() {
  absl::MutexLock l(&mu_);
  TracerStats s = stats_;
  s.read = group_.stats();
  s.assembler = assembler_.stats();
  return s;
}

void Tracer::Hand(std::vector<Trace> traces) {
  for (Trace& t : traces) {
    auto it = chains_.find(t.container);
    RootfsChain chain = it != chains_.end() ? it->second : RootfsChain{};
    finished_.emplace_back(std::move(t), std::move(chain));
  }
}

void Tracer::Loop() {
  std::vector<FanEvent> events;
  while (!stop_) {
    absl::StatusOr<bool> ready = group_.Wait(options_.tick, wake_.get());
    if (!ready.ok()) {
      spdlog::warn("msg=\"tracer wait failed\" error={}", Q(ready.status().message()));
      absl::SleepFor(options_.tick);
    }
    const absl::Duration cpu0 = ThreadCpu();
    absl::MutexLock l(&mu_);
    for (int i = 0; i < 256; ++i) {  // bounded: Tick below must run too
      events.clear();
      absl::StatusOr<size_t> n = group_.Read(
          &events, [this](const FanEvent& e) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !lookup_.IsHostMount(e.mnt_id);
          });
      if (!n.ok()) {
        spdlog::warn("msg=\"tracer read failed\" error={}", Q(n.status().message()));
        break;
      }
      const absl::Time now = absl::Now();
      for (FanEvent& e : events) {
        if (e.overflow) {
          spdlog::warn("msg=\"fanotify queue overflow: open traces are incomplete\"");
          assembler_.Overflow();
          continue;
        }
        if (!e.regular) continue;
        assembler_.Add(TraceEvent{e.pid, e.mask, std::move(e.path), e.dev, e.ino, e.size,
                                  e.mnt_id, now});
      }
      if (*n == 0) break;
    }
    Hand(assembler_.Tick(absl::Now()));
    const absl::Duration cpu = ThreadCpu() - cpu0;
    stats_.loop_cpu += cpu;
    assembler_.ChargeCpu(cpu);
  }
}

void Tracer::FinishLoop() {
  for (;;) {
    std::pair<Trace, RootfsChain> item;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](Tracer* t) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !t->finished_.empty() || t->finisher_stop_;
          },
          this));
      if (finished_.empty()) return;
      item = std::move(finished_.front());
      finished_.pop_front();
    }
    const absl::Duration cpu0 = ThreadCpu();
    AttributeLayers(item.second, IdentifyInDir, &item.first);
    const absl::Duration cpu = ThreadCpu() - cpu0;
    item.first.cpu += cpu;
    {
      absl::MutexLock l(&mu_);
      stats_.finisher_cpu += cpu;
      ++stats_.traces;
    }
    spdlog::info("msg=\"trace done\" container={} files={} events={} end={} complete={} cpu_us={}",
                 Q(item.first.container), item.first.files.size(), item.first.events,
                 TraceEndName(item.first.end_reason), item.first.complete,
                 absl::ToInt64Microseconds(item.first.cpu));
    if (sink_) sink_->OnTrace(item.first, item.second);
  }
}

}  // namespace ndocker::hbcsa
