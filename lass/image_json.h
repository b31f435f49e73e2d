// The three JSON documents of an image as they land in containerd's content
// store: index (manifest list), manifest, and image config. Only the fields
// the placement planner and cold-start code need are kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ndocker::lass {

enum class ImageJsonKind { kUnknown, kIndex, kManifest, kConfig };
const char* ImageJsonKindName(ImageJsonKind kind);  // "unknown", "index", "manifest", "config"

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
};

struct Platform {
  std::string os;
  std::string architecture;  // GOARCH spelling: amd64, arm64, arm, 386, ...
  std::string variant;       // "v7", "v8", or empty
};

struct IndexEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;  // absent in some single-entry indexes
};

struct ImageIndex {
  std::vector<IndexEntry> manifests;
};

struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // manifest order, bottom layer first
};

struct HistoryEntry {
  std::string created_by;
  bool empty_layer = false;  // no layer in rootfs.diff_ids for this step
};

struct ImageConfig {
  Platform platform;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, bottom first
  std::vector<HistoryEntry> history;
};

// What kind of document `bytes` is: by its mediaType when it names one we
// know, else by shape (index: "manifests"; manifest: "config" + "layers";
// config: "rootfs"). kUnknown for anything else, including invalid JSON and
// Docker schema 1 manifests.
ImageJsonKind DetectImageJsonKind(absl::string_view bytes);

// InvalidArgument when the document is not valid JSON, lacks a required field,
// or names a digest that is not "sha256:<64 lowercase hex>" (the only blobs
// the local content store can hold that we track).
absl::StatusOr<ImageIndex> ParseImageIndex(absl::string_view bytes);
absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view bytes);
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view bytes);

// Maps a uname machine string to the GOARCH name containerd uses
// ("x86_64" -> "amd64", "aarch64" -> "arm64", "armv7l" -> "arm" variant v7).
Platform PlatformFromMachine(absl::string_view machine);

// linux + the architecture of the running kernel.
Platform HostPlatform();

// The entry of `index` containerd would pull for `platform`: same os and
// architecture, preferring an exact variant match, then entries without a
// variant, then any variant (arm64 images rarely set "v8"). Entries without a
// platform match only when no entry does. "unknown/unknown" attestation
// manifests never match.
std::optional<Descriptor> SelectManifest(const ImageIndex& index, const Platform& platform);

// containerd's identity.ChainID for each prefix of `diff_ids`:
// chain[0] = diff[0]; chain[i] = "sha256:" + hex(sha256(chain[i-1] + " " + diff[i])).
absl::StatusOr<std::vector<std::string>> ChainIds(const std::vector<std::string>& diff_ids);

}  // namespace ndocker::lass
