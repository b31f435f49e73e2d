// ndocker-hdd-emulator: a FUSE file system holding ONE file, "disk", that
// behaves like a 7200 rpm hard disk when used as the backing file of a loop
// device (`losetup --direct-io=on`). Benchmark harness only (test/bench/).
//
// Model: one actuator.
//  - Requests (FUSE reads and writes of "disk") are served one at a time. An
//    absolute CLOCK_MONOTONIC time `free_at` records when the actuator is free.
//    A request starts at max(arrival, free_at) and takes
//        service = (seek ? seek_ms : 0) + bytes / rate
//    where seek is false when the request starts "near" where the previous one
//    ended: |offset - previous_end| <= near_kib (default 64 KiB), or, if
//    --track-kib is set, in the same track-sized window. A short forward skip
//    also pays skipped_bytes / rate (the platter turns under the head).
//  - The FUSE thread that carries the request sleeps until the completion time
//    (clock_nanosleep, TIMER_ABSTIME) and then replies; nothing busy-waits.
//  - Order: FIFO by arrival, with one exception that a real disk queue (NCQ,
//    the block elevator) also makes: when the actuator becomes free, a queued
//    request that continues near the previous one goes first (unless the
//    oldest request has waited --starve-ms, like mq-deadline's expiry). If the
//    actuator is idle and the oldest request needs a seek, the decision waits
//    up to --anticipate-us for a continuing request; that wait is not charged
//    (start times are taken from arrival). Both exist because the kernel
//    hands a deep writeback queue to many FUSE worker threads, which reach
//    the actuator out of order: with --fifo (strict arrival order) a 512 MiB
//    sequential write + fsync on ext4 paid ~190 positionings (93 MB/s),
//    with near-first ~25 (120 MB/s). Random I/O is unaffected (it is never
//    near), so 4k random reads stay FIFO at any queue depth.
//  - Data lives in RAM, sparse: 1 MiB chunks allocated on first non-zero write
//    (reads of untouched ranges return zeros). Punching holes (discard) frees
//    chunks and is free of charge; zero-range is charged like a write.
//    fsync/flush are free (the data is already "on the platter").
//  - Time is charged below the file system, for every process: the loop
//    device must use direct I/O so the page cache of "disk" hides nothing (the
//    file is also opened with FOPEN_DIRECT_IO).
//
// The mount also holds "stats", a text file with the parameters and counters
// (requests, bytes, seeks, busy time, RAM used); writing anything to it resets
// the counters, except two commands:
//   "trace PATH"  start (or switch) a per-request trace to PATH (appended)
//   "trace off"   stop tracing (the file is flushed and closed)
//
// Trace (--trace FILE, $NDOCKER_HDD_TRACE, or the command above): one line
// per request as the actuator schedules it, plus '#' comment lines:
//   start_us op offset length seek wait_us service_us
// start_us = when the actuator starts it, in microseconds since the trace was
// opened (the header gives the CLOCK_REALTIME and CLOCK_MONOTONIC of that
// moment); op R (read), W (write) or Z (zero-range); seek 1 when the request
// paid a positioning; wait_us = time queued; service_us = modelled cost.
// Offsets are bytes on "disk" (= on the loop device: loop offset 0).
//
// Usage: ndocker-hdd-emulator [options] MOUNTPOINT   (runs in the foreground)
//   --size SIZE         disk size, K/M/G/T suffixes (binary)   [20G]
//   --rate-mbps N       streaming rate, MB/s (10^6 bytes/s)     [150]
//   --seek-ms N         positioning cost per non-near access     [8]
//   --near-kib N        distance treated as "no seek"            [64]
//   --track-kib N       same-track window treated as near, 0=off [0]
//   --anticipate-us N   idle-actuator wait for a continuing req. [300]
//   --starve-ms N       max wait before FIFO order is forced     [500]
//   --fifo              strict FIFO: no near-first, no anticipation
//   --threads N         max FUSE worker threads                  [64]
//   --rt-prio N         run all threads SCHED_FIFO at priority N, 0=off [0]
//   --trace FILE        per-request trace (see above); also $NDOCKER_HDD_TRACE
//                       (a disk is hardware: its timing should not depend on
//                       CPU load; the threads only copy memory and sleep)
//   -d                  FUSE debug output

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <sched.h>
#include <linux/falloc.h>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr fuse_ino_t kDiskIno = 2;
constexpr fuse_ino_t kStatsIno = 3;
constexpr uint64_t kChunk = 1ULL << 20;

