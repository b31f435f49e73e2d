// ndocker-snapshot-bench: latency micro-benchmark of the containerd Snapshots
// API (containerd.services.snapshots.v1.Snapshots), as a client sees it.
//
// A target is one of
//   containerd:<containerd socket>:<snapshotter>
//       through containerd: request field snapshotter=<snapshotter>, gRPC
//       metadata containerd-namespace=<ns> and containerd-lease=<a lease this
//       tool creates> (what ctr, CRI and the unpacker do: without a lease or
//       a gc.root label containerd's GC may delete the snapshots at any time).
//       The same path for the in-tree `overlayfs` and the proxy `ndocker`.
//   direct:<snapshotter socket>[:<name>]
//       straight to a proxy snapshotter (no containerd); request field
//       snapshotter=<name> (default ndocker), no metadata (containerd sends
//       none to proxies).
// Several --target options are measured in one run, interleaved call by call
// (the order rotates every iteration), so that a noisy machine hurts all of
// them alike.
//
// Phases (every target does each phase before the next phase starts):
//   idle     connect, create the lease           -> --hook idle
//   base     Prepare+Commit of the common parent (not timed)
//   warmup   --warmup cycles, not recorded
//   cycle    --iterations x Prepare(key, parent=base) -> Mounts -> Commit -> Stat,
//            then Remove of the committed snapshots       ops prepare mounts commit stat remove
//   fill     --store-size active snapshots on the base    op prepare.fill (+ first/last 1000)
//                                                -> --hook filled
//   list     --list-repeats x List (no filter)             op list@N (whole stream)
//   stat     --stat-samples x Stat of a random fill key    op stat@N
//   loaded   --loaded-iterations cycles with N snapshots in the store
//                                                          ops prepare@N mounts@N commit@N stat.committed@N remove@N
//                                                -> --hook loaded
//   cleanup  Remove of every fill snapshot (children first) and the base,
//            then containerd: Leases.Delete(sync=true) (runs the GC, which
//            does the backend List/Remove/Cleanup); direct: Cleanup
//                                                          ops remove.fill lease-delete-sync cleanup
//            (containerd's GC is global: the first Leases.Delete(sync) may
//            collect the other snapshotters' garbage too; not comparable)
//                                                -> --hook cleaned
// Between phases the tool sleeps --settle-ms (containerd's GC runs after
// removals). Whatever the tool created is removed at the end, also after a
// failed call (--keep leaves it).
//
// Output: CSV rows (target,snapshotter,op,n,p50_us,p99_us,mean_us,min_us,max_us)
// to --csv (or stdout) and a human table with ratios against --baseline on stderr.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "containerd/services/leases/v1/leases.grpc.pb.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace pb = containerd::services::snapshots::v1;
namespace lpb = containerd::services::leases::v1;
using Clock = std::chrono::steady_clock;

constexpr int kMaxMessageBytes = 16 << 20;

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted = true; }

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string Describe(const grpc::Status& st) {
  return "code " + std::to_string(static_cast<int>(st.error_code())) + ": " + st.error_message();
}

struct Options {
  std::vector<std::string> targets;
  std::string ns = "ndocker-bench";
  int iterations = 200;
  int warmup = 20;
  int store_size = 10000;
  int stat_samples = 0;  // 0 = store_size
  int list_repeats = 5;
  int loaded_iterations = 100;
  int settle_ms = 2000;
  int timeout_s = 120;
  int gc_timeout_s = 1800;
  unsigned seed = 1;
  std::string csv;
  std::string hook;
  std::string baseline;
  std::string prefix;
  bool keep = false;
};

