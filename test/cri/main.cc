// ndocker-test-cri: a minimal CRI ImageService client for the integration
// tests (what `crictl pull/inspecti/rmi/images` do, without crictl).
//
//   ndocker-test-cri --address <containerd.sock> pull <ref>
//   ndocker-test-cri --address <containerd.sock> status <ref>   (exit 1: absent)
//   ndocker-test-cri --address <containerd.sock> rm <ref>
//   ndocker-test-cri --address <containerd.sock> ls
//
// Output is one `key=value` per line (easy to read from bash); errors go to
// stderr with the gRPC code and message, exit status 2 (1 = image absent).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "cri_image_service.grpc.pb.h"
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ndocker-test-cri: CRI v1 ImageService client for tests"};
  std::string address;
  int timeout_s = 300;
  app.add_option("--address,-a", address, "containerd's socket (CRI is served on it)")->required();
  app.add_option("--timeout", timeout_s, "deadline of each call in seconds")->capture_default_str();
  app.require_subcommand(1);
  std::string ref;
  auto* pull = app.add_subcommand("pull", "PullImage; prints image_ref= and elapsed_s=");
  pull->add_option("ref", ref, "image reference")->required();
  auto* status = app.add_subcommand("status", "ImageStatus; prints id=, size=, repo_digest=; exit 1 if absent");
  status->add_option("ref", ref, "image reference")->required();
  auto* rm = app.add_subcommand("rm", "RemoveImage");
  rm->add_option("ref", ref, "image reference")->required();
  app.add_subcommand("ls", "ListImages; one line per image: <id> <size> <tags> <digests>");
  CLI11_PARSE(app, argc, argv);

  std::string target = address.rfind("unix:", 0) == 0 ? address : "unix:" + address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto stub = cri::ImageService::NewStub(channel);

  if (app.got_subcommand(pull)) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_s);
    cri::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::PullImageResponse resp;
    auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stub->PullImage(&ctx, req, &resp);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) return Fail("PullImage", st);
    std::cout << "image_ref=" << resp.image_ref() << "\n";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", secs);
    std::cout << "elapsed_s=" << buf << "\n";
    return 0;
  }
  if (app.got_subcommand(status)) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_s);
    cri::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    cri::ImageStatusResponse resp;
    grpc::Status st = stub->ImageStatus(&ctx, req, &resp);
    if (!st.ok()) return Fail("ImageStatus", st);
    if (!resp.has_image() || resp.image().id().empty()) {
      std::cerr << "ndocker-test-cri: image " << ref << " is not present\n";
      return 1;
    }
    PrintImage(resp.image());
    return 0;
  }
  if (app.got_subcommand(rm)) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_s);
    cri::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    cri::RemoveImageResponse resp;
    grpc::Status st = stub->RemoveImage(&ctx, req, &resp);
    if (!st.ok()) return Fail("RemoveImage", st);
    return 0;
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_s);
  cri::ListImagesResponse resp;
  grpc::Status st = stub->ListImages(&ctx, cri::ListImagesRequest(), &resp);
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
