// Digest strings as containerd writes them ("sha256:<64 lowercase hex>") and
// the SHA-256 helper used for chain IDs and blob verification.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ndocker::lass {

// 64 lowercase hex characters: the only name accepted under blobs/sha256 and
// ingest/. Anything else (".", "..", "x/../y", uppercase) is rejected, so a
// validated name can be joined to a store path without escaping it.
bool IsHex64(absl::string_view s);

// "sha256:" followed by IsHex64.
bool IsSha256Digest(absl::string_view s);

// The first 12 hex digits of "sha256:<hex>" (or of any "<alg>:<hex>"), as
// containerd and docker print digests for people.
std::string ShortDigest(absl::string_view digest);

// Lowercase hex SHA-256 of `data` (OpenSSL EVP). Internal only if OpenSSL
// itself fails (out of memory).
absl::StatusOr<std::string> Sha256Hex(absl::string_view data);

}  // namespace ndocker::lass
