#include "lass/ingest_ref.h"

#include "absl/strings/ascii.h"
#include "lass/digest.h"

namespace ndocker::lass {

const char* RefKindName(RefKind kind) {
  switch (kind) {
    case RefKind::kIndex: return "index";
    case RefKind::kManifest: return "manifest";
    case RefKind::kConfig: return "config";
    case RefKind::kLayer: return "layer";
    case RefKind::kUnknown: return "unknown";
    case RefKind::kOther: return "other";
  }
  return "other";
}

std::optional<IngestRef> ParseIngestRef(absl::string_view ref) {
  ref = absl::StripAsciiWhitespace(ref);
  if (ref.empty()) return std::nullopt;
  for (char c : ref) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
  }
  IngestRef out;
  out.client_ref = std::string(ref);
  // "<ns>/<n>/" prefix: n is the decimal id of the ingest's bucket. Only strip
  // it when it has that shape, because a ref name after '@' may hold slashes.
  size_t first = ref.find('/');
  size_t second = first == absl::string_view::npos ? first : ref.find('/', first + 1);
  if (second != absl::string_view::npos && second > first + 1) {
    absl::string_view n = ref.substr(first + 1, second - first - 1);
    bool numeric = true;
    for (char c : n) numeric = numeric && absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (numeric && first > 0) {
      out.ns = std::string(ref.substr(0, first));
      out.client_ref = std::string(ref.substr(second + 1));
    }
  }
  absl::string_view client = out.client_ref;
  absl::string_view kind = client.substr(0, client.find('-'));
  if (kind == "index") out.kind = RefKind::kIndex;
  else if (kind == "manifest") out.kind = RefKind::kManifest;
  else if (kind == "config") out.kind = RefKind::kConfig;
  else if (kind == "layer") out.kind = RefKind::kLayer;
  else if (kind == "unknown") out.kind = RefKind::kUnknown;
  // The digest is always last, after '-' (plain) or '@' (named).
  constexpr size_t kDigestLen = 7 + 64;
  if (client.size() > kDigestLen) {
    absl::string_view tail = client.substr(client.size() - kDigestLen);
    char sep = client[client.size() - kDigestLen - 1];
    if ((sep == '-' || sep == '@') && IsSha256Digest(tail)) out.digest = std::string(tail);
  }
  return out;
}

}  // namespace ndocker::lass
