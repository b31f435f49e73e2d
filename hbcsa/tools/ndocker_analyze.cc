// ndocker-analyze: static analysis of one image in a content store, offline.
//
//   ndocker-analyze [--json] [--platform os/arch[/variant]] CONTENT_ROOT DIGEST
//   ndocker-analyze --watch SECONDS CONTENT_ROOT
//
// CONTENT_ROOT is containerd's content store
// (<containerd root>/io.containerd.content.v1.content) or an OCI image
// layout (both keep blobs under blobs/sha256/). DIGEST names a manifest or an
// index. Prints each layer's class, whether it stays on the fast tier until a
// trace exists, and the evidence. Exit status 0 when the image was analysed
// (unknown layers included), 1 when the image itself cannot be read, 2 for
// usage errors.
//
// --watch runs the daemon's path for SECONDS: lass's content-fetch watcher on
// CONTENT_ROOT and the StaticAdvisor worker on its pull sessions; one JSON
// line per verdict change (chainID, class, provisional, when), as Advise
// would answer it, for timing against a real pull.
#include <csignal>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "hbcsa/image_reader.h"
#include "hbcsa/static_advisor.h"
#include "lass/content_watcher.h"
#include "snapshotter/log.h"
#include "hbcsa/static_analyzer.h"
#include "lass/digest.h"
#include "nlohmann/json.hpp"

namespace {

using ndocker::hbcsa::FileListState;
using ndocker::hbcsa::LayerClassName;

int Usage() {
  std::cerr << "usage: ndocker-analyze [--json] [--platform os/arch[/variant]] CONTENT_ROOT DIGEST\n"
               "       ndocker-analyze --watch SECONDS CONTENT_ROOT\n"
               "  CONTENT_ROOT: <containerd root>/io.containerd.content.v1.content, or an OCI layout\n"
               "  DIGEST:       sha256:<hex> of a manifest or an index\n";
  return 2;
}

std::string Bytes(int64_t n) {
  if (n >= (1 << 20)) return absl::StrFormat("%.1f MiB", static_cast<double>(n) / (1 << 20));
  if (n >= (1 << 10)) return absl::StrFormat("%.1f KiB", static_cast<double>(n) / (1 << 10));
  return absl::StrCat(n, " B");
}

volatile std::sig_atomic_t g_stop = 0;

int Watch(double seconds, const std::string& root) {
  // Logs (logfmt) to stderr; stdout carries only the JSON lines.
  if (absl::Status st = ndocker::InitLogging("info"); !st.ok()) return 1;
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  ndocker::lass::ContentWatcherOptions wo;
  wo.content_root = root;
  auto watcher = ndocker::lass::ContentWatcher::Start(wo);
  if (!watcher.ok()) {
    std::cerr << "ndocker-analyze: " << watcher.status().message() << "\n";
    return 1;
  }
  const ndocker::lass::ContentTracker& tracker = (*watcher)->tracker();
  ndocker::hbcsa::StaticAdvisorOptions so;
  so.content_root = root;
  so.sessions = [&tracker] { return tracker.Sessions(); };
  so.poll_interval = absl::Milliseconds(50);
  ndocker::hbcsa::StaticAdvisor advisor(so);
  struct Seen {
    std::string cls;
    bool provisional = false;
  };
  std::map<std::string, Seen> seen;  // by chainID
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  while (g_stop == 0 && absl::Now() < end) {
    for (const ndocker::lass::PullSession& s : tracker.Sessions()) {
      for (size_t i = 0; i < s.layers.size(); ++i) {
        const ndocker::lass::LayerProgress& l = s.layers[i];
        if (l.chain_id.empty()) continue;
        auto v = advisor.Verdict(l.chain_id);
        if (!v) continue;
        Seen now{LayerClassName(v->layer_class), v->provisional};
        auto it = seen.find(l.chain_id);
        if (it != seen.end() && it->second.cls == now.cls && it->second.provisional == now.provisional) continue;
        seen[l.chain_id] = now;
        ndocker::PlacementRequest req;
        req.unpack_chain_id = l.chain_id;
        auto p = advisor.Advise(req);
        nlohmann::json line = {{"unix_nano", absl::ToUnixNanos(absl::Now())},
                               {"manifest", s.manifest_digest},
                               {"index", i},
                               {"chain_id", l.chain_id},
                               {"blob_state", ndocker::lass::BlobStateName(l.state)},
                               {"download_end_unix_nano", l.download_end == absl::InfinitePast()
                                                              ? 0
                                                              : absl::ToUnixNanos(l.download_end)},
                               {"class", now.cls},
                               {"provisional", now.provisional},
                               {"advice", p ? p->rule : ""}};
        std::cout << line.dump() << std::endl;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  ndocker::lass::Platform platform = ndocker::lass::HostPlatform();
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--watch" && i + 2 < argc) {
      double seconds = 0;
      if (!absl::SimpleAtod(argv[i + 1], &seconds) || seconds <= 0 || i + 3 != argc) return Usage();
      return Watch(seconds, argv[i + 2]);
    } else if (a == "--platform" && i + 1 < argc) {
      std::vector<std::string> p = absl::StrSplit(argv[++i], '/');
      if (p.size() < 2 || p.size() > 3) return Usage();
      platform = {p[0], p[1], p.size() == 3 ? p[2] : ""};
    } else if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return Usage();
    } else {
      args.push_back(a);
    }
  }
  if (args.size() != 2) return Usage();
  const std::string& root = args[0];
  const std::string& digest = args[1];

  auto image = ndocker::hbcsa::ReadStoredImage(root, digest, platform);
  if (!image.ok()) {
    std::cerr << "ndocker-analyze: " << image.status().message() << "\n";
    return 1;
  }
  const size_t n = image->manifest.layers.size();
  std::vector<absl::StatusOr<ndocker::hbcsa::LayerFileList>> files;
  std::vector<absl::Duration> took;
  std::vector<ndocker::hbcsa::LayerInput> inputs;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < n; ++i) {
    const absl::Time t0 = absl::Now();
    files.push_back(ndocker::hbcsa::ReadLayerBlob(root, image->manifest.layers[i].digest));
    took.push_back(absl::Now() - t0);
  }
  for (size_t i = 0; i < n; ++i) {
    ndocker::hbcsa::LayerInput in;
    in.digest = image->manifest.layers[i].digest;
    in.chain_id = image->chain_ids[i];
    if (files[i].ok()) {
      in.state = FileListState::kRead;
      in.files = &*files[i];
    } else {
      in.state = FileListState::kUnreadable;
      in.error = std::string(files[i].status().message());
    }
    inputs.push_back(std::move(in));
  }
  const absl::Time t_analyse = absl::Now();
  const ndocker::hbcsa::ImageAnalysis a = ndocker::hbcsa::AnalyzeImage(image->facts, inputs);
  const absl::Duration analyse = absl::Now() - t_analyse;
  const absl::Duration total = absl::Now() - start;

