// Reading containerd's local content store from the outside: small metadata
// files of an ingest, the size of its data, and blobs. Every path is built
// from the content root and a name the caller has checked with IsHex64, and
// every open uses O_NOFOLLOW so a planted symlink cannot redirect a read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndocker::lass {

// Largest blob read as a possible index/manifest/config.
inline constexpr int64_t kMaxJsonBlobSize = 4 << 20;

// A regular file's content, at most `max_bytes`. NotFound for ENOENT,
// FailedPrecondition for a non-regular file or one larger than `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, int64_t max_bytes);

// The lower-case hex names in `dir` (64 characters each); other entries are
// skipped. NotFound when `dir` does not exist.
absl::StatusOr<std::vector<std::string>> ListHex64Names(const std::string& dir);

struct IngestMeta {
  std::string ref;                             // empty until written
  int64_t total = 0;                           // 0 = unknown
  absl::Time started_at = absl::InfinitePast();  // InfinitePast until written
  // containerd writes ref, startedat, updatedat, total, then creates data;
  // the metadata is complete once ref and startedat are readable and total
  // exists or data does (no total file then means "size unknown").
  bool complete = false;
};

// What `<content_root>/ingest/<name>/` holds so far. NotFound when the folder
// is gone.
absl::StatusOr<IngestMeta> ReadIngestMeta(const std::string& content_root, const std::string& name);

// Size of `<content_root>/ingest/<name>/data`; NotFound while it does not
// exist (not yet created, or just renamed into blobs/).
absl::StatusOr<int64_t> IngestDataSize(const std::string& content_root, const std::string& name);

struct BlobInfo {
  int64_t size = 0;
  absl::Time mtime;  // containerd sets it to the commit time
};

// lstat of `<content_root>/blobs/sha256/<hex>`. FailedPrecondition when it is
// not a regular file (a symlink is never followed).
absl::StatusOr<BlobInfo> StatBlob(const std::string& content_root, const std::string& hex);

// The bytes of a blob that may be an image JSON document: at most
// kMaxJsonBlobSize and first byte '{'; nullopt otherwise. Unavailable when the
// content's sha256 is not `hex` yet (a blob still being written in place).
absl::StatusOr<std::optional<std::string>> ReadJsonBlob(const std::string& content_root,
                                                        const std::string& hex);

}  // namespace ndocker::lass
