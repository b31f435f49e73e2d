// ndocker-test-cri: a minimal CRI v1 client for the integration tests (what
// crictl does, without crictl): images through the ImageService, pod
// sandboxes and containers through the RuntimeService, both served by
// containerd's CRI plugin on containerd's socket (namespace k8s.io).
//
//   ndocker-test-cri --address <containerd.sock> pull <ref>         image_ref=, elapsed_s=
//   ndocker-test-cri --address <containerd.sock> status <ref>       id=, size=, repo_tag=, repo_digest= (exit 1: absent)
//   ndocker-test-cri --address <containerd.sock> rmi <ref>
//   ndocker-test-cri --address <containerd.sock> ls                 <id> <size> <tags> <digests>
//   ndocker-test-cri --address <containerd.sock> version            runtime_name=, runtime_version=, runtime_api_version=
//   ndocker-test-cri --address <containerd.sock> runp <pod.json>    pod_id=
//   ndocker-test-cri --address <containerd.sock> stopp <pod_id>
//   ndocker-test-cri --address <containerd.sock> rmp <pod_id>
//   ndocker-test-cri --address <containerd.sock> pods               <id> <state> <namespace>/<name>
//   ndocker-test-cri --address <containerd.sock> create <pod_id> <container.json> <pod.json>   container_id=
//   ndocker-test-cri --address <containerd.sock> start <id>
//   ndocker-test-cri --address <containerd.sock> stop <id> [--grace S]
//   ndocker-test-cri --address <containerd.sock> rm <id>
//   ndocker-test-cri --address <containerd.sock> ps [--pod <pod_id>] <id> <pod_id> <state> <name> <image_ref>
//   ndocker-test-cri --address <containerd.sock> inspect <id> [--verbose]   id=, state=, exit_code=, ... (exit 1: absent)
//
// Pod and container configs are JSON files in crictl's format: the CRI
// messages PodSandboxConfig and ContainerConfig with proto field names
// ("metadata", "log_directory", "linux": {"cgroup_parent", "security_context":
// {"namespace_options": {"network": "NODE"}}}, "image": {"image": REF},
// "command", "args", "envs": [{"key", "value"}], "log_path", ...); enums by
// name or number. A field this client's subset of the API does not know is
// an error (never silently dropped).
//
// Output is one `key=value` per line (easy to read from bash); errors go to
// stderr with the gRPC code and message, exit status 2 (1 = image or
// container absent).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "cri_api.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace cri = runtime::v1;

int Fail(const char* what, const grpc::Status& st) {
  std::cerr << "ndocker-test-cri: " << what << ": code " << static_cast<int>(st.error_code()) << ": "
            << st.error_message() << "\n";
  return 2;
}

void SetDeadline(grpc::ClientContext& ctx, int timeout_s) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
}

void PrintImage(const cri::Image& img) {
  std::cout << "id=" << img.id() << "\n";
  std::cout << "size=" << img.size() << "\n";
  for (const auto& t : img.repo_tags()) std::cout << "repo_tag=" << t << "\n";
  for (const auto& d : img.repo_digests()) std::cout << "repo_digest=" << d << "\n";
}

