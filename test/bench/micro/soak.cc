// ndocker-soak-bench: a soak of a proxy snapshotter's Snapshots API, straight
// to its unix socket (no containerd), at a fixed request rate:
//
//   --readers (200) threads call List (--list-percent of their calls, no
//   filter) and Stat (a random snapshot of a fixed set) at --rate minus
//   --churn-rate RPC/s in all; --churners threads run Prepare -> Commit ->
//   Remove cycles at --churn-rate RPC/s (each Prepare writes --write-bytes
//   into the new snapshot's dir when it can, as an unpack would); one thread
//   calls Cleanup every --cleanup-every seconds.
//
// The schedule is open-loop (call n of a group is due at start + n/rate), so
// a slow daemon shows as a lower achieved rate, not as a slower schedule. It
// runs for --duration seconds (at most an hour), then removes what it made,
// calls Cleanup and checks that none of its snapshots is listed.
// Every --sample-every seconds it reads the daemon's fd count
// (/proc/<pid>/fd), VmRSS and thread count (/proc/<pid>/status); the pid comes from the
// socket (SO_PEERCRED) unless --pid says.
//
// Prints per RPC count, errors, p50/p99/max (microseconds, call time), errors
// per gRPC code, the samples, and fd/RSS first/last/max; --csv writes the
// per-RPC rows. Exit status: 0, 3 when any call failed or something was
// left, 2 on a setup failure.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace pb = containerd::services::snapshots::v1;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct Options {
  std::string socket;
  std::string snapshotter = "ndocker";
  int duration_s = 120;
  int rate = 1000;
  int churn_rate = 100;
  int readers = 200;
  int churners = 4;
  int list_percent = 10;
  int stat_set = 100;
  int write_bytes = 4096;
  int cleanup_every_s = 10;
  int sample_every_s = 5;
  int timeout_s = 30;
  int channels = 1;
  int pid = 0;
  std::string prefix;
  std::string csv;
};

// Latencies and errors of one RPC kind, shared by its callers.
struct OpStats {
  std::mutex mu;
  std::vector<float> us;  // successful and failed calls alike
  std::map<std::string, long> errors;  // code name -> count
  std::map<std::string, std::string> first_error;  // code name -> message
};

std::string CodeName(grpc::StatusCode c) {
  static const char* names[] = {"OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                                "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i < 17 ? names[i] : "CODE_" + std::to_string(i);
}

// Open-loop pacing of one group of callers: call n is due at start + n/rate.
class Pacer {
 public:
  Pacer(Clock::time_point start, Clock::time_point end, double rate) : start_(start), end_(end), rate_(rate) {}
  // Waits for the next slot; false when the run is over.
  bool Next() {
    if (rate_ <= 0) return false;
    const long n = next_.fetch_add(1);
    const auto due = start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(n / rate_));
    if (due >= end_ || g_stop) return false;
    std::this_thread::sleep_until(due);
    return !g_stop;
  }

 private:
  Clock::time_point start_, end_;
  double rate_;
  std::atomic<long> next_{0};
};

struct Sample {
  double t_s;
  long fds;
  long rss_kib;
  long threads;
};

long CountFds(int pid) {
  std::error_code ec;
  long n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

// A numeric field of /proc/<pid>/status ("VmRSS:" in KiB, "Threads:").
long StatusField(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}
Sample TakeSample(int pid, double t) {
  return Sample{t, CountFds(pid), StatusField(pid, "VmRSS:"), StatusField(pid, "Threads:")};
}

// The pid of the process serving a unix socket.
int PeerPid(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    ::close(fd);
    return 0;
  }
  path.copy(addr.sun_path, path.size());
  int pid = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
  }
  ::close(fd);
  return pid;
}

class Soak {
 public:
  explicit Soak(Options o) : o_(std::move(o)) {}
  int Run();

 private:
  pb::Snapshots::Stub& Stub(size_t i) { return *stubs_[i % stubs_.size()]; }