struct Params {
  uint64_t size = 20ULL << 30;
  double rate_mbps = 150.0;
  double seek_ms = 8.0;
  uint64_t near_kib = 64;
  uint64_t track_kib = 0;
  uint64_t anticipate_us = 300;
  uint64_t starve_ms = 500;
  bool fifo = false;
  unsigned threads = 64;
  int rt_prio = 0;
  bool debug = false;
  std::string trace;
  std::string mountpoint;
};

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void SleepUntil(int64_t t_ns) {
  timespec ts{};
  ts.tv_sec = t_ns / 1'000'000'000;
  ts.tv_nsec = t_ns % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// ---------------------------------------------------------------- actuator

struct Request {
  uint64_t off = 0;
  uint64_t len = 0;
  int64_t arrival = 0;
  int64_t completion = -1;  // set by the actuator when scheduled
  char op = 'R';
  std::condition_variable cv;
};

struct Stats {
  uint64_t reads = 0, writes = 0, zeroes = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t seeks = 0, near_first = 0;
  int64_t busy_ns = 0, wait_ns = 0, max_wait_ns = 0;
};

class Actuator {
 public:
  explicit Actuator(const Params& p)
      : ns_per_byte_(1e3 / p.rate_mbps),  // 1 MB/s = 1 byte/us = 1e-3 byte/ns
        seek_ns_(static_cast<int64_t>(p.seek_ms * 1e6)),
        near_(p.near_kib * 1024),
        track_(p.track_kib * 1024),
        anticipate_ns_(std::min<int64_t>(static_cast<int64_t>(p.anticipate_us) * 1000, seek_ns_ / 2)),
        starve_ns_(static_cast<int64_t>(p.starve_ms) * 1'000'000),
        fifo_(p.fifo) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Actuator() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    thread_.join();
    SetTrace("");
  }

  // Blocks until the request is scheduled, runs `io` (the data copy) while the
  // "platter" is busy, then sleeps until the modelled completion.
  enum class Kind { kRead, kWrite, kZero };
  template <typename F>
  void Serve(uint64_t off, uint64_t len, Kind kind, F&& io) {
    Request r;
    r.off = off;
    r.len = len;
    r.op = kind == Kind::kRead ? 'R' : kind == Kind::kWrite ? 'W' : 'Z';
    {
      std::unique_lock lk(m_);
      r.arrival = NowNs();
      queue_.push_back(&r);
      queue_cv_.notify_one();
      r.cv.wait(lk, [&] { return r.completion >= 0; });
      switch (kind) {
        case Kind::kRead: ++stats_.reads; stats_.bytes_read += len; break;
        case Kind::kWrite: ++stats_.writes; stats_.bytes_written += len; break;
        case Kind::kZero: ++stats_.zeroes; stats_.bytes_written += len; break;
      }
    }
    io();
    SleepUntil(r.completion);
  }

  Stats GetStats() {
    std::lock_guard lk(m_);
    return stats_;
  }
  void ResetStats() {
    std::lock_guard lk(m_);
    stats_ = Stats{};
  }

  // Starts (path non-empty) or stops (empty) the per-request trace. Returns
  // false (errno set) when the file cannot be opened.
  bool SetTrace(const std::string& path) {
    std::lock_guard lk(m_);
    if (trace_) {
      std::fprintf(trace_, "# trace closed\n");
      std::fclose(trace_);
      trace_ = nullptr;
    }
    if (path.empty()) return true;
    trace_ = std::fopen(path.c_str(), "ae");
    if (!trace_) return false;
    std::setvbuf(trace_, nullptr, _IOFBF, 1 << 20);
    timespec rt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    trace_t0_ = NowNs();
    std::fprintf(trace_,
                 "# ndocker-hdd-emulator trace: realtime %lld.%09ld monotonic_ns %lld seek_ms %g near_kib %llu\n"
                 "# start_us op offset length seek wait_us service_us\n",
                 static_cast<long long>(rt.tv_sec), rt.tv_nsec, static_cast<long long>(trace_t0_),
                 static_cast<double>(seek_ns_) / 1e6, static_cast<unsigned long long>(near_ / 1024));
    return true;
  }

 private:
  bool Near(const Request& r) const {
    uint64_t dist = r.off >= last_end_ ? r.off - last_end_ : last_end_ - r.off;
    if (dist <= near_) return true;
    return track_ != 0 && r.off / track_ == last_end_ / track_;
  }

  void Run() {
    std::unique_lock lk(m_);
    for (;;) {
      queue_cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      int64_t now = NowNs();
      if (now < free_at_) {  // actuator busy: decide when it becomes free
        int64_t t = free_at_;
        lk.unlock();
        SleepUntil(t);
        lk.lock();
        continue;
      }
      // Pick: a near request first (closest to the head, then oldest), else
      // the oldest; when idle, briefly anticipate a near request.
      auto pick = queue_.begin();
      bool near = Near(**pick);
      if (!fifo_ && !near && now - queue_.front()->arrival < starve_ns_) {
        uint64_t best = UINT64_MAX;
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
          if (!Near(**it)) continue;
          uint64_t d = (*it)->off >= last_end_ ? (*it)->off - last_end_ : last_end_ - (*it)->off;
          if (d < best) {
            best = d;
            pick = it;
            near = true;
          }
        }
        if (!near && now < queue_.front()->arrival + anticipate_ns_) {
          queue_cv_.wait_until(lk, std::chrono::steady_clock::time_point(
                                       std::chrono::nanoseconds(queue_.front()->arrival + anticipate_ns_)));
          continue;
        }
        if (near) ++stats_.near_first;
      }
      Request* r = *pick;
      queue_.erase(pick);
      int64_t start = std::max(free_at_, r->arrival);
      double service = static_cast<double>(r->len) * ns_per_byte_;
      if (!near) {
        service += static_cast<double>(seek_ns_);
        ++stats_.seeks;
      } else if (r->off > last_end_) {
        service += static_cast<double>(r->off - last_end_) * ns_per_byte_;
      }
      int64_t completion = start + static_cast<int64_t>(service);
      free_at_ = completion;
      last_end_ = r->off + r->len;
      stats_.busy_ns += completion - start;
      stats_.wait_ns += start - r->arrival;
      stats_.max_wait_ns = std::max(stats_.max_wait_ns, start - r->arrival);
      if (trace_) {
        std::fprintf(trace_, "%lld %c %llu %llu %d %lld %lld\n", static_cast<long long>((start - trace_t0_) / 1000),
                     r->op, static_cast<unsigned long long>(r->off), static_cast<unsigned long long>(r->len),
                     near ? 0 : 1, static_cast<long long>((start - r->arrival) / 1000),
                     static_cast<long long>((completion - start) / 1000));
      }
      r->completion = completion;
      r->cv.notify_one();
    }
  }

  const double ns_per_byte_;
  const int64_t seek_ns_;
  const uint64_t near_, track_;
  const int64_t anticipate_ns_, starve_ns_;
  const bool fifo_;

  std::mutex m_;
  std::condition_variable queue_cv_;
  std::deque<Request*> queue_;
  int64_t free_at_ = 0;
  uint64_t last_end_ = 0;
  bool stop_ = false;
  Stats stats_;
  std::FILE* trace_ = nullptr;
  int64_t trace_t0_ = 0;
  std::thread thread_;
};

