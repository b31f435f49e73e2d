// Several placement inputs as the core's one PlacementAdvisor: asked in
// order, the first with an opinion decides and the others are told what it
// decided (DecidedElsewhere); every commit is told to all of them (each
// learns from commits whoever placed them).
//
// The inputs keep their own words (rules, reasons); this class knows none of
// them, so it could live in the core. It sits in hbcsa/ for now because
// static analysis is the second input that needs it and snapshotter/ is
// being reworked; move it to snapshotter/placement.h when convenient.
//
//   label (the core)  >  static analysis  >  LASS  >  defaults (the core)
//   ... and the budget (the core) has the last word.
//
// Static analysis only ever says "fast" (engine/application layers), so
// putting it before LASS makes the result "fast if either says fast".
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "snapshotter/placement.h"

namespace ndocker::hbcsa {

class CompositeAdvisor : public PlacementAdvisor {
 public:
  // Null entries are skipped.
  explicit CompositeAdvisor(std::vector<std::shared_ptr<PlacementAdvisor>> advisors);

  std::optional<Placement> Advise(const PlacementRequest& request) override;
  void Committed(const CommitReport& report) override;

 private:
  const std::vector<std::shared_ptr<PlacementAdvisor>> advisors_;
};

}  // namespace ndocker::hbcsa