  int64_t all_compressed = 0, fast_compressed = 0, all_bytes = 0, fast_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    all_compressed += image->manifest.layers[i].size;
    all_bytes += a.layers[i].regular_bytes;
    if (a.layers[i].keep_fast) {
      fast_compressed += image->manifest.layers[i].size;
      fast_bytes += a.layers[i].regular_bytes;
    }
  }

  if (json) {
    nlohmann::json out;
    out["manifest"] = image->manifest_digest;
    out["config"] = image->manifest.config.digest;
    out["entrypoint"] = image->facts.entrypoint;
    out["cmd"] = image->facts.cmd;
    out["working_dir"] = image->facts.working_dir;
    out["notes"] = a.notes;
    out["complete"] = a.complete;
    out["seconds"] = absl::ToDoubleSeconds(total);
    out["analyse_seconds"] = absl::ToDoubleSeconds(analyse);
    out["keep_fast_compressed_bytes"] = fast_compressed;
    out["keep_fast_file_bytes"] = fast_bytes;
    out["compressed_bytes"] = all_compressed;
    out["file_bytes"] = all_bytes;
    out["layers"] = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i) {
      const auto& la = a.layers[i];
      nlohmann::json l;
      l["index"] = i;
      l["digest"] = image->manifest.layers[i].digest;
      l["chain_id"] = image->chain_ids[i];
      l["compressed_size"] = image->manifest.layers[i].size;
      l["class"] = LayerClassName(la.layer_class);
      l["keep_fast"] = la.keep_fast;
      l["file_list"] = ndocker::hbcsa::FileListStateName(la.files);
      l["entries"] = la.entries;
      l["file_bytes"] = la.regular_bytes;
      l["disk_bytes"] = la.disk_bytes;
      l["created_by"] = la.created_by;
      l["read_seconds"] = absl::ToDoubleSeconds(took[i]);
      l["evidence"] = nlohmann::json::array();
      for (const auto& e : la.evidence) {
        l["evidence"].push_back({{"supports", LayerClassName(e.supports)}, {"text", e.text}});
      }
      out["layers"].push_back(std::move(l));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  std::cout << "image " << image->manifest_digest << " (config " << image->manifest.config.digest << ")\n";
  for (const std::string& note : a.notes) std::cout << "  " << note << "\n";
  for (size_t i = 0; i < n; ++i) {
    const auto& la = a.layers[i];
    std::cout << absl::StrFormat("layer %zu %s  %s compressed, %zu entries, %s: %s%s\n", i,
                                 ndocker::lass::ShortDigest(image->manifest.layers[i].digest),
                                 Bytes(image->manifest.layers[i].size), la.entries, Bytes(la.regular_bytes),
                                 LayerClassName(la.layer_class), la.keep_fast ? " (keep fast)" : "");
    if (!la.created_by.empty()) {
      std::string cb = la.created_by.size() > 100 ? la.created_by.substr(0, 97) + "..." : la.created_by;
      std::cout << "    created_by: " << cb << "\n";
    }
    for (const auto& e : la.evidence) std::cout << "    [" << LayerClassName(e.supports) << "] " << e.text << "\n";
  }
  std::cout << absl::StrFormat(
      "keep fast: %s of %s compressed (%.0f%%), %s of %s file bytes; read+analysed in %s (analysis %s)\n",
      Bytes(fast_compressed), Bytes(all_compressed),
      all_compressed > 0 ? 100.0 * static_cast<double>(fast_compressed) / static_cast<double>(all_compressed) : 0.0,
      Bytes(fast_bytes), Bytes(all_bytes), absl::FormatDuration(total), absl::FormatDuration(analyse));
  return 0;
}