// ---------------------------------------------------------------- storage

class SparseStore {
 public:
  explicit SparseStore(uint64_t size) : size_(size), chunks_((size + kChunk - 1) / kChunk) {}
  ~SparseStore() {
    for (auto& c : chunks_) std::free(c.load());
  }

  uint64_t size() const { return size_; }
  uint64_t ram_bytes() const { return allocated_.load() * kChunk; }

  void Read(uint64_t off, char* dst, uint64_t len) {
    std::shared_lock lk(lock_);
    ForEach(off, len, [&](uint64_t ci, uint64_t co, uint64_t n, uint64_t done) {
      char* c = chunks_[ci].load(std::memory_order_acquire);
      if (c) std::memcpy(dst + done, c + co, n);
      else std::memset(dst + done, 0, n);
    });
  }

  void Write(uint64_t off, const char* src, uint64_t len) {
    std::shared_lock lk(lock_);
    ForEach(off, len, [&](uint64_t ci, uint64_t co, uint64_t n, uint64_t done) {
      char* c = chunks_[ci].load(std::memory_order_acquire);
      if (!c) {
        if (AllZero(src + done, n)) return;
        c = Alloc(ci);
      }
      std::memcpy(c + co, src + done, n);
    });
  }

  // Zeroes a range; whole chunks are freed.
  void Zero(uint64_t off, uint64_t len) {
    std::unique_lock lk(lock_);
    ForEach(off, len, [&](uint64_t ci, uint64_t co, uint64_t n, uint64_t) {
      char* c = chunks_[ci].load();
      if (!c) return;
      if (n == kChunk) {
        chunks_[ci].store(nullptr);
        std::free(c);
        allocated_.fetch_sub(1);
      } else {
        std::memset(c + co, 0, n);
      }
    });
  }

