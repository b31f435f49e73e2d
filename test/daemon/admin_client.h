// The daemon's admin API (ndocker.admin.v1) for the daemon tests: the RPCs
// through gRPC, and ndockerctl as a user runs it.
//
// Migrate (issue 8) is called through the generated descriptor pool by name
// (ndocker.admin.v1.MigrateRequest{snapshot, tier, wait}), so that the tests
// compile against an admin.proto with or without it; without it every call
// returns UNIMPLEMENTED with a message that says so.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/rpc_method.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "test/daemon/tier_fs.h"

#ifndef NDOCKERCTL_BIN
#define NDOCKERCTL_BIN ""
#endif

namespace ndocker::daemon_test {

namespace admin = ndocker::admin::v1;

// $NDOCKERCTL_BIN, else the build's ndockerctl.
inline std::string NdockerctlBinary() {
  const char* env = std::getenv("NDOCKERCTL_BIN");
  if (env != nullptr && *env != '\0') return env;
  return NDOCKERCTL_BIN;
}

// ndockerctl --address SOCKET ARGS...
inline CommandResult Ndockerctl(const std::string& socket, const std::vector<std::string>& args) {
  std::vector<std::string> cmd = {"timeout", "120", NdockerctlBinary(), "--address", socket};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return RunCommand(cmd);
}

// `ndockerctl ls --json`, one object per snapshot (throws when it fails).
inline std::vector<nlohmann::json> LsJson(const std::string& socket) {
  CommandResult r = Ndockerctl(socket, {"ls", "--json"});
  if (!r.ok()) throw std::runtime_error("ndockerctl ls --json failed: " + r.output);
  std::vector<nlohmann::json> out;
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// The ls --json object of `key`, or null.
inline nlohmann::json LsEntry(const std::string& socket, const std::string& key) {
  for (const nlohmann::json& j : LsJson(socket)) {
    if (j.value("key", "") == key) return j;
  }
  return nullptr;
}

class AdminClient {
 public:
  explicit AdminClient(const std::string& socket) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    channel_ = grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
    stub_ = admin::Admin::NewStub(channel_);
  }

  grpc::Status Status(admin::StatusResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Status(&ctx, admin::StatusRequest(), out);
  }

  // Migrate(snapshot, tier, wait). `response` gets the MigrateResponse as
  // text (protobuf debug format).
  grpc::Status Migrate(const std::string& snapshot, const std::string& tier, bool wait,
                       std::string* response = nullptr,
                       std::chrono::seconds deadline = std::chrono::seconds(300)) {
    const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
    const google::protobuf::Descriptor* req_d = pool->FindMessageTypeByName("ndocker.admin.v1.MigrateRequest");
    const google::protobuf::Descriptor* resp_d = pool->FindMessageTypeByName("ndocker.admin.v1.MigrateResponse");
    const google::protobuf::ServiceDescriptor* svc = pool->FindServiceByName("ndocker.admin.v1.Admin");
    if (req_d == nullptr || resp_d == nullptr || svc == nullptr || svc->FindMethodByName("Migrate") == nullptr) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "this build's admin.proto has no rpc Admin.Migrate / ndocker.admin.v1.MigrateRequest "
                          "(the mover of issue 8 is not in this tree yet)");
    }
    google::protobuf::DynamicMessageFactory factory(pool);
    std::unique_ptr<google::protobuf::Message> req(factory.GetPrototype(req_d)->New());
    std::unique_ptr<google::protobuf::Message> resp(factory.GetPrototype(resp_d)->New());
    const google::protobuf::Reflection* r = req->GetReflection();
    auto field = [&](const char* name) -> const google::protobuf::FieldDescriptor* {
      const google::protobuf::FieldDescriptor* f = req_d->FindFieldByName(name);
      if (f == nullptr) throw std::runtime_error(std::string("MigrateRequest has no field ") + name);
      return f;
    };
    r->SetString(req.get(), field("snapshot"), snapshot);
    const google::protobuf::FieldDescriptor* tier_f = field("tier");
    if (tier_f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      r->SetString(req.get(), tier_f, tier);
    } else if (tier_f->type() == google::protobuf::FieldDescriptor::TYPE_ENUM) {
      // e.g. TIER_FAST / FAST: the value whose name ends with the tier, any case.
      const google::protobuf::EnumValueDescriptor* v = nullptr;
      std::string want = tier;
      for (char& c : want) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const google::protobuf::EnumDescriptor* e = tier_f->enum_type();
      for (int i = 0; i < e->value_count(); ++i) {
        const std::string& n = e->value(i)->name();
        if (n.size() >= want.size() && n.compare(n.size() - want.size(), want.size(), want) == 0) v = e->value(i);
      }
      if (v == nullptr) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "test: no enum value for tier " + tier);
      r->SetEnum(req.get(), tier_f, v);
    } else {
      throw std::runtime_error("MigrateRequest.tier is neither a string nor an enum");
    }
    r->SetBool(req.get(), field("wait"), wait);

    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    grpc::internal::RpcMethod method("/ndocker.admin.v1.Admin/Migrate", grpc::internal::RpcMethod::NORMAL_RPC,
                                     channel_);
    grpc::Status st = grpc::internal::BlockingUnaryCall<google::protobuf::Message, google::protobuf::Message>(
        channel_.get(), method, &ctx, *req, resp.get());
    if (response != nullptr) *response = resp->ShortDebugString();
    return st;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<admin::Admin::Stub> stub_;
};

}  // namespace ndocker::daemon_test
