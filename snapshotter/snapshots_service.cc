#include "snapshotter/snapshots_service.h"

#include "snapshotter/log.h"
#include "snapshotter/timestamp.h"

namespace ndocker {
namespace {

namespace pb = containerd::services::snapshots::v1;

// containerd's List clients read batches; its own service sends 100 per message.
constexpr int kListBatch = 100;

Labels FromProto(const google::protobuf::Map<std::string, std::string>& m) {
  return Labels(m.begin(), m.end());
}

void ToProto(const std::vector<Mount>& mounts,
             google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const Mount& m : mounts) {
    auto* pm = out->Add();
    pm->set_type(m.type);
    pm->set_source(m.source);
    for (const std::string& o : m.options) pm->add_options(o);
  }
}

void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t s;
  int32_t n;
  SplitTime(t, &s, &n);
  ts->set_seconds(s);
  ts->set_nanos(n);
}

void ToProto(const SnapshotInfo& info, pb::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  // Always set: containerd's proxy client reads UNKNOWN as Committed.
  out->set_kind(static_cast<pb::Kind>(info.kind));
  SetTime(info.created, out->mutable_created_at());
  SetTime(info.updated, out->mutable_updated_at());
  out->mutable_labels()->insert(info.labels.begin(), info.labels.end());
}

grpc::Status Reply(const char* rpc, absl::string_view key, const absl::Status& st) {
  if (!st.ok()) {
    auto level = st.code() == absl::StatusCode::kInternal || st.code() == absl::StatusCode::kDataLoss
                     ? spdlog::level::err
                     : spdlog::level::debug;
    spdlog::log(level, "msg=\"{} failed\" key={} code={} error={}", rpc, Q(key),
                absl::StatusCodeToString(st.code()), Q(st.message()));
  }
  return ToGrpcStatus(st);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::Status SnapshotsService::Prepare(grpc::ServerContext*, const PrepareReq* req, PrepareResp* resp) {
  auto mounts = core_->Prepare(req->key(), req->parent(), FromProto(req->labels()));
  if (mounts.ok()) ToProto(*mounts, resp->mutable_mounts());
  return Reply("prepare", req->key(), mounts.status());
}

grpc::Status SnapshotsService::View(grpc::ServerContext*, const ViewReq* req, ViewResp* resp) {
  auto mounts = core_->View(req->key(), req->parent(), FromProto(req->labels()));
  if (mounts.ok()) ToProto(*mounts, resp->mutable_mounts());
  return Reply("view", req->key(), mounts.status());
}

grpc::Status SnapshotsService::Mounts(grpc::ServerContext*, const MountsReq* req, MountsResp* resp) {
  auto mounts = core_->Mounts(req->key());
  if (mounts.ok()) ToProto(*mounts, resp->mutable_mounts());
  return Reply("mounts", req->key(), mounts.status());
}

grpc::Status SnapshotsService::Commit(grpc::ServerContext*, const CommitReq* req,
                                      google::protobuf::Empty*) {
  if (!req->parent().empty()) {
    // containerd 2.2 sends a parent only for parallel unpack, which needs the
    // "rebase" capability this snapshotter does not advertise.
    return Reply("commit", req->key(),
                 absl::UnimplementedError("commit with a new parent (rebase) is not supported"));
  }
  return Reply("commit", req->key(), core_->Commit(req->name(), req->key(), FromProto(req->labels())));
}

grpc::Status SnapshotsService::Remove(grpc::ServerContext*, const RemoveReq* req,
                                      google::protobuf::Empty*) {
  return Reply("remove", req->key(), core_->Remove(req->key()));
}

grpc::Status SnapshotsService::Stat(grpc::ServerContext*, const StatReq* req, StatResp* resp) {
  auto info = core_->Stat(req->key());
  if (info.ok()) ToProto(*info, resp->mutable_info());
  return Reply("stat", req->key(), info.status());
}

grpc::Status SnapshotsService::Update(grpc::ServerContext*, const UpdateReq* req, UpdateResp* resp) {
  // Only name and labels matter; containerd 1.6 sends zero times and a kind
  // that mean nothing here.
  SnapshotInfo in;
  in.name = req->info().name();
  in.labels = FromProto(req->info().labels());
  std::vector<std::string> paths(req->update_mask().paths().begin(), req->update_mask().paths().end());
  auto info = core_->Update(in, paths);
  if (info.ok()) ToProto(*info, resp->mutable_info());
  return Reply("update", in.name, info.status());
}

grpc::Status SnapshotsService::List(grpc::ServerContext* ctx, const ListReq* req,
                                    grpc::ServerWriter<ListResp>* writer) {
  auto filter = Filter::ParseAll({req->filters().begin(), req->filters().end()});
  if (!filter.ok()) return Reply("list", "", filter.status());
  ListResp batch;
  auto flush = [&]() -> absl::Status {
    if (batch.info_size() == 0) return absl::OkStatus();
    if (!writer->Write(batch)) return absl::CancelledError("list: client went away");
    batch.Clear();
    return absl::OkStatus();
  };
  absl::Status st = core_->Walk(*filter, [&](const SnapshotInfo& info) -> absl::Status {
    if (ctx->IsCancelled()) return absl::CancelledError("list cancelled");
    ToProto(info, batch.add_info());
    return batch.info_size() >= kListBatch ? flush() : absl::OkStatus();
  });
  if (st.ok()) st = flush();
  return Reply("list", "", st);
}

grpc::Status SnapshotsService::Usage(grpc::ServerContext*, const UsageReq* req, UsageResp* resp) {
  auto usage = core_->GetUsage(req->key());
  if (usage.ok()) {
    resp->set_size(usage->size);
    resp->set_inodes(usage->inodes);
  }
  return Reply("usage", req->key(), usage.status());
}

grpc::Status SnapshotsService::Cleanup(grpc::ServerContext*, const CleanupReq*,
                                       google::protobuf::Empty*) {
  return Reply("cleanup", "", core_->Cleanup());
}

}  // namespace ndocker