 private:
  template <typename F>
  void ForEach(uint64_t off, uint64_t len, F&& f) {
    uint64_t done = 0;
    while (done < len) {
      uint64_t pos = off + done;
      uint64_t ci = pos / kChunk, co = pos % kChunk;
      uint64_t n = std::min(len - done, kChunk - co);
      f(ci, co, n, done);
      done += n;
    }
  }
  static bool AllZero(const char* p, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i)
      if (p[i]) return false;
    return true;
  }
  char* Alloc(uint64_t ci) {
    char* fresh = static_cast<char*>(std::calloc(1, kChunk));
    if (!fresh) {
      std::fprintf(stderr, "ndocker-hdd-emulator: out of memory\n");
      std::abort();
    }
    char* expected = nullptr;
    if (chunks_[ci].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
      allocated_.fetch_add(1);
      return fresh;
    }
    std::free(fresh);
    return expected;
  }

  const uint64_t size_;
  std::vector<std::atomic<char*>> chunks_;
  std::atomic<uint64_t> allocated_{0};
  std::shared_mutex lock_;  // exclusive only to free chunks
};

// ---------------------------------------------------------------- FUSE glue

struct Emulator {
  Params params;
  SparseStore store;
  Actuator actuator;
  int64_t started = NowNs();
  explicit Emulator(const Params& p) : params(p), store(p.size), actuator(p) {}
};

Emulator* g_emu = nullptr;

struct stat Attr(fuse_ino_t ino) {
  struct stat st{};
  st.st_ino = ino;
  st.st_uid = getuid();
  st.st_gid = getgid();
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  st.st_atim = st.st_mtim = st.st_ctim = t;
  if (ino == kRootIno) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
  } else if (ino == kDiskIno) {
    st.st_mode = S_IFREG | 0600;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(g_emu->store.size());
    st.st_blocks = static_cast<blkcnt_t>(g_emu->store.ram_bytes() / 512);
    st.st_blksize = 4096;
  } else {
    st.st_mode = S_IFREG | 0644;
    st.st_nlink = 1;
    st.st_size = 0;  // generated on open; served with direct_io
  }
  return st;
}

