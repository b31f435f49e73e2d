// The `ref` file of an ingest in containerd's local content store:
// "<namespace>/<n>/<client ref>", where the client ref is remotes.MakeRefKey:
// "layer-sha256:<hex>", "manifest-sha256:<hex>", "config-…", "index-…",
// "unknown-…", or "<kind>-<name>@sha256:<hex>" when the descriptor carries
// org.opencontainers.image.ref.name.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace ndocker::lass {

enum class RefKind { kIndex, kManifest, kConfig, kLayer, kUnknown, kOther };
const char* RefKindName(RefKind kind);

struct IngestRef {
  std::string ns;          // containerd namespace ("default", "k8s.io"); empty if the ref had none
  std::string client_ref;  // the part after "<ns>/<n>/"
  RefKind kind = RefKind::kOther;
  std::string digest;  // "sha256:<hex>", empty when the ref names no digest (e.g. `ctr content ingest`)
};

// nullopt for an empty ref or one that is not printable text; a ref that
// only lacks the namespace prefix or a digest still parses.
std::optional<IngestRef> ParseIngestRef(absl::string_view ref);

}  // namespace ndocker::lass
