// What the content-fetch watcher knows about one image pull: the layers of a
// manifest, how far each blob's download is, and when it ended. Plain values,
// copied out of the watcher so that the planner never holds its lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace ndocker::lass {

enum class BlobState {
  kWaiting,      // in the manifest, not in the store, no ingest yet
  kDownloading,  // an ingest exists; offset/total are live
  kDone,         // in blobs/sha256 (committed by containerd, or present before)
};

const char* BlobStateName(BlobState state);  // "waiting", "downloading", "done"

struct LayerProgress {
  std::string digest;      // compressed blob, "sha256:<hex>"
  std::string media_type;
  int64_t size = 0;        // compressed bytes (manifest)
  std::string diff_id;     // "sha256:<hex>" of the uncompressed tar; empty until the config is read
  std::string chain_id;    // identity.ChainID(diff_ids[0..i]); empty until the config is read
  BlobState state = BlobState::kWaiting;
  int64_t offset = 0;      // bytes written to the ingest so far
  // InfinitePast() when unknown. download_end is the blob's commit time
  // (containerd sets the blob's mtime to it).
  absl::Time download_start = absl::InfinitePast();
  absl::Time download_end = absl::InfinitePast();
  bool present_before = false;  // the blob was in the store before this pull
};

struct PullSession {
  std::string manifest_digest;  // "sha256:<hex>"
  std::string config_digest;
  std::vector<std::string> index_digests;  // indexes seen naming this manifest
  absl::Time started = absl::InfinitePast();  // manifest blob seen
  absl::Time updated = absl::InfinitePast();  // last progress on any of its blobs
  bool config_read = false;  // diff_id/chain_id are filled in
  std::vector<LayerProgress> layers;  // manifest order, bottom layer first
};

// Aggregate download rate over all ingests, from offset samples.
struct BandwidthEstimate {
  double bytes_per_second = 0;  // 0 = no measurement yet
  int active_downloads = 0;     // ingests growing right now
  int max_concurrent_seen = 0;  // most ingests seen growing at once (recent pulls)
};

// Whether the watcher can see the content store, and if not, why.
struct WatcherHealth {
  bool enabled = false;
  bool store_readable = false;
  std::string detail;  // e.g. "watching /var/lib/containerd/io.containerd.content.v1.content"
};

}  // namespace ndocker::lass
