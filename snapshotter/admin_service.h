// gRPC adapter: ndocker.admin.v1.Admin (used by ndockerctl).
#pragma once

#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

class AdminService final : public ndocker::admin::v1::Admin::Service {
 public:
  AdminService(Snapshotter* core, std::string version) : core_(core), version_(std::move(version)) {}

  grpc::Status Status(grpc::ServerContext*, const ndocker::admin::v1::StatusRequest*,
                      ndocker::admin::v1::StatusResponse*) override;
  grpc::Status ListSnapshots(
      grpc::ServerContext*, const ndocker::admin::v1::ListSnapshotsRequest*,
      grpc::ServerWriter<ndocker::admin::v1::ListSnapshotsResponse>*) override;

 private:
  Snapshotter* core_;
  std::string version_;
};

}  // namespace ndocker
