#include "snapshotter/admin_service.h"

#include <sys/statvfs.h>

#include <map>

#include "snapshotter/snapshots_service.h"

namespace ndocker {

grpc::Status AdminService::Status(grpc::ServerContext*, const ndocker::admin::v1::StatusRequest*,
                                  ndocker::admin::v1::StatusResponse* resp) {
  auto stats = core_->Stats();
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  resp->set_version(version_);
  resp->set_root(core_->layout().root());
  for (const TierStats& s : *stats) {
    auto* t = resp->add_tiers();
    t->set_name(std::string(TierName(s.tier)));
    t->set_path(s.path);
    t->set_committed_bytes(s.committed_bytes);
    t->set_used_bytes(s.committed_bytes + s.active_bytes);
    t->set_budget_bytes(s.budget_bytes);
    t->set_snapshots(s.snapshots);
    t->set_retired_copies(s.retired_copies);
    t->set_retired_bytes(s.retired_bytes);
    struct statvfs vfs;
    if (::statvfs(s.path.c_str(), &vfs) == 0) {
      t->set_fs_total_bytes(static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize));
      t->set_fs_free_bytes(static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize));
    }
  }
  if (hot_ != nullptr) {
    absl::StatusOr<HotLayerBook::Totals> hot = hot_->Count();
    if (!hot.ok()) return ToGrpcStatus(hot.status());
    resp->set_hot_layers(hot->versions);
    resp->set_hot_layer_bytes(hot->bytes);
  }
  const StoreHealth health = core_->Health();
  for (const MigrationProgress& m : health.migrations) {
    auto* out = resp->add_migrations();
    out->set_key(m.key);
    out->set_tier(TierName(m.to));
    out->set_state(m.state);
    out->set_bytes_copied(m.bytes_copied);
  }
  resp->set_bytes_migrated(health.bytes_migrated);
  resp->set_bytes_demoted(health.bytes_demoted);
  for (const std::string& k : health.missing) resp->add_missing(k);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListSnapshots(
    grpc::ServerContext*, const ndocker::admin::v1::ListSnapshotsRequest*,
    grpc::ServerWriter<ndocker::admin::v1::ListSnapshotsResponse>* writer) {
  auto entries = core_->Entries();
  if (!entries.ok()) return ToGrpcStatus(entries.status());
  std::map<std::string, std::string> moving;
  for (const MigrationProgress& m : core_->Health().migrations) moving[m.key] = m.state;
  ndocker::admin::v1::ListSnapshotsResponse batch;
  for (const SnapshotEntry& e : *entries) {
    auto* s = batch.add_snapshots();
    s->set_key(e.key);
    s->set_kind(std::string(KindName(e.record.kind)));
    s->set_parent(e.record.parent);
    s->set_tier(std::string(TierName(e.record.tier)));
    s->set_size(e.record.size);
    s->set_inodes(e.record.inodes);
    s->set_id(e.record.id);
    s->set_rule(e.record.placement_rule);
    s->set_reason(e.record.placement_reason);
    s->mutable_labels()->insert(e.record.labels.begin(), e.record.labels.end());
    s->set_generation(e.record.generation);
    for (const RetiredCopy& c : e.record.retired) {
      auto* r = s->add_retired();
      r->set_tier(TierName(c.tier));
      r->set_generation(c.generation);
      r->set_path(core_->layout().SnapshotDir(c.tier, e.record.id, c.generation));
    }
    if (auto it = moving.find(e.key); it != moving.end()) s->set_migration(it->second);
    if (batch.snapshots_size() == 100) {
      if (!writer->Write(batch)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      batch.Clear();
    }
  }
  if (batch.snapshots_size() > 0 && !writer->Write(batch)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetPlan(grpc::ServerContext*, const ndocker::admin::v1::GetPlanRequest* req,
                                   ndocker::admin::v1::GetPlanResponse* resp) {
  if (!plans_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "LASS placement is not running");
  }
  if (req->digest().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a manifest or index digest is required");
  }
  auto plan = plans_(req->digest());
  if (!plan.ok()) return ToGrpcStatus(plan.status());
  *resp = *std::move(plan);
  return grpc::Status::OK;
}

}  // namespace ndocker

namespace ndocker {

grpc::Status AdminService::Migrate(grpc::ServerContext*, const ndocker::admin::v1::MigrateRequest* req,
                                   ndocker::admin::v1::MigrateResponse* resp) {
  if (req->snapshot().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a snapshot key or chainID is required");
  }
  Tier to;
  if (req->tier() == "fast") {
    to = Tier::kFast;
  } else if (req->tier() == "slow") {
    to = Tier::kSlow;
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "tier must be fast or slow");
  }
  auto done = core_->Migrate(req->snapshot(), to, req->wait());
  if (!done.ok()) return ToGrpcStatus(done.status());
  for (const MigrationOutcome& o : *done) {
    auto* r = resp->add_results();
    r->set_key(o.key);
    r->set_from(TierName(o.from));
    r->set_to(TierName(o.to));
    r->set_state(o.state);
  }
  return grpc::Status::OK;
}

namespace {
grpc::Status NoProfiles() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "cold-start tracing is off ([hbcsa] enabled = false): no profiles");
}
}  // namespace

