#include "snapshotter/fast_pressure.h"

#include <algorithm>
#include <cmath>

#include "snapshotter/labels.h"
#include "snapshotter/log.h"

namespace ndocker {

namespace {
int64_t Mark(int64_t budget, double fraction) {
  return static_cast<int64_t>(std::floor(static_cast<double>(budget) * fraction));
}
}  // namespace

PressurePlan PlanPressure(const std::vector<SnapshotEntry>& entries,
                          const absl::flat_hash_map<uint64_t, absl::Time>& last_used,
                          const absl::flat_hash_set<std::string>& moving, int64_t counted, int64_t budget,
                          const Watermarks& marks) {
  PressurePlan plan;
  if (budget <= 0 || counted <= Mark(budget, marks.high)) return plan;
  const int64_t low = Mark(budget, marks.low);
  struct Candidate {
    absl::Time used;
    uint64_t id;
    const SnapshotEntry* entry;
  };
  std::vector<Candidate> candidates;
  for (const SnapshotEntry& e : entries) {
    const SnapshotRecord& r = e.record;
    if (r.kind != Kind::kCommitted || r.tier != Tier::kFast || r.labels.contains(kTierLabel)) continue;
    if (moving.contains(e.key)) continue;
    auto it = last_used.find(r.id);
    candidates.push_back({it != last_used.end() ? std::max(it->second, r.created) : r.created, r.id, &e});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.used != b.used ? a.used < b.used : a.id < b.id;
  });
  int64_t left = counted;
  for (const Candidate& c : candidates) {
    if (left <= low) break;
    plan.keys.push_back(c.entry->key);
    plan.freed += c.entry->record.size;
    left -= c.entry->record.size;
  }
  plan.excess_after = std::max<int64_t>(0, left - low);
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
  report.over_high = true;
  absl::StatusOr<std::vector<SnapshotEntry>> entries = core.Entries();
  if (!entries.ok()) return entries.status();
  absl::flat_hash_set<std::string> moving;
  for (const MigrationProgress& m : core.Health().migrations) moving.insert(m.key);
  PressurePlan plan =
      PlanPressure(*entries, core.LastUsed(), moving, report.counted_before, budget, wiring_.marks);
  spdlog::info("msg=\"fast tier over its high watermark: demoting least recently used layers\" counted={} "
               "budget={} high={:.2f} low={:.2f} layers={} bytes={} short_by={}",
               report.counted_before, budget, wiring_.marks.high, wiring_.marks.low, plan.keys.size(), plan.freed,
               plan.excess_after);
  for (const std::string& key : plan.keys) {
    if (stop_.HasBeenNotified()) break;
    absl::StatusOr<std::vector<MigrationOutcome>> moved = core.Migrate(key, Tier::kSlow, /*wait=*/true);
    if (!moved.ok()) {
      // Gone meanwhile (removed by containerd's GC), or a failed copy: the
      // next check plans again from what is there.
      spdlog::warn("msg=\"pressure demotion of a layer failed\" key={} error={}", Q(key),
                   Q(moved.status().message()));
      continue;
    }
    report.demoted.push_back(key);
  }
  report.counted_after = core.FastBytesCounted();
  const int64_t excess = report.counted_after - Mark(budget, wiring_.marks.low);
  if (excess > 0 && wiring_.shed && !stop_.HasBeenNotified()) {
    report.shed_bytes = wiring_.shed(excess);
    spdlog::info("msg=\"fast tier still over its low watermark after the layers: hot layers retired\" excess={} "
                 "to_free={}",
                 excess, report.shed_bytes);
  }
  spdlog::info("msg=\"pressure demotion done\" counted_before={} counted_after={} demoted={}",
               report.counted_before, report.counted_after, report.demoted.size());
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