std::string StatsText() {
  const Params& p = g_emu->params;
  Stats s = g_emu->actuator.GetStats();
  char buf[2048];
  int n = std::snprintf(
      buf, sizeof buf,
      "size_bytes %llu\nrate_mbps %g\nseek_ms %g\nnear_kib %llu\ntrack_kib %llu\n"
      "anticipate_us %llu\nstarve_ms %llu\nfifo %d\nrt_prio %d\n"
      "reads %llu\nwrites %llu\nzero_ranges %llu\nbytes_read %llu\nbytes_written %llu\n"
      "seeks %llu\nnear_first %llu\nbusy_ms %.3f\nqueue_wait_ms %.3f\nmax_queue_wait_ms %.3f\n"
      "ram_bytes %llu\nuptime_s %.3f\n",
      static_cast<unsigned long long>(p.size), p.rate_mbps, p.seek_ms,
      static_cast<unsigned long long>(p.near_kib), static_cast<unsigned long long>(p.track_kib),
      static_cast<unsigned long long>(p.anticipate_us), static_cast<unsigned long long>(p.starve_ms),
      p.fifo ? 1 : 0, p.rt_prio, static_cast<unsigned long long>(s.reads),
      static_cast<unsigned long long>(s.writes), static_cast<unsigned long long>(s.zeroes),
      static_cast<unsigned long long>(s.bytes_read), static_cast<unsigned long long>(s.bytes_written),
      static_cast<unsigned long long>(s.seeks), static_cast<unsigned long long>(s.near_first),
      static_cast<double>(s.busy_ns) / 1e6, static_cast<double>(s.wait_ns) / 1e6,
      static_cast<double>(s.max_wait_ns) / 1e6,
      static_cast<unsigned long long>(g_emu->store.ram_bytes()),
      static_cast<double>(NowNs() - g_emu->started) / 1e9);
  return std::string(buf, static_cast<size_t>(std::max(n, 0)));
}

void OpInit(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  conn->max_write = 1U << 20;
  conn->max_background = 128;
  conn->congestion_threshold = 96;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != kRootIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  std::string_view n(name);
  if (n == "disk") e.ino = kDiskIno;
  else if (n == "stats") e.ino = kStatsIno;
  else {
    fuse_reply_err(req, ENOENT);
    return;
  }
  e.attr = Attr(e.ino);
  e.attr_timeout = 1.0;
  e.entry_timeout = 3600.0;
  fuse_reply_entry(req, &e);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != kRootIno && ino != kDiskIno && ino != kStatsIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st = Attr(ino);
  fuse_reply_attr(req, &st, 1.0);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  if ((to_set & FUSE_SET_ATTR_SIZE) && !(ino == kStatsIno) &&
      static_cast<uint64_t>(attr->st_size) != g_emu->store.size()) {
    fuse_reply_err(req, EPERM);  // the disk has a fixed size
    return;
  }
  OpGetattr(req, ino, nullptr);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  struct Ent {
    const char* name;
    fuse_ino_t ino;
    mode_t mode;
  };
  const Ent ents[] = {{".", kRootIno, S_IFDIR}, {"..", kRootIno, S_IFDIR},
                      {"disk", kDiskIno, S_IFREG}, {"stats", kStatsIno, S_IFREG}};
  std::vector<char> buf(size);
  size_t used = 0;
  for (off_t i = off; i < static_cast<off_t>(std::size(ents)); ++i) {
    struct stat st{};
    st.st_ino = ents[i].ino;
    st.st_mode = ents[i].mode;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, ents[i].name, &st, i + 1);
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == kDiskIno) {
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
  } else if (ino == kStatsIno) {
    if ((fi->flags & O_ACCMODE) != O_WRONLY) fi->fh = reinterpret_cast<uint64_t>(new std::string(StatsText()));
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
  } else {
    fuse_reply_err(req, EISDIR);
  }
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == kStatsIno) delete reinterpret_cast<std::string*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (ino == kStatsIno) {
    auto* s = reinterpret_cast<std::string*>(fi->fh);
    if (!s || static_cast<size_t>(off) >= s->size()) {
      fuse_reply_buf(req, nullptr, 0);
      return;
    }
    fuse_reply_buf(req, s->data() + off, std::min(size, s->size() - static_cast<size_t>(off)));
    return;
  }
  uint64_t total = g_emu->store.size();
  if (off < 0 || static_cast<uint64_t>(off) >= total) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  uint64_t len = std::min<uint64_t>(size, total - static_cast<uint64_t>(off));
  thread_local std::vector<char> buf;
  if (buf.size() < len) buf.resize(len);
  g_emu->actuator.Serve(static_cast<uint64_t>(off), len, Actuator::Kind::kRead,
                        [&] { g_emu->store.Read(static_cast<uint64_t>(off), buf.data(), len); });
  fuse_reply_buf(req, buf.data(), len);
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info*) {
  if (ino == kStatsIno) {
    std::string_view cmd(data, size);
    while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == ' ')) cmd.remove_suffix(1);
    if (cmd.starts_with("trace ")) {
      std::string path(cmd.substr(6));
      if (path == "off") path.clear();
      errno = 0;
      if (!g_emu->actuator.SetTrace(path)) {
        fuse_reply_err(req, errno ? errno : EIO);
        return;
      }
    } else {
      g_emu->actuator.ResetStats();
    }
    fuse_reply_write(req, size);
    return;
  }
  uint64_t total = g_emu->store.size();
  if (off < 0 || static_cast<uint64_t>(off) >= total) {
    fuse_reply_err(req, ENOSPC);
    return;
  }
  uint64_t len = std::min<uint64_t>(size, total - static_cast<uint64_t>(off));
  g_emu->actuator.Serve(static_cast<uint64_t>(off), len, Actuator::Kind::kWrite,
                        [&] { g_emu->store.Write(static_cast<uint64_t>(off), data, len); });
  fuse_reply_write(req, len);
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length, fuse_file_info*) {
  uint64_t total = g_emu->store.size();
  if (ino != kDiskIno || off < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (!(mode & FALLOC_FL_KEEP_SIZE) && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) == 0) {
    // Plain allocation inside the fixed size is a no-op.
    if (static_cast<uint64_t>(off) + static_cast<uint64_t>(length) > total) fuse_reply_err(req, EFBIG);
    else fuse_reply_err(req, 0);
    return;
  }
  uint64_t o = static_cast<uint64_t>(off);
  if (o >= total) {
    fuse_reply_err(req, 0);
    return;
  }
  uint64_t len = std::min<uint64_t>(static_cast<uint64_t>(length), total - o);
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    g_emu->store.Zero(o, len);  // discard: free of charge
  } else if (mode & FALLOC_FL_ZERO_RANGE) {
    g_emu->actuator.Serve(o, len, Actuator::Kind::kZero, [&] { g_emu->store.Zero(o, len); });
  } else if (mode != FALLOC_FL_KEEP_SIZE) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  fuse_reply_err(req, 0);
}

