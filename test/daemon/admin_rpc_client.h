// A client of ndocker's admin API (ndocker.admin.v1.Admin) for the daemon
// tests; it is served on the snapshots socket, so it uses the fixture's
// channel:
//
//   AdminRpcClient admin;
//   admin.Connect(d.channel());            // again after every d.Start()
//   std::vector<adminpb::SnapshotSummary> all;
//   REQUIRE_OK(admin.ListSnapshots(&all));
//
// Migrate exists only once admin.proto has `rpc Migrate` (the mover, issue 8):
// test/CMakeLists.txt then defines NDOCKER_HAVE_ADMIN_MIGRATE.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"

namespace ndocker::daemon_test {

namespace adminpb = ndocker::admin::v1;

class AdminRpcClient {
 public:
  void Connect(std::shared_ptr<grpc::Channel> channel) {
    stub_ = channel ? adminpb::Admin::NewStub(std::move(channel)) : nullptr;
  }

  grpc::Status Status(adminpb::StatusResponse* out = nullptr) {
    if (!stub_) return NotRunning();
    adminpb::StatusRequest req;
    adminpb::StatusResponse resp;
    auto ctx = Context();
    grpc::Status st = stub_->Status(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return st;
  }

  grpc::Status ListSnapshots(std::vector<adminpb::SnapshotSummary>* out) {
    if (!stub_) return NotRunning();
    adminpb::ListSnapshotsRequest req;
    auto ctx = Context();
    auto reader = stub_->ListSnapshots(ctx.get(), req);
    adminpb::ListSnapshotsResponse resp;
    while (reader->Read(&resp)) {
      if (out != nullptr) out->insert(out->end(), resp.snapshots().begin(), resp.snapshots().end());
    }
    return reader->Finish();
  }

#ifdef NDOCKER_HAVE_ADMIN_MIGRATE
  // Migrate(snapshot key or chainID, "fast"|"slow", wait).
  grpc::Status Migrate(const std::string& snapshot, const std::string& tier, bool wait,
                       adminpb::MigrateResponse* out = nullptr) {
    if (!stub_) return NotRunning();
    adminpb::MigrateRequest req;
    req.set_snapshot(snapshot);
    req.set_tier(tier);
    req.set_wait(wait);
    adminpb::MigrateResponse resp;
    auto ctx = Context();
    grpc::Status st = stub_->Migrate(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return st;
  }
#endif

 private:
  static grpc::Status NotRunning() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "daemon is not running");
  }
  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  std::unique_ptr<adminpb::Admin::Stub> stub_;
};

}  // namespace ndocker::daemon_test
