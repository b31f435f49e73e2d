#include "snapshotter/fast_pressure.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "snapshotter/labels.h"
#include "snapshotter/log.h"

namespace ndocker {

namespace {

int64_t Mark(int64_t budget, double fraction) {
  return static_cast<int64_t>(std::floor(static_cast<double>(budget) * fraction));
}

// Ids of the committed snapshots some active snapshot or view stands on.
absl::flat_hash_set<uint64_t> UnderActives(const std::vector<SnapshotEntry>& entries) {
  absl::flat_hash_map<std::string, const SnapshotRecord*> by_key;
  for (const SnapshotEntry& e : entries) by_key[e.key] = &e.record;
  absl::flat_hash_set<uint64_t> ids;
  for (const SnapshotEntry& e : entries) {
    if (e.record.kind == Kind::kCommitted) continue;
    for (auto it = by_key.find(e.record.parent); it != by_key.end(); it = by_key.find(it->second->parent)) {
      if (!ids.insert(it->second->id).second) break;  // the rest of the chain is in already
    }
  }
  return ids;
}

}  // namespace

PressurePlan PlanPressure(const std::vector<SnapshotEntry>& entries,
                          const absl::flat_hash_map<uint64_t, absl::Time>& last_used,
                          const absl::flat_hash_set<std::string>& moving_to_slow, int64_t counted,
                          int64_t leaving_bytes, int64_t budget, const Watermarks& marks) {
  PressurePlan plan;
  plan.effective = counted - leaving_bytes;
  for (const SnapshotEntry& e : entries) {
    if (moving_to_slow.contains(e.key) && e.record.tier == Tier::kFast) plan.effective -= e.record.size;
  }
  if (budget <= 0 || plan.effective <= Mark(budget, marks.high)) return plan;
  plan.to_free = plan.effective - Mark(budget, marks.low);
  const absl::flat_hash_set<uint64_t> in_use = UnderActives(entries);
  struct Ranked {
    bool in_use;
    absl::Time used;
    uint64_t id;
    PressureCandidate candidate;
  };
  std::vector<Ranked> ranked;
  for (const SnapshotEntry& e : entries) {
    const SnapshotRecord& r = e.record;
    if (r.kind != Kind::kCommitted || r.tier != Tier::kFast || r.labels.contains(kTierLabel)) continue;
    if (moving_to_slow.contains(e.key)) continue;
    auto it = last_used.find(r.id);
    ranked.push_back({in_use.contains(r.id), it != last_used.end() ? std::max(it->second, r.created) : r.created,
                      r.id, PressureCandidate{e.key, r.size}});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return std::tie(a.in_use, a.used, a.id) < std::tie(b.in_use, b.used, b.id);
  });
  for (Ranked& r : ranked) plan.candidates.push_back(std::move(r.candidate));
  return plan;
}

FastPressure::FastPressure(Wiring wiring) : wiring_(std::move(wiring)) {}

FastPressure::~FastPressure() { Stop(); }

absl::StatusOr<PressureReport> FastPressure::RunOnce() {
  absl::MutexLock lock(&run_mu_);
  Snapshotter& core = *wiring_.core;
  PressureReport report;
  const int64_t budget = core.FastBudgetBytes();
  report.counted_before = report.counted_after = core.FastBytesCounted();
  if (budget <= 0 || report.counted_before <= Mark(budget, wiring_.marks.high)) return report;
  absl::StatusOr<std::vector<SnapshotEntry>> entries = core.Entries();
  if (!entries.ok()) return entries.status();
  absl::flat_hash_set<std::string> moving;
  for (const MigrationProgress& m : core.Health().migrations) {
    if (m.to == Tier::kSlow) moving.insert(m.key);
  }
  const int64_t leaving = wiring_.leaving ? wiring_.leaving() : 0;
  PressurePlan plan = PlanPressure(*entries, core.LastUsed(), moving, report.counted_before, leaving, budget,
                                   wiring_.marks);
  if (plan.to_free <= 0) return report;  // what is leaving brings it under
  report.over_high = true;
  spdlog::info("msg=\"fast tier over its high watermark: demoting least recently used layers\" counted={} "
               "leaving={} budget={} high={:.2f} low={:.2f} to_free={} candidates={}",
               report.counted_before, report.counted_before - plan.effective, budget, wiring_.marks.high,
               wiring_.marks.low, plan.to_free, plan.candidates.size());
  const absl::Time now = absl::Now();
  int64_t freed = 0;
  for (const PressureCandidate& c : plan.candidates) {
    if (freed >= plan.to_free || stop_.HasBeenNotified()) break;
    if (auto f = failed_until_.find(c.key); f != failed_until_.end()) {
      if (f->second > now) continue;
      failed_until_.erase(f);
    }
    absl::StatusOr<std::vector<MigrationOutcome>> moved = core.Migrate(c.key, Tier::kSlow, /*wait=*/true);
    if (!moved.ok()) {
      // Gone meanwhile (containerd's GC), a full slow tier, an unreadable
      // file: the next candidates are tried; this one after a while.
      spdlog::warn("msg=\"pressure demotion of a layer failed\" key={} error={}", Q(c.key),
                   Q(moved.status().message()));
      failed_until_[c.key] = now + wiring_.failed_backoff;
      report.failed.push_back(c.key);
      continue;
    }
    report.demoted.push_back(c.key);
    freed += c.bytes;
  }
  report.counted_after = core.FastBytesCounted();
  const int64_t excess = plan.to_free - freed;
  if (excess > 0 && wiring_.shed && !stop_.HasBeenNotified()) {
    report.shed_bytes = wiring_.shed(excess);
    spdlog::info("msg=\"fast tier still over its low watermark with no layer left to move: hot layers retired\" "
                 "excess={} to_free={}",
                 excess, report.shed_bytes);
  }
  spdlog::info("msg=\"pressure demotion done\" counted_before={} counted_after={} demoted={} failed={}",
               report.counted_before, report.counted_after, report.demoted.size(), report.failed.size());
  return report;
}

void FastPressure::Start() {
  if (worker_.joinable()) return;
  worker_ = std::thread([this] { Loop(); });
}

void FastPressure::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (worker_.joinable()) worker_.join();
}

void FastPressure::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(wiring_.interval)) {
    if (absl::StatusOr<PressureReport> r = RunOnce(); !r.ok()) {
      spdlog::warn("msg=\"fast-tier pressure check failed\" error={}", Q(r.status().message()));
    }
  }
}

}  // namespace ndocker