  void Deadline(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o_.timeout_s));
  }

  // Times fn, records it under op; returns its status.
  template <class F>
  grpc::Status Timed(const std::string& op, F&& fn) {
    const auto t0 = Clock::now();
    grpc::Status st = fn();
    const float us = std::chrono::duration<float, std::micro>(Clock::now() - t0).count();
    OpStats& s = *stats_.at(op);
    std::lock_guard<std::mutex> lock(s.mu);
    s.us.push_back(us);
    if (!st.ok()) {
      const std::string code = CodeName(st.error_code());
      if (s.errors[code]++ == 0) s.first_error[code] = st.error_message();
    }
    return st;
  }

  grpc::Status Prepare(size_t ch, const std::string& key, const std::string& parent, pb::PrepareSnapshotResponse* out) {
    pb::PrepareSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_key(key);
    req.set_parent(parent);
    return Timed("Prepare", [&] {
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(ch).Prepare(&ctx, req, out);
    });
  }
  grpc::Status Commit(size_t ch, const std::string& name, const std::string& key) {
    pb::CommitSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_name(name);
    req.set_key(key);
    google::protobuf::Empty resp;
    return Timed("Commit", [&] {
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(ch).Commit(&ctx, req, &resp);
    });
  }
  grpc::Status Remove(size_t ch, const std::string& key, const std::string& op = "Remove") {
    pb::RemoveSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_key(key);
    google::protobuf::Empty resp;
    return Timed(op, [&] {
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(ch).Remove(&ctx, req, &resp);
    });
  }
  grpc::Status Stat(size_t ch, const std::string& key) {
    pb::StatSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_key(key);
    pb::StatSnapshotResponse resp;
    return Timed("Stat", [&] {
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(ch).Stat(&ctx, req, &resp);
    });
  }
  // Whole stream; counts the items whose name has our prefix.
  grpc::Status List(size_t ch, long* ours, const std::string& op = "List") {
    pb::ListSnapshotsRequest req;
    req.set_snapshotter(o_.snapshotter);
    long mine = 0;
    grpc::Status st = Timed(op, [&] {
      grpc::ClientContext ctx;
      Deadline(ctx);
      auto reader = Stub(ch).List(&ctx, req);
      pb::ListSnapshotsResponse resp;
      while (reader->Read(&resp)) {
        for (const auto& info : resp.info()) {
          if (info.name().rfind(o_.prefix, 0) == 0) ++mine;
        }
      }
      return reader->Finish();
    });
    if (ours != nullptr) *ours = mine;
    return st;
  }
  grpc::Status Cleanup(size_t ch) {
    pb::CleanupRequest req;
    req.set_snapshotter(o_.snapshotter);
    google::protobuf::Empty resp;
    return Timed("Cleanup", [&] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(std::max(o_.timeout_s, 300)));
      return Stub(ch).Cleanup(&ctx, req, &resp);
    });
  }

  // Writes --write-bytes into the dir a Prepare handed out (bind source or
  // upperdir), as an unpack would; silently skipped when not writable.
  void WriteInto(const pb::PrepareSnapshotResponse& resp, const std::string& name) {
    if (o_.write_bytes <= 0 || resp.mounts_size() != 1) return;
    const auto& m = resp.mounts(0);
    std::string dir;
    if (m.type() == "bind") dir = m.source();
    for (const std::string& opt : m.options()) {
      if (opt.rfind("upperdir=", 0) == 0) dir = opt.substr(9);
    }
    if (dir.empty()) return;
    std::ofstream out(dir + "/" + name, std::ios::binary);
    if (!out) return;
    std::string data(static_cast<size_t>(o_.write_bytes), 'x');
    out << data;
    writes_ += out.good() ? 1 : 0;
  }

  void Reader(size_t i, Pacer& pacer) {
    std::mt19937 rng(static_cast<unsigned>(i) * 7919u + 1u);
    std::uniform_int_distribution<int> pct(0, 99), pick(0, o_.stat_set - 1);
    while (pacer.Next()) {
      if (pct(rng) < o_.list_percent) {
        (void)List(i, nullptr);
      } else {
        (void)Stat(i, StatKey(pick(rng)));
      }
    }
  }

  void Churner(size_t i, Pacer& pacer) {
    for (long n = 0;; ++n) {
      const std::string id = std::to_string(i) + "-" + std::to_string(n);
      const std::string key = o_.prefix + "churn-active/" + id, name = o_.prefix + "churn/" + id;
      if (!pacer.Next()) return;
      pb::PrepareSnapshotResponse resp;
      if (!Prepare(i, key, base_, &resp).ok()) continue;
      Track(key, true);
      WriteInto(resp, "f-" + id);
      if (!pacer.Next()) return;
      if (Commit(i, name, key).ok()) {
        Track(key, false);
        Track(name, true);
      } else {
        continue;
      }
      if (!pacer.Next()) return;
      if (Remove(i, name).ok()) Track(name, false);
    }
  }

  void Track(const std::string& key, bool live) {
    std::lock_guard<std::mutex> lock(live_mu_);
    if (live) live_.push_back(key);
    else live_.erase(std::remove(live_.begin(), live_.end(), key), live_.end());
  }

  std::string StatKey(int i) const {
    std::ostringstream k;
    k << o_.prefix << "fixed/" << std::setw(4) << std::setfill('0') << i;
    return k.str();
  }

  void Sampler(Clock::time_point start, Clock::time_point end) {
    while (true) {
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      Sample s = TakeSample(pid_, t);
      {
        std::lock_guard<std::mutex> lock(samples_mu_);
        samples_.push_back(s);
      }
      std::cerr << "[" << std::fixed << std::setprecision(0) << t << "s] daemon fds " << s.fds << ", VmRSS "
                << s.rss_kib << " KiB, threads " << s.threads << ", calls " << Calls() << std::endl;
      std::unique_lock<std::mutex> lock(wake_mu_);
      const auto next = Clock::now() + std::chrono::seconds(o_.sample_every_s);
      if (wake_.wait_until(lock, std::min(next, end), [&] { return done_ || g_stop.load(); })) return;
      if (Clock::now() >= end) {
        // One last sample at the end of the load.
        lock.unlock();
        const double te = std::chrono::duration<double>(Clock::now() - start).count();
        std::lock_guard<std::mutex> l2(samples_mu_);
        samples_.push_back(TakeSample(pid_, te));
        return;
      }
    }
  }

  void Cleaner(Clock::time_point end) {
    while (true) {
      std::unique_lock<std::mutex> lock(wake_mu_);
      const auto next = Clock::now() + std::chrono::seconds(o_.cleanup_every_s);
      if (next >= end) return;
      if (wake_.wait_until(lock, next, [&] { return done_ || g_stop.load(); })) return;
      lock.unlock();
      (void)Cleanup(0);
    }
  }

  long Calls() {
    long n = 0;
    for (auto& [op, s] : stats_) {
      std::lock_guard<std::mutex> lock(s->mu);
      n += static_cast<long>(s->us.size());
    }
    return n;
  }

  bool Setup();
  void Teardown();
  int Report(double load_seconds);

  Options o_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pb::Snapshots::Stub>> stubs_;
  std::map<std::string, std::unique_ptr<OpStats>> stats_;
  std::string base_;
  int pid_ = 0;
  std::mutex live_mu_;
  std::vector<std::string> live_;  // snapshots this run made and has not removed, oldest first
  std::mutex samples_mu_;
  std::vector<Sample> samples_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool done_ = false;
  std::atomic<long> writes_{0};
  long leftovers_ = 0;
  std::vector<std::string> setup_errors_;
};

