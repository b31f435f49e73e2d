#include "hbcsa/tracer/tracer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/log.h"

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

namespace {
// Long enough for a process's burst of opens, short against pid reuse.
constexpr absl::Duration kRemember = absl::Milliseconds(500);
// How long a gone process's answer and a fork are kept: its open events may
// still be queued behind a burst.
constexpr absl::Duration kKeepGone = absl::Seconds(30);
constexpr size_t kPruneAbove = 16384;
constexpr int kMaxAncestors = 16;
}  // namespace

std::string ProcLookup::ReadProcCgroup(int32_t pid) {
  return ReadSmallFile("/proc/" + std::to_string(pid) + "/cgroup");
}

std::optional<std::string> ProcLookup::ContainerOfPid(int32_t pid) {
  return Resolve(pid, absl::Now(), 0);
}

std::optional<std::string> ProcLookup::Resolve(int32_t pid, absl::Time now, int depth) {
  auto known = pids_.find(pid);
  if (known != pids_.end() && now - known->second.at < kRemember) return known->second.container;
  const std::string text = read_cgroup_(pid);
  if (!text.empty()) {  // alive (pid reuse within kRemember is not guarded against)
    std::optional<std::string> path = CgroupPathFromProcText(text);
    std::optional<std::string> container;
    if (path) container = ContainerIdFromCgroupPath(*path);
    Remember(pid, container, now);
    return container;
  }
  // Gone. What it was when last seen, else what its parent was: a child
  // starts in its parent's cgroup.
  if (known != pids_.end() && now - known->second.at < kKeepGone) return known->second.container;
  auto forked = parents_.find(pid);
  if (forked == parents_.end() || depth >= kMaxAncestors) return std::nullopt;
  std::optional<std::string> container = Resolve(forked->second.parent, now, depth + 1);
  if (container) {
    ++by_parent_;
    Remember(pid, container, now);
  }
  return container;
}

void ProcLookup::Remember(int32_t pid, std::optional<std::string> container, absl::Time now) {
  if (pids_.size() > kPruneAbove) {
    for (auto it = pids_.begin(); it != pids_.end();) {
      it = now - it->second.at >= kKeepGone ? pids_.erase(it) : std::next(it);
    }
  }
  pids_[pid] = Known{std::move(container), now};
}

void ProcLookup::OnFork(const Fork& fork, absl::Time now) {
  if (parents_.size() > kPruneAbove) {
    for (auto it = parents_.begin(); it != parents_.end();) {
      it = now - it->second.at >= kKeepGone ? parents_.erase(it) : std::next(it);
    }
  }
  parents_[fork.child] = Forked{fork.parent, now};
  pids_.erase(fork.child);  // a reused pid: what was known is another process's
}

// ---- SizeInDir

std::optional<int64_t> SizeInDir(const std::string& dir, const std::string& rel) {
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid() || rel.empty()) return std::nullopt;
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV;
  const long r = ::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how);
  if (r < 0) return std::nullopt;
  UniqueFd file(static_cast<int>(r));
  struct stat st;
  if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<int64_t>(st.st_size);
}

// ---- Tracer