void OpOk(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv{};
  sv.f_bsize = sv.f_frsize = 4096;
  sv.f_blocks = g_emu->store.size() / 4096;
  sv.f_bfree = sv.f_bavail = 0;
  sv.f_files = 3;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
}

// ---------------------------------------------------------------- options

bool ParseSize(std::string_view s, uint64_t* out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return false;
  std::string_view suf(p, static_cast<size_t>(s.data() + s.size() - p));
  if (!suf.empty() && (suf.back() == 'B' || suf.back() == 'b')) suf.remove_suffix(1);
  if (!suf.empty() && (suf.back() == 'i')) suf.remove_suffix(1);
  int shift = 0;
  if (suf.empty()) shift = 0;
  else if (suf == "K" || suf == "k") shift = 10;
  else if (suf == "M" || suf == "m") shift = 20;
  else if (suf == "G" || suf == "g") shift = 30;
  else if (suf == "T" || suf == "t") shift = 40;
  else return false;
  *out = v << shift;
  return *out > 0;
}

bool ParseDouble(const char* s, double* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno || end == s || *end) return false;
  *out = v;
  return true;
}

bool ParseUint(const char* s, uint64_t* out) {
  std::string_view v(s);
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && p == v.data() + v.size();
}

[[noreturn]] void Usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: ndocker-hdd-emulator [--size 20G] [--rate-mbps 150] [--seek-ms 8]\n"
               "         [--near-kib 64] [--track-kib 0] [--anticipate-us 300] [--starve-ms 500]\n"
               "         [--fifo] [--threads 64] [--rt-prio 0] [--trace FILE] [-d] MOUNTPOINT\n"
               "Serves MOUNTPOINT/disk (an emulated 7200 rpm disk, data in RAM) and\n"
               "MOUNTPOINT/stats; runs in the foreground until unmounted or signalled.\n");
  std::exit(code);
}