bool Soak::Setup() {
  for (const char* op : {"List", "Stat", "Prepare", "Commit", "Remove", "Cleanup", "setup", "teardown"}) {
    stats_[op] = std::make_unique<OpStats>();
  }
  base_ = o_.prefix + "base";
  auto check = [&](const grpc::Status& st, const std::string& what) {
    if (!st.ok()) setup_errors_.push_back(what + ": " + CodeName(st.error_code()) + ": " + st.error_message());
    return st.ok();
  };
  // setup/teardown calls are recorded apart from the load's.
  auto call = [&](const std::string& what, auto&& fn) { return check(Timed("setup", fn), what); };
  pb::PrepareSnapshotResponse resp;
  bool ok = call("Prepare " + base_, [&] {
    pb::PrepareSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_key(base_ + "-active");
    grpc::ClientContext ctx;
    Deadline(ctx);
    return Stub(0).Prepare(&ctx, req, &resp);
  });
  if (ok) Track(base_ + "-active", true);
  ok = ok && call("Commit " + base_, [&] {
    pb::CommitSnapshotRequest req;
    req.set_snapshotter(o_.snapshotter);
    req.set_name(base_);
    req.set_key(base_ + "-active");
    google::protobuf::Empty e;
    grpc::ClientContext ctx;
    Deadline(ctx);
    return Stub(0).Commit(&ctx, req, &e);
  });
  if (!ok) return false;
  Track(base_ + "-active", false);
  Track(base_, true);
  // The Stat set: committed snapshots on the base (List sees them too).
  for (int i = 0; i < o_.stat_set && ok; ++i) {
    const std::string name = StatKey(i), key = name + "-active";
    ok = call("Prepare " + key, [&] {
      pb::PrepareSnapshotRequest req;
      req.set_snapshotter(o_.snapshotter);
      req.set_key(key);
      req.set_parent(base_);
      pb::PrepareSnapshotResponse r;
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(0).Prepare(&ctx, req, &r);
    });
    if (!ok) break;
    Track(key, true);
    ok = call("Commit " + name, [&] {
      pb::CommitSnapshotRequest req;
      req.set_snapshotter(o_.snapshotter);
      req.set_name(name);
      req.set_key(key);
      google::protobuf::Empty e;
      grpc::ClientContext ctx;
      Deadline(ctx);
      return Stub(0).Commit(&ctx, req, &e);
    });
    if (ok) {
      Track(key, false);
      Track(name, true);
    }
  }
  return ok;
}