struct Target {
  std::string spec;
  bool via_containerd = false;
  std::string address;
  std::string snapshotter;
  std::string label;  // "containerd/overlayfs", "direct/ndocker"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Snapshots::Stub> snaps;
  std::unique_ptr<lpb::Leases::Stub> leases;
  std::string lease;
  // Snapshots this tool created and has not removed, in creation order:
  // removing from the back removes children before their parent.
  std::vector<std::string> live;
  std::map<std::string, std::vector<double>> samples;  // op -> microseconds
  std::map<std::string, long> list_items;              // op -> items of the last List
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)), rng_(o_.seed) {}

  int Run();

 private:
  // ---- calls -------------------------------------------------------------
  void Setup(grpc::ClientContext& ctx, const Target& t, int timeout_s = 0) const {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(timeout_s > 0 ? timeout_s : o_.timeout_s));
    if (t.via_containerd) {
      ctx.AddMetadata("containerd-namespace", o_.ns);
      if (!t.lease.empty()) ctx.AddMetadata("containerd-lease", t.lease);
    }
  }

  // Runs fn (which returns a grpc::Status), records its latency under op
  // (unless op is empty) and throws on failure.
  template <class F>
  void Timed(Target& t, const std::string& op, const std::string& what, F&& fn) {
    if (g_interrupted) throw Failure("interrupted");
    const auto t0 = Clock::now();
    grpc::Status st = fn();
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (!st.ok()) throw Failure(t.label + ": " + what + ": " + Describe(st));
    if (!op.empty()) {
      if (!order_seen_.count(op)) {
        order_seen_[op] = true;
        op_order_.push_back(op);
      }
      t.samples[op].push_back(us);
    }
  }

  void Prepare(Target& t, const std::string& op, const std::string& key, const std::string& parent) {
    pb::PrepareSnapshotRequest req;
    req.set_snapshotter(t.snapshotter);
    req.set_key(key);
    req.set_parent(parent);
    pb::PrepareSnapshotResponse resp;
    Timed(t, op, "Prepare " + key, [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.snaps->Prepare(&ctx, req, &resp);
    });
    t.live.push_back(key);
    if (resp.mounts_size() != 1) {
      throw Failure(t.label + ": Prepare " + key + " returned " + std::to_string(resp.mounts_size()) +
                    " mounts, expected 1");
    }
  }

  void Mounts(Target& t, const std::string& op, const std::string& key) {
    pb::MountsRequest req;
    req.set_snapshotter(t.snapshotter);
    req.set_key(key);
    pb::MountsResponse resp;
    Timed(t, op, "Mounts " + key, [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.snaps->Mounts(&ctx, req, &resp);
    });
    if (resp.mounts_size() != 1) throw Failure(t.label + ": Mounts " + key + ": not one mount");
  }

  void Commit(Target& t, const std::string& op, const std::string& name, const std::string& key) {
    pb::CommitSnapshotRequest req;
    req.set_snapshotter(t.snapshotter);
    req.set_name(name);
    req.set_key(key);
    google::protobuf::Empty resp;
    Timed(t, op, "Commit " + key + " as " + name, [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.snaps->Commit(&ctx, req, &resp);
    });
    auto it = std::find(t.live.rbegin(), t.live.rend(), key);
    if (it != t.live.rend()) *it = name;
  }

  void Stat(Target& t, const std::string& op, const std::string& key, pb::Kind want) {
    pb::StatSnapshotRequest req;
    req.set_snapshotter(t.snapshotter);
    req.set_key(key);
    pb::StatSnapshotResponse resp;
    Timed(t, op, "Stat " + key, [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.snaps->Stat(&ctx, req, &resp);
    });
    if (resp.info().kind() != want) {
      throw Failure(t.label + ": Stat " + key + ": kind " + std::to_string(resp.info().kind()) +
                    ", expected " + std::to_string(want));
    }
  }

  void Remove(Target& t, const std::string& op, const std::string& key) {
    pb::RemoveSnapshotRequest req;
    req.set_snapshotter(t.snapshotter);
    req.set_key(key);
    google::protobuf::Empty resp;
    Timed(t, op, "Remove " + key, [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.snaps->Remove(&ctx, req, &resp);
    });
    auto it = std::find(t.live.rbegin(), t.live.rend(), key);
    if (it != t.live.rend()) t.live.erase(std::next(it).base());
  }

  // List without filters; returns the number of Info entries streamed, and
  // how many of them are ours (key starts with the run's prefix).
  long List(Target& t, const std::string& op, long* ours) {
    pb::ListSnapshotsRequest req;
    req.set_snapshotter(t.snapshotter);
    long items = 0, mine = 0;
    Timed(t, op, "List", [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      auto reader = t.snaps->List(&ctx, req);
      pb::ListSnapshotsResponse resp;
      while (reader->Read(&resp)) {
        items += resp.info_size();
        for (const auto& info : resp.info()) {
          if (info.name().find(o_.prefix) != std::string::npos) ++mine;
        }
      }
      return reader->Finish();
    });
    if (ours != nullptr) *ours = mine;
    return items;
  }

  void CleanupRpc(Target& t, const std::string& op) {
    pb::CleanupRequest req;
    req.set_snapshotter(t.snapshotter);
    google::protobuf::Empty resp;
    Timed(t, op, "Cleanup", [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t, o_.gc_timeout_s);
      grpc::Status st = t.snaps->Cleanup(&ctx, req, &resp);
      if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) return grpc::Status::OK;
      return st;
    });
  }

  void CreateLease(Target& t) {
    lpb::CreateRequest req;
    req.set_id(o_.prefix + "lease-" + t.snapshotter);
    (*req.mutable_labels())["ndocker.bench"] = "snapshot-bench";
    lpb::CreateResponse resp;
    Timed(t, "", "Leases.Create", [&] {
      grpc::ClientContext ctx;
      Setup(ctx, t);
      return t.leases->Create(&ctx, req, &resp);
    });
    t.lease = req.id();
  }

  void DeleteLease(Target& t, const std::string& op) {
    if (t.lease.empty()) return;
    lpb::DeleteRequest req;
    req.set_id(t.lease);
    req.set_sync(true);
    google::protobuf::Empty resp;
    const std::string lease = t.lease;
    t.lease.clear();  // the Delete itself must not run under the lease
    Timed(t, op, "Leases.Delete " + lease, [&] {
      grpc::ClientContext ctx;
      // sync: waits for a whole GC pass, whose backend Removes may take minutes.
      Setup(ctx, t, o_.gc_timeout_s);
      return t.leases->Delete(&ctx, req, &resp);
    });
  }

  // ---- phases ------------------------------------------------------------
  // Calls fn(target) for every target, starting at target (i mod T).
  template <class F>
  void Rotate(size_t i, F&& fn) {
    const size_t n = targets_.size();
    for (size_t j = 0; j < n; ++j) fn(*targets_[(i + j) % n]);
  }

  void Hook(const std::string& phase) {
    if (o_.hook.empty()) return;
    const std::string cmd = o_.hook + " " + phase;
    int rc = std::system(cmd.c_str());
    if (rc != 0) std::cerr << "warning: hook `" << cmd << "` exited with " << rc << "\n";
  }

  void Settle() {
    if (o_.settle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.settle_ms));
  }

  void Progress(const std::string& msg) {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    std::cerr << "[" << std::fixed << std::setprecision(1) << s << "s] " << msg << std::endl;
  }

  std::string Key(const std::string& kind, int i) const {
    std::ostringstream k;
    k << o_.prefix << kind << "/" << std::setw(6) << std::setfill('0') << i;
    return k.str();
  }

  // Prepare -> Mounts -> Commit -> Stat; returns the committed name.
  std::string Cycle(Target& t, const std::string& tag, const std::string& sfx, int i, bool record) {
    const std::string key = Key(tag + "-active", i), name = Key(tag, i);
    auto op = [&](const std::string& o) { return record ? o + sfx : std::string(); };
    Prepare(t, op("prepare"), key, base_);
    Mounts(t, op("mounts"), key);
    Commit(t, op("commit"), name, key);
    // On the full store, "stat@N" is the random-snapshot Stat of the stat phase.
    Stat(t, op(sfx.empty() ? "stat" : "stat.committed"), name, pb::COMMITTED);
    return name;
  }

  void CycleBlock(const std::string& tag, const std::string& sfx, int n, bool record) {
    for (int i = 0; i < n; ++i) {
      Rotate(static_cast<size_t>(i), [&](Target& t) { Cycle(t, tag, sfx, i, record); });
    }
    // Remove what the cycles committed (newest first).
    for (int i = n - 1; i >= 0; --i) {
      Rotate(static_cast<size_t>(i), [&](Target& t) { Remove(t, record ? "remove" + sfx : "", Key(tag, i)); });
    }
  }

  // Removes everything still live, children first (newest first), one call
  // per target in turn so that the targets share the machine's noise.
  void CleanupAll(bool record) {
    for (size_t round = 0;; ++round) {
      bool any = false;
      Rotate(round, [&](Target& t) {
        if (t.live.empty()) return;
        any = true;
        const std::string key = t.live.back();
        const bool fill = key.find("/fill/") != std::string::npos;
        try {
          Remove(t, record && fill ? "remove.fill" : "", key);
        } catch (const Failure& e) {
          if (record) throw;
          std::cerr << "cleanup: " << e.what() << "\n";
          t.live.pop_back();
        }
      });
      if (!any) break;
    }
  }

  void FinalCleanup(bool record) {
    CleanupAll(record);
    for (auto& tp : targets_) {
      Target& t = *tp;
      if (t.via_containerd) {
        DeleteLease(t, record ? "lease-delete-sync" : "");
      } else {
        CleanupRpc(t, record ? "cleanup" : "");
      }
    }
  }

  void Verify(const std::string& when) {
    for (auto& tp : targets_) {
      long ours = 0;
      long items = List(*tp, "", &ours);
      if (ours != 0) {
        std::cerr << "warning: " << tp->label << ": " << ours << " of our snapshots still listed " << when
                  << " (" << items << " in all)\n";
        leftovers_ += ours;
      }
    }
  }

  void Report();

  Options o_;
  std::mt19937 rng_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::vector<std::string> op_order_;
  std::map<std::string, bool> order_seen_;
  std::string base_;
  Clock::time_point start_ = Clock::now();
  long leftovers_ = 0;
};

