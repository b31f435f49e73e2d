#include "lass/digest.h"

#include <openssl/evp.h>


namespace ndocker::lass {

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsSha256Digest(absl::string_view s) {
  constexpr absl::string_view kPrefix = "sha256:";
  return s.size() == kPrefix.size() + 64 && s.substr(0, kPrefix.size()) == kPrefix &&
         IsHex64(s.substr(kPrefix.size()));
}

absl::StatusOr<std::string> Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("EVP_Digest(sha256) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string ShortDigest(absl::string_view digest) {
  const size_t colon = digest.find(':');
  return std::string(digest.substr(colon == absl::string_view::npos ? 0 : colon + 1, 12));
}

}  // namespace ndocker::lass
