#include "hbcsa/image_reader.h"

#include "absl/strings/str_cat.h"
#include "lass/digest.h"
#include "lass/store_reader.h"

namespace ndocker::hbcsa {

absl::StatusOr<std::string> ReadJsonDocument(const std::string& content_root, const std::string& digest) {
  if (!lass::IsSha256Digest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", digest, "\" is not sha256:<64 lowercase hex>"));
  }
  auto bytes = lass::ReadJsonBlob(content_root, digest.substr(7));
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(digest, " is not a JSON document of at most ",
                                                   lass::kMaxJsonBlobSize, " bytes"));
  }
  return **std::move(bytes);
}

absl::StatusOr<ImageConfigFacts> ReadConfigFacts(const std::string& content_root, const std::string& config_digest) {
  auto bytes = ReadJsonDocument(content_root, config_digest);
  if (!bytes.ok()) return bytes.status();
  auto facts = ParseImageConfigFacts(*bytes);
  if (!facts.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", config_digest, ": ", facts.status().message()));
  }
  return facts;
}

absl::StatusOr<StoredImage> ReadStoredImage(const std::string& content_root, const std::string& digest,
                                            const lass::Platform& platform) {
  std::string manifest_digest = digest;
  std::string bytes;
  for (int depth = 0;; ++depth) {
    auto doc = ReadJsonDocument(content_root, manifest_digest);
    if (!doc.ok()) return doc.status();
    const lass::ImageJsonKind kind = lass::DetectImageJsonKind(*doc);
    if (kind == lass::ImageJsonKind::kManifest) {
      bytes = *std::move(doc);
      break;
    }
    if (kind != lass::ImageJsonKind::kIndex || depth >= 4) {
      return absl::InvalidArgumentError(absl::StrCat(manifest_digest, " is a ", lass::ImageJsonKindName(kind),
                                                     " document, not a manifest or index"));
    }
    auto index = lass::ParseImageIndex(*doc);
    if (!index.ok()) return index.status();
    auto chosen = lass::SelectManifest(*index, platform);
    if (!chosen) {
      return absl::NotFoundError(absl::StrCat("index ", manifest_digest, " has no manifest for ", platform.os, "/",
                                              platform.architecture));
    }
    manifest_digest = chosen->digest;
  }
  StoredImage image;
  image.manifest_digest = manifest_digest;
  auto manifest = lass::ParseImageManifest(bytes);
  if (!manifest.ok()) return manifest.status();
  image.manifest = *std::move(manifest);
  auto facts = ReadConfigFacts(content_root, image.manifest.config.digest);
  if (!facts.ok()) return facts.status();
  image.facts = *std::move(facts);
  if (image.facts.diff_ids.size() != image.manifest.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("config has ", image.facts.diff_ids.size(), " diff_ids for ",
                                                   image.manifest.layers.size(), " manifest layers"));
  }
  auto chain = lass::ChainIds(image.facts.diff_ids);
  if (!chain.ok()) return chain.status();
  image.chain_ids = *std::move(chain);
  return image;
}

absl::StatusOr<StoredImageAnalysis> AnalyzeStoredImage(const std::string& content_root, const std::string& digest,
                                                       const LayerReadLimits& limits,
                                                       const lass::Platform& platform) {
  auto image = ReadStoredImage(content_root, digest, platform);
  if (!image.ok()) return image.status();
  StoredImageAnalysis out;
  out.image = *std::move(image);
  std::vector<LayerInput> inputs;
  for (size_t i = 0; i < out.image.manifest.layers.size(); ++i) {
    out.files.push_back(ReadLayerBlob(content_root, out.image.manifest.layers[i].digest, limits));
  }
  for (size_t i = 0; i < out.files.size(); ++i) {
    LayerInput in;
    in.digest = out.image.manifest.layers[i].digest;
    in.chain_id = out.image.chain_ids[i];
    if (out.files[i].ok()) {
      in.state = FileListState::kRead;
      in.files = &*out.files[i];
    } else {
      in.state = FileListState::kUnreadable;
      in.error = std::string(out.files[i].status().message());
    }
    inputs.push_back(std::move(in));
  }
  out.analysis = AnalyzeImage(out.image.facts, inputs);
  return out;
}

}  // namespace ndocker::hbcsa
