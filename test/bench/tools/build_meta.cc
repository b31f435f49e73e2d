// Bench tool (not product code): builds an image's metadata layer with the
// HBCSA promoter core, for test/bench/coldstart-meta.sh.
//   ndocker-bench-build-meta OUT_DIR HOT_LIST LAYER_TOP [LAYER ... LAYER_BOTTOM]
// HOT_LIST: one rootfs path per line ("-" or "" for none). Prints the build
// report as one JSON object on stdout.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "hbcsa/promoter/data_only_layers.h"
#include "hbcsa/promoter/hot_set.h"
#include "hbcsa/promoter/metadata_layer.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT_DIR HOT_LIST LAYER_TOP [... LAYER_BOTTOM]\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  const std::string hot_list = argv[2];
  std::vector<std::string> layers(argv + 3, argv + argc);
  ndocker::hbcsa::HotSet hot;
  if (!hot_list.empty() && hot_list != "-") {
    std::ifstream in(hot_list);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", hot_list.c_str());
      return 1;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) hot.Add(line);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto r = ndocker::hbcsa::BuildMetadataLayer(layers, hot, out, {});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    std::fprintf(stderr, "BuildMetadataLayer: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"seconds\":%.3f,\"hot_paths\":%zu,\"entries\":%lld,\"directories\":%lld,"
      "\"regular_files\":%lld,\"symlinks\":%lld,\"devices\":%lld,\"fifos\":%lld,"
      "\"sockets\":%lld,\"hard_links\":%lld,\"stubs\":%lld,\"hot_files\":%lld,"
      "\"hot_bytes\":%lld,\"hot_not_found\":%lld,\"bytes_on_disk\":%lld,"
      "\"bytes_per_entry\":%.1f,\"mount_options\":\"%s\"}\n",
      secs, hot.size(), static_cast<long long>(r->entries()), static_cast<long long>(r->directories),
      static_cast<long long>(r->regular_files), static_cast<long long>(r->symlinks),
      static_cast<long long>(r->devices), static_cast<long long>(r->fifos),
      static_cast<long long>(r->sockets), static_cast<long long>(r->hard_links),
      static_cast<long long>(r->stubs), static_cast<long long>(r->hot_files),
      static_cast<long long>(r->hot_bytes), static_cast<long long>(r->hot_not_found),
      static_cast<long long>(r->bytes_on_disk), r->bytes_per_entry(),
      ndocker::hbcsa::DataOnlyOverlayOptions(out, layers).c_str());
  return 0;
}
