// gRPC adapter: ndocker.admin.v1.Admin (used by ndockerctl).
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

class AdminService final : public ndocker::admin::v1::Admin::Service {
 public:
  // Answers GetPlan (LASS); kept as a function so the core does not depend on lass/.
  using PlanLookup =
      std::function<absl::StatusOr<ndocker::admin::v1::GetPlanResponse>(const std::string& digest)>;

  AdminService(Snapshotter* core, std::string version, PlanLookup plans = nullptr)
      : core_(core), version_(std::move(version)), plans_(std::move(plans)) {}

  grpc::Status Status(grpc::ServerContext*, const ndocker::admin::v1::StatusRequest*,
                      ndocker::admin::v1::StatusResponse*) override;
  grpc::Status ListSnapshots(
      grpc::ServerContext*, const ndocker::admin::v1::ListSnapshotsRequest*,
      grpc::ServerWriter<ndocker::admin::v1::ListSnapshotsResponse>*) override;
  grpc::Status GetPlan(grpc::ServerContext*, const ndocker::admin::v1::GetPlanRequest*,
                       ndocker::admin::v1::GetPlanResponse*) override;
  grpc::Status Migrate(grpc::ServerContext*, const ndocker::admin::v1::MigrateRequest*,
                       ndocker::admin::v1::MigrateResponse*) override;

 private:
  Snapshotter* core_;
  std::string version_;
  PlanLookup plans_;
};

}  // namespace ndocker
