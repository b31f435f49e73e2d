// gRPC adapter: containerd.services.snapshots.v1.Snapshots over the core.
#pragma once

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

// absl and gRPC share code numbers. containerd understands NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT, UNAVAILABLE and
// UNIMPLEMENTED; everything else becomes "unknown" there.
grpc::Status ToGrpcStatus(const absl::Status& status);

class SnapshotsService final : public containerd::services::snapshots::v1::Snapshots::Service {
 public:
  explicit SnapshotsService(Snapshotter* core) : core_(core) {}

  using PrepareReq = containerd::services::snapshots::v1::PrepareSnapshotRequest;
  using PrepareResp = containerd::services::snapshots::v1::PrepareSnapshotResponse;
  using ViewReq = containerd::services::snapshots::v1::ViewSnapshotRequest;
  using ViewResp = containerd::services::snapshots::v1::ViewSnapshotResponse;
  using MountsReq = containerd::services::snapshots::v1::MountsRequest;
  using MountsResp = containerd::services::snapshots::v1::MountsResponse;
  using CommitReq = containerd::services::snapshots::v1::CommitSnapshotRequest;
  using RemoveReq = containerd::services::snapshots::v1::RemoveSnapshotRequest;
  using StatReq = containerd::services::snapshots::v1::StatSnapshotRequest;
  using StatResp = containerd::services::snapshots::v1::StatSnapshotResponse;
  using UpdateReq = containerd::services::snapshots::v1::UpdateSnapshotRequest;
  using UpdateResp = containerd::services::snapshots::v1::UpdateSnapshotResponse;
  using ListReq = containerd::services::snapshots::v1::ListSnapshotsRequest;
  using ListResp = containerd::services::snapshots::v1::ListSnapshotsResponse;
  using UsageReq = containerd::services::snapshots::v1::UsageRequest;
  using UsageResp = containerd::services::snapshots::v1::UsageResponse;
  using CleanupReq = containerd::services::snapshots::v1::CleanupRequest;

  grpc::Status Prepare(grpc::ServerContext*, const PrepareReq*, PrepareResp*) override;
  grpc::Status View(grpc::ServerContext*, const ViewReq*, ViewResp*) override;
  grpc::Status Mounts(grpc::ServerContext*, const MountsReq*, MountsResp*) override;
  grpc::Status Commit(grpc::ServerContext*, const CommitReq*, google::protobuf::Empty*) override;
  grpc::Status Remove(grpc::ServerContext*, const RemoveReq*, google::protobuf::Empty*) override;
  grpc::Status Stat(grpc::ServerContext*, const StatReq*, StatResp*) override;
  grpc::Status Update(grpc::ServerContext*, const UpdateReq*, UpdateResp*) override;
  grpc::Status List(grpc::ServerContext*, const ListReq*, grpc::ServerWriter<ListResp>*) override;
  grpc::Status Usage(grpc::ServerContext*, const UsageReq*, UsageResp*) override;
  grpc::Status Cleanup(grpc::ServerContext*, const CleanupReq*, google::protobuf::Empty*) override;

 private:
  Snapshotter* core_;
};

}  // namespace ndocker