Params ParseArgs(int argc, char** argv) {
  Params p;
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ndocker-hdd-emulator: %s needs a value\n", argv[i]);
        Usage(2);
      }
      return argv[++i];
    };
    bool ok = true;
    if (a == "-h" || a == "--help") Usage(0);
    else if (a == "-d") p.debug = true;
    else if (a == "-f") {  // always foreground; accepted for familiarity
    } else if (a == "--fifo") p.fifo = true;
    else if (a == "--trace") p.trace = val();
    else if (a == "--size") ok = ParseSize(val(), &p.size);
    else if (a == "--rate-mbps") ok = ParseDouble(val(), &p.rate_mbps) && p.rate_mbps > 0;
    else if (a == "--seek-ms") ok = ParseDouble(val(), &p.seek_ms) && p.seek_ms >= 0;
    else if (a == "--near-kib") ok = ParseUint(val(), &p.near_kib);
    else if (a == "--track-kib") ok = ParseUint(val(), &p.track_kib);
    else if (a == "--anticipate-us") ok = ParseUint(val(), &p.anticipate_us);
    else if (a == "--starve-ms") ok = ParseUint(val(), &p.starve_ms);
    else if (a == "--threads") {
      uint64_t t = 0;
      ok = ParseUint(val(), &t) && t >= 1 && t <= 1024;
      p.threads = static_cast<unsigned>(t);
    } else if (a == "--rt-prio") {
      uint64_t v = 0;
      ok = ParseUint(val(), &v) && v <= 99;
      p.rt_prio = static_cast<int>(v);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "ndocker-hdd-emulator: unknown option %s\n", argv[i]);
      Usage(2);
    } else if (p.mountpoint.empty()) p.mountpoint = a;
    else Usage(2);
    if (!ok) {
      std::fprintf(stderr, "ndocker-hdd-emulator: bad value for %s\n", argv[i - 1]);
      Usage(2);
    }
  }
  if (p.mountpoint.empty()) Usage(2);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  Params params = ParseArgs(argc, argv);
  if (params.rt_prio > 0) {  // before any thread exists: all inherit it
    sched_param sp{};
    sp.sched_priority = params.rt_prio;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      std::fprintf(stderr, "ndocker-hdd-emulator: warning: SCHED_FIFO %d: %s\n", params.rt_prio, std::strerror(errno));
  }
  if (params.trace.empty()) {
    if (const char* t = std::getenv("NDOCKER_HDD_TRACE"); t && *t) params.trace = t;
  }
  Emulator emu(params);
  g_emu = &emu;
  if (!params.trace.empty() && !emu.actuator.SetTrace(params.trace)) {
    std::fprintf(stderr, "ndocker-hdd-emulator: cannot open trace %s: %s\n", params.trace.c_str(), std::strerror(errno));
    return 1;
  }

  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readdir = OpReaddir;
  ops.open = OpOpen;
  ops.release = OpRelease;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpOk;
  ops.fsync = OpFsync;
  ops.fallocate = OpFallocate;
  ops.statfs = OpStatfs;

  std::vector<std::string> args = {argv[0], "-o", "fsname=ndocker-hdd,subtype=ndocker-hdd,default_permissions"};
  if (params.debug) args.push_back("-d");
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());

  fuse_session* se = fuse_session_new(&fargs, &ops, sizeof ops, nullptr);
  if (!se) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, params.mountpoint.c_str()) == 0) {
      std::fprintf(stderr,
                   "ndocker-hdd-emulator: %s/disk: %llu bytes, %g MB/s, %g ms positioning, near %llu KiB%s\n",
                   params.mountpoint.c_str(), static_cast<unsigned long long>(params.size), params.rate_mbps,
                   params.seek_ms, static_cast<unsigned long long>(params.near_kib),
                   params.fifo ? ", strict FIFO" : "");
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, params.threads);
      fuse_loop_cfg_set_idle_threads(cfg, std::min(params.threads, 32U));
      rc = fuse_session_loop_mt(se, cfg);
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&fargs);
  return rc == 0 ? 0 : 1;
}
