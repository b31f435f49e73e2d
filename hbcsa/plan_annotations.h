// What HBCSA adds to `ndockerctl plan`: each layer's static class with its
// evidence, and how much of the image's cold-start profile it serves.
#pragma once

#include "hbcsa/profiles/profile.h"
#include "hbcsa/static_advisor.h"
#include "ndocker/admin/v1/admin.pb.h"

namespace ndocker::hbcsa {

// Either input may be null (static analysis off, image not traced).
void AnnotatePlan(const StaticAdvisor* static_advisor, const Profile* profile,
                  ndocker::admin::v1::GetPlanResponse* plan);

}  // namespace ndocker::hbcsa