// Reads a JSON file into a CRI message (proto3 JSON mapping: proto or
// lowerCamelCase field names, enums by name or number; unknown fields are
// errors). Prints why on failure.
bool ReadJsonMessage(const std::string& file, google::protobuf::Message* msg) {
  std::ifstream in(file);
  if (!in) {
    std::cerr << "ndocker-test-cri: cannot read " << file << "\n";
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(ss.str(), msg, opts);
  if (!st.ok()) {
    std::cerr << "ndocker-test-cri: " << file << " is not a valid " << msg->GetDescriptor()->name()
              << " (JSON, proto field names; fields outside this client's CRI subset are refused): "
              << st.ToString() << "\n";
    return false;
  }
  return true;
}

// One line, for key=value output (containerd's verbose info is JSON).
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ndocker-test-cri: CRI v1 client (images, pod sandboxes, containers) for tests"};
  std::string address;
  int timeout_s = 300;
  app.add_option("--address,-a", address, "containerd's socket (CRI is served on it)")->required();
  app.add_option("--timeout", timeout_s, "deadline of each call in seconds")->capture_default_str();
  app.require_subcommand(1);

  // ImageService
  std::string ref;
  auto* pull = app.add_subcommand("pull", "PullImage; prints image_ref= and elapsed_s=");
  pull->add_option("ref", ref, "image reference")->required();
  auto* status = app.add_subcommand("status", "ImageStatus; prints id=, size=, repo_digest=; exit 1 if absent");
  status->add_option("ref", ref, "image reference")->required();
  auto* rmi = app.add_subcommand("rmi", "RemoveImage");
  rmi->add_option("ref", ref, "image reference")->required();
  auto* ls = app.add_subcommand("ls", "ListImages; one line per image: <id> <size> <tags> <digests>");

  // RuntimeService
  std::string id, pod_file, ctr_file;
  auto* version = app.add_subcommand("version", "Version; prints runtime_name=, runtime_version=, runtime_api_version=");
  std::string runtime_handler;
  auto* runp = app.add_subcommand("runp", "RunPodSandbox; prints pod_id=");
  runp->add_option("pod-config", pod_file, "PodSandboxConfig as JSON")->required();
  runp->add_option("--runtime-handler", runtime_handler, "runtime handler (default: containerd's default runtime)");
  auto* stopp = app.add_subcommand("stopp", "StopPodSandbox (its containers are stopped too)");
  stopp->add_option("pod_id", id, "pod sandbox id")->required();
  auto* rmp = app.add_subcommand("rmp", "RemovePodSandbox (its containers are removed too)");
  rmp->add_option("pod_id", id, "pod sandbox id")->required();
  auto* pods = app.add_subcommand("pods", "ListPodSandbox; one line per pod: <id> <state> <namespace>/<name>");
  std::string pod_id;
  auto* create = app.add_subcommand("create", "CreateContainer in a pod sandbox; prints container_id=");
  create->add_option("pod_id", pod_id, "pod sandbox id")->required();
  create->add_option("container-config", ctr_file, "ContainerConfig as JSON")->required();
  create->add_option("pod-config", pod_file, "the PodSandboxConfig the pod was run with, as JSON")->required();
  auto* start = app.add_subcommand("start", "StartContainer");
  start->add_option("id", id, "container id")->required();
  int64_t grace_s = 0;
  auto* stop = app.add_subcommand("stop", "StopContainer");
  stop->add_option("id", id, "container id")->required();
  stop->add_option("--grace", grace_s, "seconds between SIGTERM and SIGKILL (0: SIGKILL at once)")
      ->capture_default_str();
  auto* rm = app.add_subcommand("rm", "RemoveContainer");
  rm->add_option("id", id, "container id")->required();
  auto* ps = app.add_subcommand("ps", "ListContainers; one line each: <id> <pod_id> <state> <name> <image_ref>");
  ps->add_option("--pod", pod_id, "only the containers of this pod sandbox");
  bool verbose = false;
  auto* inspect = app.add_subcommand(
      "inspect", "ContainerStatus; prints id=, name=, state=, exit_code=, created_at=, started_at=, finished_at=, "
                 "reason=, message=, image=, image_ref=, log_path=; exit 1 if absent");
  inspect->add_option("id", id, "container id")->required();
  inspect->add_flag("--verbose", verbose, "also info.<key>=<JSON> (pid, runtime spec, ...)");
  CLI11_PARSE(app, argc, argv);

  std::string target = address.rfind("unix:", 0) == 0 ? address : "unix:" + address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto images = cri::ImageService::NewStub(channel);
  auto runtime = cri::RuntimeService::NewStub(channel);
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_s);

  // ---- ImageService
  if (app.got_subcommand(pull)) {
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::PullImageResponse resp;
    auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = images->PullImage(&ctx, req, &resp);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) return Fail("PullImage", st);
    std::cout << "image_ref=" << resp.image_ref() << "\n";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", secs);
    std::cout << "elapsed_s=" << buf << "\n";
    return 0;
  }
  if (app.got_subcommand(status)) {
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    cri::ImageStatusResponse resp;
    grpc::Status st = images->ImageStatus(&ctx, req, &resp);
    if (!st.ok()) return Fail("ImageStatus", st);
    if (!resp.has_image() || resp.image().id().empty()) {
      std::cerr << "ndocker-test-cri: image " << ref << " is not present\n";
      return 1;
    }
    PrintImage(resp.image());
    return 0;
  }
  if (app.got_subcommand(rmi)) {
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::RemoveImageResponse resp;
    grpc::Status st = images->RemoveImage(&ctx, req, &resp);
    if (!st.ok()) return Fail("RemoveImage", st);
    return 0;
  }
  if (app.got_subcommand(ls)) {
    cri::ListImagesResponse resp;
    grpc::Status st = images->ListImages(&ctx, cri::ListImagesRequest(), &resp);
    if (!st.ok()) return Fail("ListImages", st);
    for (const auto& img : resp.images()) {
      std::string tags, digests;
      for (const auto& t : img.repo_tags()) tags += (tags.empty() ? "" : ",") + t;
      for (const auto& d : img.repo_digests()) digests += (digests.empty() ? "" : ",") + d;
      std::cout << img.id() << " " << img.size() << " " << (tags.empty() ? "-" : tags) << " "
                << (digests.empty() ? "-" : digests) << "\n";
    }
    return 0;
  }

  // ---- RuntimeService
  if (app.got_subcommand(version)) {
    cri::VersionRequest req;
    req.set_version("v1");
    cri::VersionResponse resp;
    grpc::Status st = runtime->Version(&ctx, req, &resp);
    if (!st.ok()) return Fail("Version", st);
    std::cout << "runtime_name=" << resp.runtime_name() << "\n"
              << "runtime_version=" << resp.runtime_version() << "\n"
              << "runtime_api_version=" << resp.runtime_api_version() << "\n";
    return 0;
  }
  if (app.got_subcommand(runp)) {
    cri::RunPodSandboxRequest req;
    if (!ReadJsonMessage(pod_file, req.mutable_config())) return 2;
    req.set_runtime_handler(runtime_handler);
    cri::RunPodSandboxResponse resp;
    grpc::Status st = runtime->RunPodSandbox(&ctx, req, &resp);
    if (!st.ok()) return Fail("RunPodSandbox", st);
    std::cout << "pod_id=" << resp.pod_sandbox_id() << "\n";
    return 0;
  }
  if (app.got_subcommand(stopp)) {
    cri::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::StopPodSandboxResponse resp;
    grpc::Status st = runtime->StopPodSandbox(&ctx, req, &resp);
    return st.ok() ? 0 : Fail("StopPodSandbox", st);
  }
  if (app.got_subcommand(rmp)) {
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(id);
    cri::RemovePodSandboxResponse resp;
    grpc::Status st = runtime->RemovePodSandbox(&ctx, req, &resp);
    return st.ok() ? 0 : Fail("RemovePodSandbox", st);
  }
  if (app.got_subcommand(pods)) {
    cri::ListPodSandboxResponse resp;
    grpc::Status st = runtime->ListPodSandbox(&ctx, cri::ListPodSandboxRequest(), &resp);
    if (!st.ok()) return Fail("ListPodSandbox", st);
    for (const auto& p : resp.items()) {
      std::cout << p.id() << " " << cri::PodSandboxState_Name(p.state()) << " " << p.metadata().namespace_() << "/"
                << p.metadata().name() << "\n";
    }
    return 0;
  }
  if (app.got_subcommand(create)) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    if (!ReadJsonMessage(ctr_file, req.mutable_config())) return 2;
    if (!ReadJsonMessage(pod_file, req.mutable_sandbox_config())) return 2;
    cri::CreateContainerResponse resp;
    grpc::Status st = runtime->CreateContainer(&ctx, req, &resp);
    if (!st.ok()) return Fail("CreateContainer", st);
    std::cout << "container_id=" << resp.container_id() << "\n";
    return 0;
  }
  if (app.got_subcommand(start)) {
    cri::StartContainerRequest req;
    req.set_container_id(id);
    cri::StartContainerResponse resp;
    grpc::Status st = runtime->StartContainer(&ctx, req, &resp);
    return st.ok() ? 0 : Fail("StartContainer", st);
  }
  if (app.got_subcommand(stop)) {
    cri::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(grace_s);
    cri::StopContainerResponse resp;
    grpc::Status st = runtime->StopContainer(&ctx, req, &resp);
    return st.ok() ? 0 : Fail("StopContainer", st);
  }
  if (app.got_subcommand(rm)) {
    cri::RemoveContainerRequest req;
    req.set_container_id(id);
    cri::RemoveContainerResponse resp;
    grpc::Status st = runtime->RemoveContainer(&ctx, req, &resp);
    return st.ok() ? 0 : Fail("RemoveContainer", st);
  }
  if (app.got_subcommand(ps)) {
    cri::ListContainersRequest req;
    if (!pod_id.empty()) req.mutable_filter()->set_pod_sandbox_id(pod_id);
    cri::ListContainersResponse resp;
    grpc::Status st = runtime->ListContainers(&ctx, req, &resp);
    if (!st.ok()) return Fail("ListContainers", st);
    for (const auto& c : resp.containers()) {
      std::cout << c.id() << " " << c.pod_sandbox_id() << " " << cri::ContainerState_Name(c.state()) << " "
                << c.metadata().name() << " " << (c.image_ref().empty() ? "-" : c.image_ref()) << "\n";
    }
    return 0;
  }
  // inspect
  cri::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  cri::ContainerStatusResponse resp;
  grpc::Status st = runtime->ContainerStatus(&ctx, req, &resp);
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
    std::cerr << "ndocker-test-cri: container " << id << " is not present: " << st.error_message() << "\n";
    return 1;
  }
  if (!st.ok()) return Fail("ContainerStatus", st);
  const cri::ContainerStatus& s = resp.status();
  std::cout << "id=" << s.id() << "\n"
            << "name=" << s.metadata().name() << "\n"
            << "state=" << cri::ContainerState_Name(s.state()) << "\n"
            << "exit_code=" << s.exit_code() << "\n"
            << "created_at=" << s.created_at() << "\n"
            << "started_at=" << s.started_at() << "\n"
            << "finished_at=" << s.finished_at() << "\n"
            << "reason=" << s.reason() << "\n"
            << "message=" << OneLine(s.message()) << "\n"
            << "image=" << s.image().image() << "\n"
            << "image_ref=" << s.image_ref() << "\n"
            << "log_path=" << s.log_path() << "\n";
  for (const auto& [k, v] : resp.info()) std::cout << "info." << k << "=" << OneLine(v) << "\n";
  return 0;
}