std::unique_ptr<Target> ParseTarget(const std::string& spec) {
  auto t = std::make_unique<Target>();
  t->spec = spec;
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) throw Failure("bad --target " + spec);
  const std::string kind = spec.substr(0, colon);
  std::string rest = spec.substr(colon + 1);
  const size_t last = rest.rfind(':');
  if (kind == "containerd") {
    if (last == std::string::npos) throw Failure("--target containerd:<socket>:<snapshotter>, got " + spec);
    t->via_containerd = true;
    t->address = rest.substr(0, last);
    t->snapshotter = rest.substr(last + 1);
  } else if (kind == "direct") {
    if (last != std::string::npos && rest.find('/', last) == std::string::npos) {
      t->address = rest.substr(0, last);
      t->snapshotter = rest.substr(last + 1);
    } else {
      t->address = rest;
      t->snapshotter = "ndocker";
    }
  } else {
    throw Failure("--target must start with containerd: or direct:, got " + spec);
  }
  if (t->address.empty() || t->snapshotter.empty()) throw Failure("bad --target " + spec);
  t->label = kind + "/" + t->snapshotter;
  return t;
}

struct Summary {
  size_t n = 0;
  double p50 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};

Summary Summarize(std::vector<double> v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  // nearest-rank percentiles
  auto pct = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
  };
  s.p50 = pct(0.50);
  s.p99 = pct(0.99);
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.min = v.front();
  s.max = v.back();
  return s;
}

