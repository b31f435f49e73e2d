#include "lass/image_json.h"

#include <sys/utsname.h>

#include "absl/strings/str_cat.h"
#include "lass/digest.h"
#include "nlohmann/json.hpp"

namespace ndocker::lass {
namespace {

using nlohmann::json;

constexpr absl::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr absl::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr absl::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr absl::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr absl::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr absl::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";

// Parses without exceptions: a malformed blob is an ordinary input here.
std::optional<json> ParseObject(absl::string_view bytes) {
  json doc = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  return doc;
}

std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

ImageJsonKind KindOf(const json& doc) {
  std::string media_type = StringField(doc, "mediaType");
  if (media_type == kOciIndex || media_type == kDockerList) return ImageJsonKind::kIndex;
  if (media_type == kOciManifest || media_type == kDockerManifest) return ImageJsonKind::kManifest;
  if (media_type == kOciConfig || media_type == kDockerConfig) return ImageJsonKind::kConfig;
  // mediaType is optional in OCI documents (and absent from every config), so
  // fall back to the shape.
  auto has = [&](const char* key, json::value_t type) {
    auto it = doc.find(key);
    return it != doc.end() && it->type() == type;
  };
  if (has("manifests", json::value_t::array)) return ImageJsonKind::kIndex;
  if (has("config", json::value_t::object) && has("layers", json::value_t::array)) {
    return ImageJsonKind::kManifest;
  }
  if (has("rootfs", json::value_t::object)) return ImageJsonKind::kConfig;
  return ImageJsonKind::kUnknown;
}

absl::StatusOr<Descriptor> ParseDescriptor(const json& obj, absl::string_view where) {
  if (!obj.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
  Descriptor d;
  d.media_type = StringField(obj, "mediaType");
  d.digest = StringField(obj, "digest");
  if (!IsSha256Digest(d.digest)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": digest \"", d.digest,
                                                   "\" is not sha256:<64 lowercase hex>"));
  }
  auto size = obj.find("size");
  if (size == obj.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing or negative size"));
  }
  d.size = size->get<int64_t>();
  return d;
}

std::optional<Platform> ParsePlatform(const json& entry) {
  auto it = entry.find("platform");
  if (it == entry.end() || !it->is_object()) return std::nullopt;
  return Platform{StringField(*it, "os"), StringField(*it, "architecture"),
                  StringField(*it, "variant")};
}

}  // namespace

const char* ImageJsonKindName(ImageJsonKind kind) {
  switch (kind) {
    case ImageJsonKind::kUnknown: return "unknown";
    case ImageJsonKind::kIndex: return "index";
    case ImageJsonKind::kManifest: return "manifest";
    case ImageJsonKind::kConfig: return "config";
  }
  return "unknown";
}

ImageJsonKind DetectImageJsonKind(absl::string_view bytes) {
  std::optional<json> doc = ParseObject(bytes);
  return doc ? KindOf(*doc) : ImageJsonKind::kUnknown;
}

absl::StatusOr<ImageIndex> ParseImageIndex(absl::string_view bytes) {
  std::optional<json> doc = ParseObject(bytes);
  if (!doc || KindOf(*doc) != ImageJsonKind::kIndex) {
    return absl::InvalidArgumentError("not an image index");
  }
  ImageIndex index;
  const json& manifests = (*doc)["manifests"];
  for (size_t i = 0; i < manifests.size(); ++i) {
    auto d = ParseDescriptor(manifests[i], absl::StrCat("manifests[", i, "]"));
    if (!d.ok()) return d.status();
    index.manifests.push_back(IndexEntry{*std::move(d), ParsePlatform(manifests[i])});
  }
  return index;
}

absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view bytes) {
  std::optional<json> doc = ParseObject(bytes);
  if (!doc || KindOf(*doc) != ImageJsonKind::kManifest) {
    return absl::InvalidArgumentError("not an image manifest");
  }
  ImageManifest m;
  m.media_type = StringField(*doc, "mediaType");
  auto config = ParseDescriptor((*doc)["config"], "config");
  if (!config.ok()) return config.status();
  m.config = *std::move(config);
  const json& layers = (*doc)["layers"];
  if (!layers.is_array()) return absl::InvalidArgumentError("layers: not an array");
  // Every entry is kept, in order: diff_ids in the config line up with the
  // layers by position, so dropping an unfamiliar media type would shift them.
  for (size_t i = 0; i < layers.size(); ++i) {
    auto d = ParseDescriptor(layers[i], absl::StrCat("layers[", i, "]"));
    if (!d.ok()) return d.status();
    m.layers.push_back(*std::move(d));
  }
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view bytes) {
  std::optional<json> doc = ParseObject(bytes);
  if (!doc || KindOf(*doc) != ImageJsonKind::kConfig) {
    return absl::InvalidArgumentError("not an image config");
  }
  ImageConfig c;
  c.platform = Platform{StringField(*doc, "os"), StringField(*doc, "architecture"),
                        StringField(*doc, "variant")};
  const json& rootfs = (*doc)["rootfs"];
  auto diff_ids = rootfs.find("diff_ids");
  if (diff_ids == rootfs.end() || !diff_ids->is_array()) {
    return absl::InvalidArgumentError("rootfs.diff_ids: missing or not an array");
  }
  for (const json& d : *diff_ids) {
    if (!d.is_string() || !IsSha256Digest(d.get<std::string>())) {
      return absl::InvalidArgumentError("rootfs.diff_ids: entry is not sha256:<64 lowercase hex>");
    }
    c.diff_ids.push_back(d.get<std::string>());
  }
  auto history = doc->find("history");
  if (history != doc->end() && history->is_array()) {
    for (const json& h : *history) {
      if (!h.is_object()) continue;
      HistoryEntry e;
      e.created_by = StringField(h, "created_by");
      auto empty = h.find("empty_layer");
      e.empty_layer = empty != h.end() && empty->is_boolean() && empty->get<bool>();
      c.history.push_back(std::move(e));
    }
  }
  return c;
}

Platform PlatformFromMachine(absl::string_view machine) {
  Platform p{"linux", std::string(machine), ""};
  if (machine == "x86_64" || machine == "amd64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64" || machine == "armv8l") {
    p.architecture = "arm64";
  } else if (machine == "armv7l" || machine == "armv7") {
    p = {"linux", "arm", "v7"};
  } else if (machine == "armv6l") {
    p = {"linux", "arm", "v6"};
  } else if (machine == "i386" || machine == "i486" || machine == "i586" || machine == "i686") {
    p.architecture = "386";
  } else if (machine == "ppc64le" || machine == "s390x" || machine == "riscv64" ||
             machine == "mips64" || machine == "loong64") {
    // Same spelling in uname and GOARCH.
  }
  return p;
}

Platform HostPlatform() {
  struct utsname u;
  // uname(2) only fails for a bad pointer; fall back to the common case.
  if (::uname(&u) != 0) return PlatformFromMachine("x86_64");
  return PlatformFromMachine(u.machine);
}

std::optional<Descriptor> SelectManifest(const ImageIndex& index, const Platform& platform) {
  const IndexEntry* exact = nullptr;
  const IndexEntry* no_variant = nullptr;
  const IndexEntry* any_variant = nullptr;
  const IndexEntry* no_platform = nullptr;
  for (const IndexEntry& e : index.manifests) {
    if (!e.platform) {
      if (!no_platform) no_platform = &e;
      continue;
    }
    if (e.platform->os != platform.os || e.platform->architecture != platform.architecture) {
      continue;
    }
    if (e.platform->variant == platform.variant) {
      if (!exact) exact = &e;
    } else if (e.platform->variant.empty()) {
      if (!no_variant) no_variant = &e;
    } else if (!any_variant) {
      any_variant = &e;
    }
  }
  for (const IndexEntry* e : {exact, no_variant, any_variant, no_platform}) {
    if (e) return e->descriptor;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<std::string>> ChainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> chain;
  chain.reserve(diff_ids.size());
  for (const std::string& diff : diff_ids) {
    if (chain.empty()) {
      chain.push_back(diff);
      continue;
    }
    auto hex = Sha256Hex(absl::StrCat(chain.back(), " ", diff));
    if (!hex.ok()) return hex.status();
    chain.push_back(absl::StrCat("sha256:", *hex));
  }
  return chain;
}

}  // namespace ndocker::lass
