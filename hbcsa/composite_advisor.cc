#include "hbcsa/composite_advisor.h"

#include <algorithm>

namespace ndocker::hbcsa {

CompositeAdvisor::CompositeAdvisor(std::vector<std::shared_ptr<PlacementAdvisor>> advisors)
    : advisors_([&advisors] {
        advisors.erase(std::remove(advisors.begin(), advisors.end(), nullptr), advisors.end());
        return std::move(advisors);
      }()) {}

std::optional<Placement> CompositeAdvisor::Advise(const PlacementRequest& request) {
  for (const auto& a : advisors_) {
    if (std::optional<Placement> p = a->Advise(request)) {
      for (const auto& other : advisors_) {
        if (other != a) other->DecidedElsewhere(request, *p);
      }
      return p;
    }
  }
  return std::nullopt;
}

void CompositeAdvisor::Committed(const CommitReport& report) {
  for (const auto& a : advisors_) a->Committed(report);
}

}  // namespace ndocker::hbcsa