// Removes what the run made (children first: newest first), Cleanup, and
// checks that nothing with our prefix is listed.
void Soak::Teardown() {
  std::vector<std::string> live;
  {
    std::lock_guard<std::mutex> lock(live_mu_);
    live = live_;
  }
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    if (!Remove(0, *it, "teardown").ok()) std::cerr << "teardown: Remove " << *it << " failed\n";
  }
  (void)Timed("teardown", [&] {
    pb::CleanupRequest req;
    req.set_snapshotter(o_.snapshotter);
    google::protobuf::Empty resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(std::max(o_.timeout_s, 300)));
    return Stub(0).Cleanup(&ctx, req, &resp);
  });
  long ours = 0;
  if (List(0, &ours, "teardown").ok() && ours != 0) {
    std::cerr << "warning: " << ours << " snapshots with prefix " << o_.prefix << " still listed\n";
    leftovers_ = ours;
  }
}

struct Pct {
  double p50 = 0, p99 = 0, max = 0;
};
Pct Percentiles(std::vector<float> v) {
  Pct p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return static_cast<double>(v[std::clamp<size_t>(rank, 1, v.size()) - 1]);
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = v.back();
  return p;
}

int Soak::Report(double load_seconds) {
  std::ostringstream out, csv;
  long calls = 0, errors = 0;
  std::map<std::string, long> by_code;
  csv << "rpc,calls,errors,p50_us,p99_us,max_us\n";
  out << "\n" << std::left << std::setw(10) << "rpc" << std::right << std::setw(10) << "calls" << std::setw(8)
      << "errors" << std::setw(12) << "p50 us" << std::setw(12) << "p99 us" << std::setw(12) << "max us" << "\n";
  for (const char* op : {"List", "Stat", "Prepare", "Commit", "Remove", "Cleanup", "setup", "teardown"}) {
    OpStats& s = *stats_.at(op);
    std::lock_guard<std::mutex> lock(s.mu);
    long errs = 0;
    for (const auto& [code, n] : s.errors) {
      errs += n;
      by_code[code] += n;
    }
    const bool load = std::string(op) != "setup" && std::string(op) != "teardown";
    if (load) {
      calls += static_cast<long>(s.us.size());
    }
    errors += errs;
    if (s.us.empty()) continue;
    Pct p = Percentiles(s.us);
    out << std::left << std::setw(10) << op << std::right << std::setw(10) << s.us.size() << std::setw(8) << errs
        << std::fixed << std::setprecision(0) << std::setw(12) << p.p50 << std::setw(12) << p.p99 << std::setw(12)
        << p.max << "\n";
    csv << op << "," << s.us.size() << "," << errs << "," << std::fixed << std::setprecision(1) << p.p50 << ","
        << p.p99 << "," << p.max << "\n";
    for (const auto& [code, msg] : s.first_error) out << "    first " << code << ": " << msg << "\n";
  }
  out << "\nload: " << calls << " calls in " << std::fixed << std::setprecision(1) << load_seconds << " s = "
      << std::setprecision(1) << (load_seconds > 0 ? static_cast<double>(calls) / load_seconds : 0.0)
      << " RPC/s (target " << o_.rate << "; " << o_.readers << " List/Stat callers, " << o_.churners
      << " churners at " << o_.churn_rate << " RPC/s, Cleanup every " << o_.cleanup_every_s << " s; "
      << writes_.load() << " snapshot writes of " << o_.write_bytes << " B)\n";
  out << "errors: " << errors;
  if (!by_code.empty()) {
    out << " (";
    bool first = true;
    for (const auto& [code, n] : by_code) {
      out << (first ? "" : ", ") << code << " " << n;
      first = false;
    }
    out << ")";
  }
  out << "\n";
  std::lock_guard<std::mutex> lock(samples_mu_);
  if (!samples_.empty()) {
    long fd_max = 0, rss_max = 0, threads_max = 0;
    out << "daemon pid " << pid_ << " samples (t s: fds, VmRSS KiB, threads):";
    for (const Sample& s : samples_) {
      fd_max = std::max(fd_max, s.fds);
      rss_max = std::max(rss_max, s.rss_kib);
      threads_max = std::max(threads_max, s.threads);
      out << " " << std::setprecision(0) << s.t_s << ": " << s.fds << ", " << s.rss_kib << ", " << s.threads
          << ";";
    }
    out << "\nfds: first " << samples_.front().fds << ", last " << samples_.back().fds << ", max " << fd_max
        << "\nVmRSS KiB: first " << samples_.front().rss_kib << ", last " << samples_.back().rss_kib << ", max "
        << rss_max << "\nthreads: first " << samples_.front().threads << ", last " << samples_.back().threads
        << ", max " << threads_max << "\n";
  }
  if (leftovers_ != 0) out << "left over: " << leftovers_ << " of this run's snapshots still listed\n";
  std::cout << out.str() << std::flush;
  if (!o_.csv.empty()) {
    std::ofstream f(o_.csv);
    f << csv.str();
  }
  return errors == 0 && leftovers_ == 0 ? 0 : 3;
}