Tracer::Tracer(FanotifyGroup group, std::optional<ProcessEvents> forks, const TracerOptions& options,
               TraceSink* sink, std::vector<std::string> given_roots, std::vector<std::string> tier_roots,
               DirResolver dirs)
    : group_(std::move(group)),
      forks_(std::move(forks)),
      options_(options),
      sink_(sink),
      tier_roots_(std::move(tier_roots)),
      given_roots_(std::move(given_roots)),
      own_pid_(static_cast<int32_t>(::getpid())),
      dirs_(std::move(dirs)),
      assembler_(options.assembler, &lookup_) {}

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::Start(const std::vector<std::string>& tier_roots,
                                                      const TracerOptions& options,
                                                      TraceSink* sink) {
  absl::StatusOr<FanotifyGroup> group =
      FanotifyGroup::Create(FanotifyGroup::Options{.unlimited_queue = options.unlimited_queue});
  if (!group.ok()) return group.status();
  const uint64_t mask = options.mask ? options.mask : (FAN_OPEN | FAN_OPEN_EXEC);
  std::vector<std::string> roots;
  std::vector<uint64_t> marked;
  DirResolver dirs;
  for (const std::string& root : tier_roots) {
    char real[PATH_MAX];
    if (::realpath(root.c_str(), real) == nullptr) return LastErrnoStatus("realpath(tier root)", root);
    roots.emplace_back(real);
    absl::StatusOr<uint64_t> fsid = FilesystemId(real);
    if (!fsid.ok()) return fsid.status();
    if (std::find(marked.begin(), marked.end(), *fsid) == marked.end()) {  // one mark per sb
      if (absl::Status s = group->MarkFilesystem(real, mask); !s.ok()) return s;
      marked.push_back(*fsid);
    }
    if (absl::Status s = dirs.AddFilesystem(real); !s.ok()) return s;
    // Opens through the tier's own mount are not a container's: the kernel
    // drops them. Best effort: without it they are only dropped later.
    if (absl::Status s = group->IgnoreMount(real, mask); !s.ok()) {
      spdlog::warn("msg=\"tracer: host opens of a tier are not ignored by the kernel\" tier={} error={}",
                   Q(root), Q(s.message()));
    }
  }
  std::optional<ProcessEvents> forks;
  if (absl::StatusOr<ProcessEvents> f = ProcessEvents::Open(); f.ok()) {
    forks.emplace(*std::move(f));
  } else {
    spdlog::warn("msg=\"tracer: process events unavailable; opens by a process gone before its cgroup "
                 "is read are tied by the layer alone (two images sharing it: traces incomplete)\" error={}",
                 Q(f.status().message()));
  }
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return LastErrnoStatus("eventfd");
  const bool following_forks = forks.has_value();
  std::unique_ptr<Tracer> t(new Tracer(*std::move(group), std::move(forks), options, sink, tier_roots,
                                       std::move(roots), std::move(dirs)));
  t->wake_.Reset(efd);
  t->loop_ = std::thread([p = t.get()] { p->Loop(); });
  t->finisher_ = std::thread([p = t.get()] { p->FinishLoop(); });
  spdlog::info("msg=\"tracer started\" tiers={} filesystems={} unlimited_queue={} process_events={}",
               tier_roots.size(), marked.size(), options.unlimited_queue, following_forks);
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
  chain.upper_dir = Canonical(chain.upper_dir);
  for (LayerDir& l : chain.lowers) l.dir = Canonical(l.dir);
  absl::MutexLock l(&mu_);
  chains_[container] = chain;
  assembler_.Watch(container, std::move(chain), absl::Now());
}

std::string Tracer::Canonical(const std::string& dir) const {
  // The core names layer dirs under the tier roots it was given: swapping
  // the root's prefix is enough (no realpath per layer on the Prepare path).
  for (size_t i = 0; i < given_roots_.size() && i < tier_roots_.size(); ++i) {
    const std::string& root = given_roots_[i];
    if (dir.size() > root.size() && dir.compare(0, root.size(), root) == 0 && dir[root.size()] == '/') {
      return tier_roots_[i] + dir.substr(root.size());
    }
  }
  char real[PATH_MAX];
  return !dir.empty() && ::realpath(dir.c_str(), real) != nullptr ? std::string(real) : dir;
}

void Tracer::ContainerGone(const std::string& container) {
  absl::MutexLock l(&mu_);
  if (std::optional<Trace> t = assembler_.End(container, absl::Now())) {
    std::vector<Trace> one;
    one.push_back(*std::move(t));
    Hand(std::move(one));
  }
  chains_.erase(container);
}