int Bench::Run() {
  for (const auto& spec : o_.targets) targets_.push_back(ParseTarget(spec));
  if (o_.stat_samples <= 0) o_.stat_samples = o_.store_size;
  if (o_.prefix.empty()) o_.prefix = "nbench-" + std::to_string(::getpid()) + "/";
  base_ = o_.prefix + "base";

  for (auto& tp : targets_) {
    Target& t = *tp;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // One connection per target, even for two targets on the same socket.
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    t.channel = grpc::CreateCustomChannel("unix:" + t.address, grpc::InsecureChannelCredentials(), args);
    if (!t.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
      throw Failure(t.label + ": cannot connect to " + t.address);
    }
    t.snaps = pb::Snapshots::NewStub(t.channel);
    if (t.via_containerd) t.leases = lpb::Leases::NewStub(t.channel);
  }
  Progress("targets: " + [&] {
    std::string s;
    for (auto& t : targets_) s += (s.empty() ? "" : ", ") + t->label + " (" + t->address + ")";
    return s;
  }());

  const std::string at = "@" + std::to_string(o_.store_size);
  bool ok = true;
  std::string error;
  try {
    for (auto& t : targets_) {
      if (t->via_containerd) CreateLease(*t);
    }
    Hook("idle");

    for (auto& t : targets_) {
      Prepare(*t, "", o_.prefix + "base-active", "");
      Commit(*t, "", base_, o_.prefix + "base-active");
    }
    Progress("warmup: " + std::to_string(o_.warmup) + " cycles per target");
    CycleBlock("warm", "", o_.warmup, false);
    Settle();

    Progress("cycle: " + std::to_string(o_.iterations) + " x Prepare/Mounts/Commit/Stat per target");
    CycleBlock("cyc", "", o_.iterations, true);
    Settle();

    Progress("fill: " + std::to_string(o_.store_size) + " active snapshots on one parent per target");
    for (int i = 0; i < o_.store_size; ++i) {
      Rotate(static_cast<size_t>(i), [&](Target& t) { Prepare(t, "prepare.fill", Key("fill", i), base_); });
      if ((i + 1) % 1000 == 0) Progress("  fill " + std::to_string(i + 1));
    }
    for (auto& t : targets_) {
      const auto& v = t->samples["prepare.fill"];
      const size_t k = std::min<size_t>(1000, v.size());
      if (k > 0) {
        auto& first = t->samples["prepare.fill.first" + std::to_string(k)];
        auto& last = t->samples["prepare.fill.last" + std::to_string(k)];
        first.assign(v.begin(), v.begin() + static_cast<long>(k));
        last.assign(v.end() - static_cast<long>(k), v.end());
      }
    }
    if (!targets_.empty() && o_.store_size > 0) {
      const std::string k = std::to_string(std::min(1000, o_.store_size));
      op_order_.push_back("prepare.fill.first" + k);
      op_order_.push_back("prepare.fill.last" + k);
    }
    Settle();
    Hook("filled");

    Progress("list: " + std::to_string(o_.list_repeats) + " x List (no filter) per target");
    for (int r = 0; r < o_.list_repeats; ++r) {
      Rotate(static_cast<size_t>(r), [&](Target& t) {
        long ours = 0;
        long items = List(t, "list" + at, &ours);
        t.list_items["list" + at] = items;
        if (ours != o_.store_size + 1) {
          throw Failure(t.label + ": List returned " + std::to_string(ours) + " of our snapshots, expected " +
                        std::to_string(o_.store_size + 1));
        }
      });
    }

    Progress("stat: " + std::to_string(o_.stat_samples) + " x Stat of a random snapshot per target");
    std::vector<int> order(static_cast<size_t>(o_.store_size));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng_);
    for (int s = 0; s < o_.stat_samples && o_.store_size > 0; ++s) {
      const int i = order[static_cast<size_t>(s % o_.store_size)];
      Rotate(static_cast<size_t>(s), [&](Target& t) { Stat(t, "stat" + at, Key("fill", i), pb::ACTIVE); });
    }
    Settle();

    Progress("loaded: " + std::to_string(o_.loaded_iterations) + " cycles with " +
             std::to_string(o_.store_size) + " snapshots in the store");
    CycleBlock("load", at, o_.loaded_iterations, true);
    Settle();
    Hook("loaded");

    Progress("cleanup: Remove (children first), then Leases.Delete(sync) / Cleanup");
    if (!o_.keep) {
      FinalCleanup(true);
      Settle();
      Verify("after the cleanup");
    }
    Hook("cleaned");
  } catch (const std::exception& e) {
    ok = false;
    error = e.what();
    std::cerr << "error: " << error << "\n";
    if (!o_.keep) {
      std::cerr << "cleaning up what this run created\n";
      g_interrupted = false;
      try {
        FinalCleanup(false);
      } catch (const std::exception& e2) {
        std::cerr << "cleanup failed: " << e2.what() << "\n";
      }
    }
  }
  Report();
  Progress(ok ? "done" : "failed");
  if (!ok) return 1;
  return leftovers_ == 0 ? 0 : 3;
}