int Soak::Run() {
  if (o_.prefix.empty()) o_.prefix = "soak-" + std::to_string(::getpid()) + "/";
  pid_ = o_.pid > 0 ? o_.pid : PeerPid(o_.socket);
  if (pid_ <= 0) {
    std::cerr << "cannot find the daemon's pid from " << o_.socket << " (give --pid)\n";
    return 2;
  }
  for (int i = 0; i < o_.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    auto ch = grpc::CreateCustomChannel("unix:" + o_.socket, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::cerr << "cannot connect to " << o_.socket << "\n";
      return 2;
    }
    channels_.push_back(ch);
    stubs_.push_back(pb::Snapshots::NewStub(ch));
  }
  std::cerr << "daemon pid " << pid_ << ", " << o_.socket << "; setup: base + " << o_.stat_set
            << " committed snapshots" << std::endl;
  if (!Setup()) {
    for (const auto& e : setup_errors_) std::cerr << "setup: " << e << "\n";
    Teardown();
    return 2;
  }
  std::cerr << "load: " << o_.duration_s << " s at " << o_.rate << " RPC/s" << std::endl;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(o_.duration_s);
  Pacer read_pacer(start, end, o_.rate - o_.churn_rate);
  Pacer churn_pacer(start, end, o_.churn_rate);
  // Threads in pre-sized lists (GCC 12 warns falsely about a growing one).
  std::vector<std::thread> threads(2);
  threads[0] = std::thread([&] { Sampler(start, end); });
  threads[1] = std::thread([&] { Cleaner(end); });
  std::vector<std::thread> load;
  load.reserve(static_cast<size_t>(o_.readers + o_.churners));
  for (int i = 0; i < o_.readers; ++i) load.emplace_back([&, i] { Reader(static_cast<size_t>(i), read_pacer); });
  for (int i = 0; i < o_.churners; ++i) load.emplace_back([&, i] { Churner(static_cast<size_t>(i), churn_pacer); });
  for (auto& t : load) t.join();
  const double load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    done_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads) t.join();
  std::cerr << "teardown: removing " << live_.size() << " snapshots, Cleanup" << std::endl;
  Teardown();
  return Report(load_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ndocker-soak-bench: fixed-rate soak of a snapshotter's socket (List/Stat callers + churn)"};
  app.add_option("--socket", o.socket, "the snapshotter's unix socket (absolute path)")->required();
  app.add_option("--snapshotter", o.snapshotter, "request field snapshotter")->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds of load")->capture_default_str()->check(CLI::Range(1, 3600));
  app.add_option("--rate", o.rate, "target RPC/s in all")->capture_default_str()->check(CLI::Range(1, 20000));
  app.add_option("--churn-rate", o.churn_rate, "of which Prepare/Commit/Remove RPC/s")
      ->capture_default_str()
      ->check(CLI::Range(0, 20000));
  app.add_option("--readers", o.readers, "concurrent List/Stat callers")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--churners", o.churners, "concurrent Prepare/Commit/Remove callers")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app.add_option("--list-percent", o.list_percent, "List share of the readers' calls")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  app.add_option("--stat-set", o.stat_set, "committed snapshots made at setup for Stat")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--write-bytes", o.write_bytes, "bytes written into each churn snapshot (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--cleanup-every", o.cleanup_every_s, "seconds between Cleanup calls")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--sample-every", o.sample_every_s, "seconds between fd/RSS samples")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--timeout", o.timeout_s, "deadline of one call, seconds")->capture_default_str();
  app.add_option("--channels", o.channels, "gRPC connections")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--pid", o.pid, "daemon pid for the samples (default: the socket's peer)");
  app.add_option("--prefix", o.prefix, "key prefix (default soak-<pid>/)");
  app.add_option("--csv", o.csv, "write per-RPC rows here");
  CLI11_PARSE(app, argc, argv);
  if (o.socket.empty() || o.socket[0] != '/') {
    std::cerr << "--socket must be an absolute unix socket path\n";
    return 2;
  }
  if (o.churn_rate >= o.rate) {
    std::cerr << "--churn-rate must be below --rate\n";
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return Soak(std::move(o)).Run();
  } catch (const std::exception& e) {
    std::cerr << "ndocker-soak-bench: " << e.what() << "\n";
    return 2;
  }
}