TracerStats Tracer::stats() {
  absl::MutexLock l(&mu_);
  TracerStats s = stats_;
  s.read = group_.stats();
  s.assembler = assembler_.stats();
  s.dirs = dirs_.stats();
  s.by_parent = lookup_.by_parent();
  s.process_events = forks_.has_value();
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
    absl::StatusOr<bool> ready = group_.Wait(options_.tick, {wake_.get(), forks_ ? forks_->fd() : -1});
    if (!ready.ok()) {
      spdlog::warn("msg=\"tracer wait failed\" error={}", Q(ready.status().message()));
      absl::SleepFor(options_.tick);
    }
    const absl::Duration cpu0 = ThreadCpu();
    absl::MutexLock l(&mu_);
    for (int i = 0; i < 256; ++i) {  // bounded: Tick below must run too
      events.clear();
      absl::StatusOr<size_t> n = group_.Read(&events);
      if (!n.ok()) {
        spdlog::warn("msg=\"tracer read failed\" error={}", Q(n.status().message()));
        break;
      }
      const absl::Time now = absl::Now();
      DrainForks(now);  // after the read: every opener in it has forked by now
      for (FanEvent& e : events) Feed(e, now);
      if (*n == 0) break;
    }
    Hand(assembler_.Tick(absl::Now()));
    if (assembler_.open_traces() == 0) dirs_.Clear();  // nothing stale survives an idle spell
    const absl::Duration cpu = ThreadCpu() - cpu0;
    stats_.loop_cpu += cpu;
    assembler_.ChargeCpu(cpu);
  }
}

void Tracer::DrainForks(absl::Time now) {
  if (!forks_) return;
  fork_batch_.clear();
  if (absl::StatusOr<size_t> n = forks_->Drain(&fork_batch_); !n.ok()) {
    spdlog::warn("msg=\"tracer: reading process events failed\" error={}", Q(n.status().message()));
  }
  stats_.forks = forks_->stats();
  // A container's processes are forked after its Prepare: nothing to follow
  // while no trace is open.
  if (assembler_.open_traces() == 0) return;
  for (const Fork& f : fork_batch_) lookup_.OnFork(f, now);
}

void Tracer::Feed(FanEvent& e, absl::Time now) {
  if (e.overflow) {
    spdlog::warn("msg=\"fanotify queue overflow: open traces are incomplete\"");
    assembler_.Overflow();
    dirs_.Clear();
    return;
  }
  if (e.pid == own_pid_) {
    ++stats_.own;
    return;
  }
  if (assembler_.open_traces() == 0) {
    ++stats_.idle;  // nothing to trace: not even resolved
    return;
  }
  std::optional<std::string> dir = dirs_.Resolve(e.fsid, e.dir_handle);
  if (!dir) return;
  std::optional<LayerPath> where = SplitLayerPath(tier_roots_, absl::StrCat(*dir, "/", e.name));
  if (!where) {
    ++stats_.not_layer;
    return;
  }
  assembler_.Add(TraceEvent{e.pid, e.mask, std::move(where->layer_dir), std::move(where->path), now});
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
    FillSizes(SizeInDir, &item.first);
    const absl::Duration cpu = ThreadCpu() - cpu0;
    item.first.cpu += cpu;
    {
      absl::MutexLock l(&mu_);
      stats_.finisher_cpu += cpu;
      ++stats_.traces;
    }
    const Trace& t = item.first;
    spdlog::info("msg=\"trace done\" container={} files={} events={} end={} complete={} start={} "
                 "duration_ms={} dropped_upper={} dropped_unresolved={} cpu_us={}",
                 Q(t.container), t.files.size(), t.events, TraceEndName(t.end_reason), t.complete,
                 absl::FormatTime(absl::RFC3339_full, t.start, absl::UTCTimeZone()),
                 absl::ToInt64Milliseconds(t.end - t.start), t.dropped_upper, t.dropped_unresolved,
                 absl::ToInt64Microseconds(t.cpu));
    if (sink_) sink_->OnTrace(item.first, item.second);
  }
}

}  // namespace ndocker::hbcsa