grpc::Status AdminService::ListProfiles(grpc::ServerContext*, const ndocker::admin::v1::ListProfilesRequest*,
                                        ndocker::admin::v1::ListProfilesResponse* resp) {
  if (!profiles_) return NoProfiles();
  auto all = profiles_->ListJson();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (std::string& j : *all) resp->add_profiles_json(std::move(j));
  return grpc::Status::OK;
}

grpc::Status AdminService::GetProfile(grpc::ServerContext*, const ndocker::admin::v1::GetProfileRequest* req,
                                      ndocker::admin::v1::ProfileResponse* resp) {
  if (!profiles_) return NoProfiles();
  auto j = profiles_->GetJson(req->image());
  if (!j.ok()) return ToGrpcStatus(j.status());
  resp->set_profile_json(*std::move(j));
  return grpc::Status::OK;
}

grpc::Status AdminService::ImportProfile(grpc::ServerContext*,
                                         const ndocker::admin::v1::ImportProfileRequest* req,
                                         ndocker::admin::v1::ProfileResponse* resp) {
  if (!profiles_) return NoProfiles();
  auto j = profiles_->ImportJson(req->profile_json());
  if (!j.ok()) return ToGrpcStatus(j.status());
  resp->set_profile_json(*std::move(j));
  return grpc::Status::OK;
}

grpc::Status AdminService::RemoveProfile(grpc::ServerContext*, const ndocker::admin::v1::GetProfileRequest* req,
                                         ndocker::admin::v1::RemoveProfileResponse*) {
  if (!profiles_) return NoProfiles();
  return ToGrpcStatus(profiles_->Remove(req->image()));
}

namespace {
grpc::Status NoHotLayers() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "cold-start tracing is off ([hbcsa] enabled = false): no hot layers");
}
}  // namespace

grpc::Status AdminService::Promote(grpc::ServerContext*, const ndocker::admin::v1::PromoteRequest* req,
                                   ndocker::admin::v1::HotLayerResponse* resp) {
  if (!hot_) return NoHotLayers();
  absl::StatusOr<HotLayerBook::Promotion> p =
      hot_->Promote(req->image(), HotLayerBook::PromoteOptions{req->keep_layers(), req->wait()});
  if (!p.ok()) return ToGrpcStatus(p.status());
  resp->set_hot_json(std::move(p->hot_json));
  for (std::string& k : p->demoted) resp->add_demoted(std::move(k));
  for (std::string& k : p->pinned_fast) resp->add_pinned_fast(std::move(k));
  resp->set_layers_kept_why(std::move(p->layers_kept_why));
  return grpc::Status::OK;
}

grpc::Status AdminService::ListHotLayers(grpc::ServerContext*, const ndocker::admin::v1::ListHotLayersRequest*,
                                         ndocker::admin::v1::ListHotLayersResponse* resp) {
  if (!hot_) return NoHotLayers();
  auto all = hot_->ListJson();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (std::string& j : *all) resp->add_hot_json(std::move(j));
  return grpc::Status::OK;
}

grpc::Status AdminService::ListImages(grpc::ServerContext*, const ndocker::admin::v1::ListImagesRequest*,
                                      ndocker::admin::v1::ListImagesResponse* resp) {
  if (!hot_) return NoHotLayers();
  auto all = hot_->ImagesJson();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (std::string& j : *all) resp->add_image_json(std::move(j));
  return grpc::Status::OK;
}

}  // namespace ndocker
