// The LASS planner: pure functions from a pull's download state to a tier for
// the layer being unpacked. No clocks, no I/O: every input is a parameter, so
// unit tests replay timelines exactly.
//
// Why it works (DESIGN §5): containerd applies layers bottom-up, each after
// its own blob is complete and the layer below is committed. A layer whose
// store can finish while a later layer is still downloading is off the
// critical path: it can go to the slow tier at no cost to the pull. The
// layers from the last-downloading layer (LDL) up are applied after the last
// byte arrives, so their store time adds to the pull: they go fast.
//
// `predict` looks at time, not order: applying a layer costs the same on
// either tier (the page cache takes the writes); what the slow tier adds is
// its write-back, which runs in the background after the commit. A layer goes
// slow when, stored there, it would be durable before the pull ends anyway
// (the last download plus the applies that must follow it). Layers below the
// LDL usually qualify; the LDL itself does when the applies above it outlast
// its write-back.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "lass/pull_session.h"
#include "snapshotter/placement.h"

namespace ndocker::lass {

enum class Policy {
  kLdl,      // the paper's strategy 3: fast from the LDL up
  kPredict,  // fast only where a slow-tier store would end after the pull would
};
const char* PolicyName(Policy policy);  // "ldl", "predict"

struct PlannerInputs {
  Policy policy = Policy::kLdl;
  double bandwidth = 0;       // aggregate download bytes/s; 0 = not measured yet
  int concurrency = 3;        // downloads a pull runs at once
  double unpack_ratio = 2.0;  // unpacked bytes per compressed byte
  double apply_rate = 100e6;  // bytes/s containerd's applier writes (CPU: gunzip + tar)
  double slow_store_rate = 150.0 * (1 << 20);  // bytes/s the slow tier writes back
  double slow_backlog_bytes = 0;  // already queued for the slow tier's write-back
  double margin_s = 0.2;      // predict: slow only if durable this much before the pull ends
};

// Predicted end of each layer's download, in seconds from now, for layers at
// index >= from; -1 for layers already done (and for those below `from`).
// Downloads share the bandwidth equally, at most `concurrency` at once (more
// when more are already running), queued ones start in manifest order. With
// bandwidth 0 the times are in units of 1 byte/s: only their order means
// anything.
std::vector<double> PredictDownloadEnds(const PullSession& session, size_t from, double bandwidth,
                                        int concurrency);

struct LayerDecision {
  Placement placement;
  // The inputs that decided it, also written into the reason.
  double this_end_s = -1;  // predicted end of this layer's download (-1: done)
  double last_end_s = -1;  // predicted end of the image's last download (-1: none left)
  int last_index = -1;     // the layer predicted to finish last, if any
  // predict only: when the pull would end, and when this layer would be
  // durable on the slow tier (seconds from now).
  double pull_end_s = -1;
  double slow_durable_s = -1;
  bool times_known = false;  // bandwidth measured: times are seconds
};

// The tier for layer `index` of `session`, being prepared now.
LayerDecision Decide(const PullSession& session, size_t index, const PlannerInputs& inputs);

}  // namespace ndocker::lass
