// ndockerctl: inspect a running ndocker-snapshotter over its admin API.
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "containerd/services/images/v1/images.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "lass/digest.h"
#include "ndocker/admin/v1/admin.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "snapshotter/config.h"

namespace {

namespace admin = ndocker::admin::v1;
namespace images = containerd::services::images::v1;
using nlohmann::json;

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

int Status(admin::Admin::Stub& stub, const std::string& address, bool as_json) {
  grpc::ClientContext ctx;
  admin::StatusResponse resp;
  grpc::Status st = stub.Status(&ctx, admin::StatusRequest(), &resp);
  if (!st.ok()) return Fail(st, address);
  if (as_json) {
    // Every field, zeros included, under its proto name (int64s as JSON
    // strings, the protobuf JSON mapping).
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string text;
    if (auto s = google::protobuf::util::MessageToJsonString(resp, &text, options); !s.ok()) {
      std::cerr << "ndockerctl: status as JSON: " << s.message() << "\n";
      return 1;
    }
    std::cout << text << "\n";
    return 0;
  }
  std::cout << "ndocker-snapshotter " << resp.version() << ", root " << resp.root() << "\n";
  std::cout << absl::StrFormat("%-5s %-12s %-12s %-12s %-10s %-12s %s\n", "TIER", "USED", "COMMITTED",
                               "BUDGET", "SNAPSHOTS", "FS FREE", "PATH");
  for (const auto& t : resp.tiers()) {
    std::cout << absl::StrFormat("%-5s %-12s %-12s %-12s %-10d %-12s %s\n", t.name(),
                                 HumanBytes(t.used_bytes()), HumanBytes(t.committed_bytes()),
                                 t.budget_bytes() > 0 ? HumanBytes(t.budget_bytes()) : "unlimited",
                                 t.snapshots(), HumanBytes(t.fs_free_bytes()), t.path());
  }
  for (const auto& t : resp.tiers()) {
    if (t.retired_copies() > 0) {
      std::cout << "retired copies on " << t.name() << ": " << t.retired_copies() << " ("
                << HumanBytes(t.retired_bytes())
                << "), kept while mounts made before their migration may use them\n";
    }
  }
  if (resp.hot_layers() > 0) {
    std::cout << "hot layers on fast: " << resp.hot_layers() << " (" << HumanBytes(resp.hot_layer_bytes())
              << "), counted against its budget\n";
  }
  std::cout << "migrations in flight: " << resp.migrations_size() << ", migrated since start: "
            << HumanBytes(resp.bytes_migrated()) << " (to slow: " << HumanBytes(resp.bytes_demoted()) << ")\n";
  for (const auto& m : resp.migrations()) {
    std::cout << absl::StrFormat("  %-8s -> %-4s %10s  %s\n", m.state(), m.tier(),
                                 HumanBytes(m.bytes_copied()), m.key());
  }
  if (resp.missing_size() > 0) {
    std::cout << "MISSING: " << resp.missing_size()
              << " snapshot(s) whose data was not found at start (see the daemon log):\n";
    for (const auto& k : resp.missing()) std::cout << "  " << k << "\n";
  }
  return 0;
}

int List(admin::Admin::Stub& stub, const std::string& address, bool json) {
  grpc::ClientContext ctx;
  auto reader = stub.ListSnapshots(&ctx, admin::ListSnapshotsRequest());
  admin::ListSnapshotsResponse batch;
  if (!json) {
    std::cout << absl::StrFormat("%-10s %-5s %-12s %-16s %-4s %-12s %-60s %s\n", "KIND", "TIER", "SIZE",
                                 "RULE", "GEN", "MIGRATION", "KEY", "PARENT");
  }
  while (reader->Read(&batch)) {
    for (const auto& s : batch.snapshots()) {
      std::string migration = s.migration();
      if (migration.empty() && s.retired_size() > 0) migration = absl::StrCat("retired:", s.retired_size());
      if (json) {
        nlohmann::json retired = nlohmann::json::array();
        for (const auto& r : s.retired()) {
          retired.push_back({{"tier", r.tier()}, {"generation", r.generation()}, {"path", r.path()}});
        }
        std::cout << nlohmann::json{{"key", s.key()},   {"kind", s.kind()}, {"parent", s.parent()},
                                    {"tier", s.tier()}, {"size", s.size()}, {"id", s.id()},
                                    {"rule", s.rule()}, {"reason", s.reason()},
                                    {"generation", s.generation()}, {"migration", s.migration()},
                                    {"retired", retired}}
                         .dump()
                  << "\n";
      } else {
        std::cout << absl::StrFormat("%-10s %-5s %-12s %-16s %-4d %-12s %-60s %s\n", s.kind(), s.tier(),
                                     s.kind() == "committed" ? HumanBytes(s.size()) : "-",
                                     s.rule().empty() ? "-" : s.rule(), s.generation(),
                                     migration.empty() ? "-" : migration, s.key(), s.parent());
      }
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return Fail(st, address);
  return 0;
}


// An image name becomes its target digest through containerd's Images
// service; a digest is used as given.
int ResolveDigest(const std::string& what, const std::string& containerd_address,
                  const std::string& ns, std::string* digest) {
  if (absl::StartsWith(what, "sha256:")) {
    *digest = what;
    return 0;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("unix:", containerd_address),
                                     grpc::InsecureChannelCredentials());
  auto stub = images::Images::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns);
  images::GetImageRequest req;
  req.set_name(what);
  images::GetImageResponse resp;
  grpc::Status st = stub->Get(&ctx, req, &resp);
  if (!st.ok()) {
    std::cerr << "ndockerctl: image " << what << " in namespace " << ns << ": " << st.error_message();
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      std::cerr << " (is containerd listening on " << containerd_address << "? see --containerd-address)";
    }
    std::cerr << "\n";
    return 1;
  }
  *digest = resp.image().target().digest();
  return 0;
}

std::string TimeOrDash(int64_t unix_nanos) {
  if (unix_nanos == 0) return "-";
  return absl::FormatTime("%H:%M:%E3S", absl::FromUnixNanos(unix_nanos), absl::LocalTimeZone());
}

std::string Rfc3339OrEmpty(int64_t unix_nanos) {
  if (unix_nanos == 0) return "";
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(unix_nanos), absl::UTCTimeZone());
}

