// gRPC adapter: ndocker.admin.v1.Admin (used by ndockerctl).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

// Hot-file profiles as JSON (HBCSA), kept behind an interface so the core
// does not depend on hbcsa/.
class ProfileBook {
 public:
  virtual ~ProfileBook() = default;
  virtual absl::StatusOr<std::vector<std::string>> ListJson() = 0;
  virtual absl::StatusOr<std::string> GetJson(const std::string& image) = 0;
  virtual absl::StatusOr<std::string> ImportJson(const std::string& json) = 0;
  virtual absl::Status Remove(const std::string& image) = 0;
};

// Hot layers as JSON records (HBCSA), behind an interface for the same reason.
class HotLayerBook {
 public:
  virtual ~HotLayerBook() = default;
  virtual absl::StatusOr<std::vector<std::string>> ListJson() = 0;
  struct PromoteOptions {
    bool keep_layers = false;  // no demotion, whatever the daemon's policy
    bool wait = false;         // return when the demoted layers have switched tiers
  };
  struct Promotion {
    std::string hot_json;  // the image's hot layer record
    std::vector<std::string> demoted;      // layer keys moved (or queued) to slow
    std::vector<std::string> pinned_fast;  // kept on fast by the ndocker.tier label
    std::string layers_kept_why;           // set when nothing was demoted on purpose
  };
  // Builds the image's hot layer from its current profile (blocking), then
  // demotes its fast-tier layers.
  virtual absl::StatusOr<Promotion> Promote(const std::string& image, const PromoteOptions& options) = 0;
  struct Totals {
    int64_t versions = 0;  // ready and retired
    int64_t bytes = 0;     // on the fast tier
  };
  virtual absl::StatusOr<Totals> Count() = 0;
  // One JSON object per image (ndockerctl images).
  virtual absl::StatusOr<std::vector<std::string>> ImagesJson() = 0;
};

class AdminService final : public ndocker::admin::v1::Admin::Service {
 public:
  // Answers GetPlan (LASS); kept as a function so the core does not depend on lass/.
  using PlanLookup =
      std::function<absl::StatusOr<ndocker::admin::v1::GetPlanResponse>(const std::string& digest)>;

  AdminService(Snapshotter* core, std::string version, PlanLookup plans = nullptr,
               ProfileBook* profiles = nullptr, HotLayerBook* hot = nullptr)
      : core_(core), version_(std::move(version)), plans_(std::move(plans)), profiles_(profiles), hot_(hot) {}

  grpc::Status Status(grpc::ServerContext*, const ndocker::admin::v1::StatusRequest*,
                      ndocker::admin::v1::StatusResponse*) override;
  grpc::Status ListSnapshots(
      grpc::ServerContext*, const ndocker::admin::v1::ListSnapshotsRequest*,
      grpc::ServerWriter<ndocker::admin::v1::ListSnapshotsResponse>*) override;
  grpc::Status GetPlan(grpc::ServerContext*, const ndocker::admin::v1::GetPlanRequest*,
                       ndocker::admin::v1::GetPlanResponse*) override;
  grpc::Status Migrate(grpc::ServerContext*, const ndocker::admin::v1::MigrateRequest*,
                       ndocker::admin::v1::MigrateResponse*) override;
  grpc::Status ListProfiles(grpc::ServerContext*, const ndocker::admin::v1::ListProfilesRequest*,
                            ndocker::admin::v1::ListProfilesResponse*) override;
  grpc::Status GetProfile(grpc::ServerContext*, const ndocker::admin::v1::GetProfileRequest*,
                          ndocker::admin::v1::ProfileResponse*) override;
  grpc::Status ImportProfile(grpc::ServerContext*, const ndocker::admin::v1::ImportProfileRequest*,
                             ndocker::admin::v1::ProfileResponse*) override;
  grpc::Status RemoveProfile(grpc::ServerContext*, const ndocker::admin::v1::GetProfileRequest*,
                             ndocker::admin::v1::RemoveProfileResponse*) override;
  grpc::Status Promote(grpc::ServerContext*, const ndocker::admin::v1::PromoteRequest*,
                       ndocker::admin::v1::HotLayerResponse*) override;
  grpc::Status ListImages(grpc::ServerContext*, const ndocker::admin::v1::ListImagesRequest*,
                          ndocker::admin::v1::ListImagesResponse*) override;
  grpc::Status ListHotLayers(grpc::ServerContext*, const ndocker::admin::v1::ListHotLayersRequest*,
                             ndocker::admin::v1::ListHotLayersResponse*) override;

 private:
  Snapshotter* core_;
  std::string version_;
  PlanLookup plans_;
  ProfileBook* profiles_;
  HotLayerBook* hot_;
};

}  // namespace ndocker