void Bench::Report() {
  // CSV
  std::ostringstream csv;
  csv << "target,snapshotter,op,n,p50_us,p99_us,mean_us,min_us,max_us\n";
  for (const auto& op : op_order_) {
    for (auto& t : targets_) {
      auto it = t->samples.find(op);
      if (it == t->samples.end() || it->second.empty()) continue;
      Summary s = Summarize(it->second);
      csv << (t->via_containerd ? "containerd" : "direct") << "," << t->snapshotter << "," << op << "," << s.n
          << std::fixed << std::setprecision(1) << "," << s.p50 << "," << s.p99 << "," << s.mean << ","
          << s.min << "," << s.max << "\n";
    }
  }
  if (o_.csv.empty()) {
    std::cout << csv.str();
  } else {
    std::ofstream out(o_.csv);
    out << csv.str();
    if (!out) std::cerr << "error: cannot write " << o_.csv << "\n";
  }

  // Human table, ratios against the baseline target.
  const Target* base = nullptr;
  for (auto& t : targets_) {
    if ((!o_.baseline.empty() && t->label == o_.baseline) ||
        (o_.baseline.empty() && t->via_containerd && t->snapshotter == "overlayfs")) {
      base = t.get();
      break;
    }
  }
  std::ostringstream tab;
  tab << "\n" << std::left << std::setw(26) << "op" << std::setw(24) << "target" << std::right << std::setw(7)
      << "n" << std::setw(11) << "p50 us" << std::setw(11) << "p99 us" << std::setw(11) << "mean us";
  if (base != nullptr) tab << std::setw(10) << "p50 x" << std::setw(10) << "p99 x";
  tab << "\n";
  for (const auto& op : op_order_) {
    Summary b;
    if (base != nullptr) {
      auto it = base->samples.find(op);
      if (it != base->samples.end()) b = Summarize(it->second);
    }
    for (auto& t : targets_) {
      auto it = t->samples.find(op);
      if (it == t->samples.end() || it->second.empty()) continue;
      Summary s = Summarize(it->second);
      tab << std::left << std::setw(26) << op << std::setw(24) << t->label << std::right << std::setw(7) << s.n
          << std::fixed << std::setprecision(1) << std::setw(11) << s.p50 << std::setw(11) << s.p99
          << std::setw(11) << s.mean;
      if (base != nullptr && b.n > 0) {
        tab << std::setprecision(2) << std::setw(10) << s.p50 / b.p50 << std::setw(10) << s.p99 / b.p99;
      }
      auto li = t->list_items.find(op);
      if (li != t->list_items.end()) tab << "   (" << li->second << " items)";
      tab << "\n";
    }
  }
  if (base != nullptr) tab << "ratios: target / " << base->label << " (same run, interleaved)\n";
  std::cerr << tab.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ndocker-snapshot-bench: Snapshots API latency through containerd or straight to a proxy"};
  app.add_option("--target", o.targets,
                 "containerd:<socket>:<snapshotter> or direct:<socket>[:<name>]; repeat to compare "
                 "(calls are interleaved)")
      ->required();
  app.add_option("--namespace", o.ns, "containerd namespace (containerd targets)")->capture_default_str();
  app.add_option("-n,--iterations", o.iterations, "Prepare/Mounts/Commit/Stat cycles on a small store")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "unrecorded cycles first")->capture_default_str();
  app.add_option("--store-size", o.store_size, "active snapshots (on one parent) for List/Stat")
      ->capture_default_str();
  app.add_option("--stat-samples", o.stat_samples, "Stat calls on the full store (0 = store size)")
      ->capture_default_str();
  app.add_option("--list-repeats", o.list_repeats, "List calls on the full store")->capture_default_str();
  app.add_option("--loaded-iterations", o.loaded_iterations, "cycles with the full store")
      ->capture_default_str();
  app.add_option("--settle-ms", o.settle_ms, "pause between phases (containerd's GC)")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "deadline of one call, seconds")->capture_default_str();
  app.add_option("--gc-timeout", o.gc_timeout_s, "deadline of Leases.Delete(sync) and Cleanup, seconds")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "random seed (Stat order)")->capture_default_str();
  app.add_option("--csv", o.csv, "write the CSV here (default stdout)");
  app.add_option("--hook", o.hook,
                 "shell command run as `<hook> <phase>` at phases idle, filled, loaded, cleaned");
  app.add_option("--baseline", o.baseline, "label of the ratio baseline (default containerd/overlayfs)");
  app.add_option("--prefix", o.prefix, "key prefix (default nbench-<pid>/)");
  app.add_flag("--keep", o.keep, "do not remove the snapshots at the end");
  CLI11_PARSE(app, argc, argv);

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return Bench(std::move(o)).Run();
  } catch (const std::exception& e) {
    std::cerr << "ndocker-snapshot-bench: " << e.what() << "\n";
    return 2;
  }
}