int Plan(admin::Admin::Stub& stub, const std::string& address, const std::string& digest, bool as_json) {
  grpc::ClientContext ctx;
  admin::GetPlanRequest req;
  req.set_digest(digest);
  admin::GetPlanResponse resp;
  grpc::Status st = stub.GetPlan(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  if (as_json) {
    json layers = json::array();
    for (const auto& l : resp.layers()) {
      layers.push_back({{"index", l.index()},
                        {"digest", l.digest()},
                        {"chain_id", l.chain_id()},
                        {"compressed_size", l.compressed_size()},
                        {"unpacked_size", l.unpacked_size()},
                        {"state", l.state()},
                        {"downloaded_bytes", l.downloaded_bytes()},
                        {"download_start", Rfc3339OrEmpty(l.download_start_unix_nano())},
                        {"download_end", Rfc3339OrEmpty(l.download_end_unix_nano())},
                        {"unpack_start", Rfc3339OrEmpty(l.unpack_start_unix_nano())},
                        {"unpack_end", Rfc3339OrEmpty(l.unpack_end_unix_nano())},
                        {"tier", l.tier()},
                        {"rule", l.rule()},
                        {"reason", l.reason()},
                        {"snapshot", l.snapshot_key()},
                        {"class", l.layer_class()},
                        {"class_evidence", std::vector<std::string>(l.class_evidence().begin(), l.class_evidence().end())},
                        {"hot_files", l.hot_files()},
                        {"hot_bytes", l.hot_bytes()}});
    }
    std::cout << json{{"manifest", resp.manifest()},
                      {"config", resp.config()},
                      {"policy", resp.policy()},
                      {"live", resp.live()},
                      {"bandwidth_bytes_per_second", resp.bandwidth_bytes_per_second()},
                      {"profile_version", resp.profile_version()},
                      {"profile_runs", resp.profile_runs()},
                      {"layers", layers}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << "image " << resp.manifest() << " (config " << ndocker::lass::ShortDigest(resp.config()) << "), policy "
            << resp.policy() << (resp.live() ? ", download tracked live" : "") << "\n";
  if (resp.profile_version() > 0) {
    std::cout << "cold-start profile: version " << resp.profile_version() << ", " << resp.profile_runs()
              << " traced run(s); HOT = the profile's files this layer serves\n";
  }
  std::cout << absl::StrFormat("%-3s %-12s %-10s %-10s %-12s %-12s %-12s %-12s %-5s %-11s %-14s %s\n", "#",
                               "BLOB", "COMPRESSED", "UNPACKED", "DL START", "DL END", "UNPACK START",
                               "UNPACK END", "TIER", "CLASS", "HOT", "RULE: REASON");
  for (const auto& l : resp.layers()) {
    const std::string hot =
        resp.profile_version() > 0 ? absl::StrCat(l.hot_files(), " / ", HumanBytes(l.hot_bytes())) : "-";
    std::cout << absl::StrFormat(
        "%-3d %-12s %-10s %-10s %-12s %-12s %-12s %-12s %-5s %-11s %-14s %s\n", l.index(),
        ndocker::lass::ShortDigest(l.digest()), HumanBytes(l.compressed_size()),
        l.unpacked_size() > 0 ? HumanBytes(l.unpacked_size()) : "-", TimeOrDash(l.download_start_unix_nano()),
        TimeOrDash(l.download_end_unix_nano()), TimeOrDash(l.unpack_start_unix_nano()),
        TimeOrDash(l.unpack_end_unix_nano()), l.tier().empty() ? "-" : l.tier(),
        l.layer_class().empty() ? "-" : l.layer_class(), hot,
        l.rule().empty() ? std::string("not placed by LASS (present, or not unpacked yet)")
                         : absl::StrCat(l.rule(), ": ", l.reason()));
    for (const std::string& e : l.class_evidence()) std::cout << "      class evidence: " << e << "\n";
  }
  return 0;
}

int Migrate(admin::Admin::Stub& stub, const std::string& address, const std::string& snapshot,
            const std::string& tier, bool wait) {
  grpc::ClientContext ctx;
  admin::MigrateRequest req;
  req.set_snapshot(snapshot);
  req.set_tier(tier);
  req.set_wait(wait);
  admin::MigrateResponse resp;
  grpc::Status st = stub.Migrate(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  for (const auto& r : resp.results()) {
    std::cout << absl::StrFormat("%-9s %s -> %s  %s\n", r.state(), r.from(), r.to(), r.key());
  }
  return 0;
}

std::string ReadAllOf(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int ProfileList(admin::Admin::Stub& stub, const std::string& address, bool as_json) {
  grpc::ClientContext ctx;
  admin::ListProfilesResponse resp;
  grpc::Status st = stub.ListProfiles(&ctx, admin::ListProfilesRequest(), &resp);
  if (!st.ok()) return Fail(st, address);
  if (!as_json) {
    std::cout << absl::StrFormat("%-19s %-19s %-7s %-5s %-6s %-10s %s\n", "IMAGE", "TOP LAYER", "VERSION", "RUNS",
                                 "FILES", "BYTES", "UPDATED");
  }
  for (const std::string& text : resp.profiles_json()) {
    json p = json::parse(text, nullptr, false);
    if (p.is_discarded()) continue;
    if (as_json) {
      std::cout << p.dump() << "\n";
      continue;
    }
    std::cout << absl::StrFormat("%-19s %-19s %-7d %-5d %-6d %-10s %s\n",
                                 ndocker::lass::ShortDigest(p.value("image", "")),
                                 ndocker::lass::ShortDigest(p.value("top_chain", "")), p.value("version", 0),
                                 p.value("runs", 0), p["files"].size(), HumanBytes(p.value("bytes", int64_t{0})),
                                 TimeOrDash(p.value("updated_unix_nano", int64_t{0})));
  }
  return 0;
}

int ProfileShow(admin::Admin::Stub& stub, const std::string& address, const std::string& image, bool as_json) {
  grpc::ClientContext ctx;
  admin::GetProfileRequest req;
  req.set_image(image);
  admin::ProfileResponse resp;
  grpc::Status st = stub.GetProfile(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  json p = json::parse(resp.profile_json(), nullptr, false);
  if (as_json || p.is_discarded()) {
    std::cout << (p.is_discarded() ? resp.profile_json() : p.dump(2)) << "\n";
    return 0;
  }
  std::cout << "image " << p.value("image", "") << ", top layer " << p.value("top_chain", "") << "\n"
            << "version " << p.value("version", 0) << ", " << p.value("runs", 0) << " traced run(s) ("
            << p.value("incomplete_runs", 0) << " incomplete), " << p["files"].size() << " files, "
            << HumanBytes(p.value("bytes", int64_t{0})) << "\n";
  std::cout << absl::StrFormat("%-4s %-10s %-5s %-14s %s\n", "#", "SIZE", "RUNS", "LAYER", "PATH");
  int i = 0;
  for (const json& f : p["files"]) {
    std::cout << absl::StrFormat("%-4d %-10s %-5d %-14s %s\n", i++, HumanBytes(f.value("size", int64_t{0})),
                                 f.value("runs", 0), ndocker::lass::ShortDigest(f.value("layer", "")),
                                 f.value("path", ""));
  }
  return 0;
}

int ProfileImport(admin::Admin::Stub& stub, const std::string& address, const std::string& file) {
  std::string text;
  if (file == "-") {
    text = ReadAllOf(std::cin);
  } else {
    std::ifstream in(file);
    if (!in) {
      std::cerr << "ndockerctl: cannot read " << file << "\n";
      return 1;
    }
    text = ReadAllOf(in);
  }
  grpc::ClientContext ctx;
  admin::ImportProfileRequest req;
  req.set_profile_json(text);
  admin::ProfileResponse resp;
  grpc::Status st = stub.ImportProfile(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  json p = json::parse(resp.profile_json(), nullptr, false);
  std::cout << "imported profile of " << (p.is_discarded() ? "?" : p.value("image", "")) << ", version "
            << (p.is_discarded() ? 0 : p.value("version", 0)) << "\n";
  return 0;
}

int ProfileRemove(admin::Admin::Stub& stub, const std::string& address, const std::string& image) {
  grpc::ClientContext ctx;
  admin::GetProfileRequest req;
  req.set_image(image);
  admin::RemoveProfileResponse resp;
  grpc::Status st = stub.RemoveProfile(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  return 0;
}

// One line per hot layer version: what a new mount of the image gets is the
// newest "ready" one.
void PrintHotVersions(const json& r) {
  for (const json& v : r.value("versions", json::array())) {
    std::cout << absl::StrFormat("%-19s %-6d %-8s %-7d %-10s %-8d %-6d %-10s %s\n",
                                 ndocker::lass::ShortDigest(r.value("image", "")), v.value("id", 0),
                                 v.value("state", ""), v.value("profile_version", 0),
                                 HumanBytes(v.value("bytes", int64_t{0})), v.value("entries", int64_t{0}),
                                 v.value("hot_files", int64_t{0}), HumanBytes(v.value("hot_bytes", int64_t{0})),
                                 TimeOrDash(v.value("finished_ns", int64_t{0})));
  }
}

void PrintHotHeader() {
  std::cout << absl::StrFormat("%-19s %-6s %-8s %-7s %-10s %-8s %-6s %-10s %s\n", "IMAGE", "ID", "STATE", "PROFILE",
                               "BYTES", "ENTRIES", "HOT", "HOT BYTES", "READY SINCE");
}

int HotList(admin::Admin::Stub& stub, const std::string& address, bool as_json) {
  grpc::ClientContext ctx;
  admin::ListHotLayersResponse resp;
  grpc::Status st = stub.ListHotLayers(&ctx, admin::ListHotLayersRequest(), &resp);
  if (!st.ok()) return Fail(st, address);
  if (!as_json) PrintHotHeader();
  for (const std::string& text : resp.hot_json()) {
    json r = json::parse(text, nullptr, false);
    if (r.is_discarded()) continue;
    if (as_json) {
      std::cout << r.dump() << "\n";
    } else {
      PrintHotVersions(r);
    }
  }
  return 0;
}

int Images(admin::Admin::Stub& stub, const std::string& address, bool as_json) {
  grpc::ClientContext ctx;
  admin::ListImagesResponse resp;
  grpc::Status st = stub.ListImages(&ctx, admin::ListImagesRequest(), &resp);
  if (!st.ok()) return Fail(st, address);
  if (!as_json) {
    std::cout << absl::StrFormat("%-14s %-10s %-8s %-10s %-12s %-12s %-9s %-8s %s\n", "IMAGE", "STATE", "HOT",
                                 "HOT BYTES", "FAST BYTES", "SLOW BYTES", "LAYERS", "PROFILE", "TOP CHAIN");
  }
  for (const std::string& text : resp.image_json()) {
    json i = json::parse(text, nullptr, false);
    if (as_json || i.is_discarded()) {
      std::cout << (i.is_discarded() ? text : i.dump()) << "\n";
      continue;
    }
    const std::string image = i.value("image", "");
    const uint64_t hot = i.value("hot_layer", uint64_t{0});
    std::cout << absl::StrFormat(
        "%-14s %-10s %-8s %-10s %-12s %-12s %-9s %-8s %s\n", ndocker::lass::ShortDigest(image), i.value("state", ""),
        hot == 0 ? std::string("-") : absl::StrCat(hot), hot == 0 ? std::string("-") : HumanBytes(i.value("hot_bytes", int64_t{0})),
        HumanBytes(i.value("fast_bytes", int64_t{0})), HumanBytes(i.value("slow_bytes", int64_t{0})),
        absl::StrCat(i.value("layers_fast", 0), "f/", i.value("layers", 0) - i.value("layers_fast", 0), "s"),
        absl::StrCat("v", i.value("profile_version", uint64_t{0}), "x", i.value("profile_runs", 0)),
        ndocker::lass::ShortDigest(i.value("top_chain", "")));
  }
  return 0;
}

struct PromoteFlags {
  bool as_json = false;
  bool keep_layers = false;
  bool wait = false;
};

int Promote(admin::Admin::Stub& stub, const std::string& address, const std::string& image,
            const PromoteFlags& flags) {
  grpc::ClientContext ctx;
  admin::PromoteRequest req;
  req.set_image(image);
  req.set_keep_layers(flags.keep_layers);
  req.set_wait(flags.wait);
  admin::HotLayerResponse resp;
  grpc::Status st = stub.Promote(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, address);
  json r = json::parse(resp.hot_json(), nullptr, false);
  if (flags.as_json) {
    json out = r.is_discarded() ? json(resp.hot_json()) : r;
    out["demoted"] = json(std::vector<std::string>(resp.demoted().begin(), resp.demoted().end()));
    out["pinned_fast"] = json(std::vector<std::string>(resp.pinned_fast().begin(), resp.pinned_fast().end()));
    if (!resp.layers_kept_why().empty()) out["layers_kept_why"] = resp.layers_kept_why();
    std::cout << out.dump() << "\n";
    return 0;
  }
  if (r.is_discarded()) {
    std::cout << resp.hot_json() << "\n";
  } else {
    PrintHotHeader();
    PrintHotVersions(r);
  }
  if (!resp.layers_kept_why().empty()) {
    std::cout << "layers kept where they are: " << resp.layers_kept_why() << "\n";
  } else {
    std::cout << "layers " << (flags.wait ? "moved" : "queued to move") << " to slow: " << resp.demoted_size()
              << (resp.pinned_fast_size() > 0
                      ? absl::StrCat(", kept on fast by the ndocker.tier label: ", resp.pinned_fast_size())
                      : std::string())
              << "\n";
    for (const std::string& k : resp.demoted()) std::cout << "  " << k << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ndockerctl: inspect ndocker-snapshotter"};
  std::string address = ndocker::kDefaultAddress;
  app.add_option("--address,-a", address, "the daemon's socket");
  app.require_subcommand(1);
  auto* status = app.add_subcommand(
      "status", "bytes used, budget and snapshot count per tier; hot layers, bytes demoted, migrations in flight");
  bool status_json = false;
  status->add_flag("--json", status_json, "the whole status as one JSON object");
  auto* ls = app.add_subcommand("ls", "every snapshot with its kind, tier and size");
  bool json = false;
  ls->add_flag("--json", json, "one JSON object per line");
  auto* plan = app.add_subcommand("plan", "per layer of a pulled image: download, unpack, tier and why, static class, hot files");
  std::string image;
  std::string containerd_address = "/run/containerd/containerd.sock";
  std::string ns = "default";
  bool plan_json = false;
  plan->add_option("image", image, "image name (resolved through containerd) or manifest/index digest")
      ->required();
  plan->add_option("--containerd-address", containerd_address, "containerd's socket, to resolve a name");
  plan->add_option("--namespace,-n", ns, "containerd namespace of the image name (CRI: k8s.io)");
  plan->add_flag("--json", plan_json, "JSON output");
  auto* migrate = app.add_subcommand(
      "migrate", "move committed snapshots to a tier (safe while containers run from them)");
  std::string snapshot, tier;
  bool wait = false;
  migrate->add_option("snapshot", snapshot, "snapshot key, or a chainID (sha256:…) matching its committed layers")
      ->required();
  migrate->add_option("tier", tier, "fast or slow")->required()->check(CLI::IsMember({"fast", "slow"}));
  migrate->add_flag("--wait", wait, "return when the data has switched tiers (else it is queued)");
  auto* profile = app.add_subcommand("profile", "hot-file profiles of traced cold starts (HBCSA)");
  profile->require_subcommand(1);
  auto* profile_ls = profile->add_subcommand("ls", "every image's profile: version, runs, files, bytes");
  bool profile_json = false;
  profile_ls->add_flag("--json", profile_json, "one JSON object per line");
  std::string profile_image, profile_file;
  auto* profile_show = profile->add_subcommand("show", "the files of one image's profile");
  profile_show->add_option("image", profile_image, "image name (via containerd), manifest/index digest or top chainID")
      ->required();
  profile_show->add_flag("--json", profile_json, "JSON (the export format)");
  auto* profile_export = profile->add_subcommand("export", "print one image's profile as JSON (for profile import)");
  profile_export->add_option("image", profile_image, "image name, digest or top chainID")->required();
  auto* profile_import = profile->add_subcommand("import", "store a profile exported on another node");
  profile_import->add_option("file", profile_file, "JSON file, or - for stdin")->required();
  auto* profile_rm = profile->add_subcommand("rm", "forget one image's profile");
  profile_rm->add_option("image", profile_image, "image name, digest or top chainID")->required();
  for (auto* sub : {profile_show, profile_export, profile_rm}) {
    sub->add_option("--containerd-address", containerd_address, "containerd's socket, to resolve a name");
    sub->add_option("--namespace,-n", ns, "containerd namespace of the image name (CRI: k8s.io)");
  }
  auto* promote = app.add_subcommand(
      "promote",
      "build an image's hot layer from its cold-start profile (HBCSA; waits for the build), then demote its "
      "fast-tier layers");
  std::string promote_image;
  PromoteFlags promote_flags;
  promote->add_option("image", promote_image, "image name (via containerd), manifest/index digest or top chainID")
      ->required();
  promote->add_option("--containerd-address", containerd_address, "containerd's socket, to resolve a name");
  promote->add_option("--namespace,-n", ns, "containerd namespace of the image name (CRI: k8s.io)");
  promote->add_flag("--json", promote_flags.as_json, "the image's hot layer record and the demotion as JSON");
  promote->add_flag("--wait", promote_flags.wait, "return when the demoted layers have switched tiers");
  promote->add_flag("--keep-layers", promote_flags.keep_layers, "build the hot layer, demote nothing");
  auto* images = app.add_subcommand(
      "images", "per image with a profile or a hot layer: state, hot layer, bytes on fast and slow (HBCSA)");
  bool images_json = false;
  images->add_flag("--json", images_json, "one JSON object per image and line");
  auto* hot = app.add_subcommand("hot", "hot layers built from cold-start profiles (HBCSA)");
  hot->require_subcommand(1);
  auto* hot_ls = hot->add_subcommand("ls", "every image's hot layer versions: state, bytes, hot files");
  bool hot_json = false;
  hot_ls->add_flag("--json", hot_json, "one JSON record per image and line");
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(absl::StrCat("unix:", address), grpc::InsecureChannelCredentials());
  auto stub = admin::Admin::NewStub(channel);
  if (app.got_subcommand("status")) return Status(*stub, address, status_json);
  if (app.got_subcommand("migrate")) return Migrate(*stub, address, snapshot, tier, wait);
  if (app.got_subcommand("profile")) {
    if (profile->got_subcommand("ls")) return ProfileList(*stub, address, profile_json);
    if (profile->got_subcommand("import")) return ProfileImport(*stub, address, profile_file);
    std::string digest;
    if (int rc = ResolveDigest(profile_image, containerd_address, ns, &digest); rc != 0) return rc;
    if (profile->got_subcommand("show")) return ProfileShow(*stub, address, digest, profile_json);
    if (profile->got_subcommand("export")) return ProfileShow(*stub, address, digest, /*as_json=*/true);
    return ProfileRemove(*stub, address, digest);
  }
  if (app.got_subcommand("hot")) return HotList(*stub, address, hot_json);
  if (app.got_subcommand("images")) return Images(*stub, address, images_json);
  if (app.got_subcommand("promote")) {
    std::string digest;
    if (int rc = ResolveDigest(promote_image, containerd_address, ns, &digest); rc != 0) return rc;
    return Promote(*stub, address, digest, promote_flags);
  }
  if (app.got_subcommand("plan")) {
    std::string digest;
    if (int rc = ResolveDigest(image, containerd_address, ns, &digest); rc != 0) return rc;
    return Plan(*stub, address, digest, plan_json);
  }
  return List(*stub, address, json);
}
