// ndockerctl: inspect a running ndocker-snapshotter over its admin API.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "snapshotter/config.h"

namespace {

namespace admin = ndocker::admin::v1;

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

int Fail(const grpc::Status& st, const std::string& address) {
  std::cerr << "ndockerctl: " << st.error_message();
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << " (is ndocker-snapshotter running on " << address << "?)";
  }
  std::cerr << "\n";
  return 1;
}

int Status(admin::Admin::Stub& stub, const std::string& address) {
  grpc::ClientContext ctx;
  admin::StatusResponse resp;
  grpc::Status st = stub.Status(&ctx, admin::StatusRequest(), &resp);
  if (!st.ok()) return Fail(st, address);
  std::cout << "ndocker-snapshotter " << resp.version() << ", root " << resp.root() << "\n";
  std::cout << absl::StrFormat("%-5s %-12s %-12s %-12s %-10s %-12s %s\n", "TIER", "USED", "COMMITTED",
                               "BUDGET", "SNAPSHOTS", "FS FREE", "PATH");
  for (const auto& t : resp.tiers()) {
    std::cout << absl::StrFormat("%-5s %-12s %-12s %-12s %-10d %-12s %s\n", t.name(),
                                 HumanBytes(t.used_bytes()), HumanBytes(t.committed_bytes()),
                                 t.budget_bytes() > 0 ? HumanBytes(t.budget_bytes()) : "unlimited",
                                 t.snapshots(), HumanBytes(t.fs_free_bytes()), t.path());
  }
  return 0;
}

int List(admin::Admin::Stub& stub, const std::string& address, bool json) {
  grpc::ClientContext ctx;
  auto reader = stub.ListSnapshots(&ctx, admin::ListSnapshotsRequest());
  admin::ListSnapshotsResponse batch;
  if (!json) {
    std::cout << absl::StrFormat("%-10s %-5s %-12s %-60s %s\n", "KIND", "TIER", "SIZE", "KEY", "PARENT");
  }
  while (reader->Read(&batch)) {
    for (const auto& s : batch.snapshots()) {
      if (json) {
        std::cout << "{\"key\":" << std::quoted(s.key()) << ",\"kind\":\"" << s.kind()
                  << "\",\"parent\":" << std::quoted(s.parent()) << ",\"tier\":\"" << s.tier()
                  << "\",\"size\":" << s.size() << ",\"id\":" << s.id() << "}\n";
      } else {
        std::cout << absl::StrFormat("%-10s %-5s %-12s %-60s %s\n", s.kind(), s.tier(),
                                     s.kind() == "committed" ? HumanBytes(s.size()) : "-", s.key(),
                                     s.parent());
      }
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return Fail(st, address);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ndockerctl: inspect ndocker-snapshotter"};
  std::string address = ndocker::kDefaultAddress;
  app.add_option("--address,-a", address, "the daemon's socket");
  app.require_subcommand(1);
  app.add_subcommand("status", "bytes used, budget and snapshot count per tier");
  auto* ls = app.add_subcommand("ls", "every snapshot with its kind, tier and size");
  bool json = false;
  ls->add_flag("--json", json, "one JSON object per line");
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(absl::StrCat("unix:", address), grpc::InsecureChannelCredentials());
  auto stub = admin::Admin::NewStub(channel);
  if (app.got_subcommand("status")) return Status(*stub, address);
  return List(*stub, address, json);
}
