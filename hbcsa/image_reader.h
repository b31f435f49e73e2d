// Reading an image's documents and layer file lists from a content store laid
// out as <root>/blobs/sha256/<hex> (containerd's local store, or an OCI
// layout). Blocking I/O: for the static advisor's worker and the
// ndocker-analyze tool, never the RPC path.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/image_config_facts.h"
#include "hbcsa/layer_files.h"
#include "hbcsa/static_analyzer.h"
#include "lass/image_json.h"

namespace ndocker::hbcsa {

// A JSON blob of the store. NotFound when absent, InvalidArgument when it is
// not a JSON document (or larger than lass::kMaxJsonBlobSize), Unavailable
// while its content does not match its digest yet.
absl::StatusOr<std::string> ReadJsonDocument(const std::string& content_root, const std::string& digest);

absl::StatusOr<ImageConfigFacts> ReadConfigFacts(const std::string& content_root, const std::string& config_digest);

struct StoredImage {
  std::string manifest_digest;
  lass::ImageManifest manifest;
  ImageConfigFacts facts;
  std::vector<std::string> chain_ids;  // one per layer
};

// `digest` names a manifest, or an index (the entry for `platform` is
// taken, through nested indexes).
absl::StatusOr<StoredImage> ReadStoredImage(const std::string& content_root, const std::string& digest,
                                            const lass::Platform& platform = lass::HostPlatform());

struct StoredImageAnalysis {
  StoredImage image;
  std::vector<absl::StatusOr<LayerFileList>> files;  // one per layer
  ImageAnalysis analysis;
};

// Reads every layer's file list (a layer that cannot be read is "unknown")
// and analyses the image.
absl::StatusOr<StoredImageAnalysis> AnalyzeStoredImage(const std::string& content_root, const std::string& digest,
                                                       const LayerReadLimits& limits = {},
                                                       const lass::Platform& platform = lass::HostPlatform());

}  // namespace ndocker::hbcsa
