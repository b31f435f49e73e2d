// Daemon configuration: TOML file, then command-line overrides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

inline constexpr char kDefaultConfigPath[] = "/etc/ndocker-snapshotter/config.toml";
inline constexpr char kDefaultRoot[] = "/var/lib/ndocker-snapshotter";
inline constexpr char kDefaultAddress[] = "/run/ndocker-snapshotter/ndocker.sock";

// LASS: placement of unpacked layers from the live download state (lass/).
struct LassConfig {
  bool enabled = true;
  std::string policy = "ldl";  // "ldl" or "predict"
  // containerd's root; the watcher follows <root>/io.containerd.content.v1.content.
  std::string containerd_root = "/var/lib/containerd";
  // How many layer downloads a pull runs at once (CRI's max_concurrent_downloads).
  // The planner uses the larger of this and what it has seen.
  int max_concurrent_downloads = 3;
  // Slow-tier write-back rate the `predict` policy assumes until measured.
  int64_t slow_store_bytes_per_second = int64_t{150} << 20;
};

// HBCSA part 1: cold starts traced (fanotify) into per-image profiles.
struct HbcsaConfig {
  bool enabled = true;
  int64_t quiet_ms = 2000;    // a trace ends when the container opened nothing new for this long
  int64_t limit_ms = 30000;   // or at this limit from its first open
  int64_t max_files = 100000; // per profile
  // "after-trace": build the image's hot layer in the background after each
  // recorded trace; "manual": only `ndockerctl promote` builds one.
  std::string promote = "after-trace";
  // After such a build, move the image's fast-tier layers to the slow tier.
  bool demote = true;
};

struct Config {
  std::string root = kDefaultRoot;
  std::string address = kDefaultAddress;
  std::string log_level = "info";
  std::string fast_path;  // empty: <root>/fast
  std::string slow_path;  // empty: <root>/slow
  int64_t fast_budget_bytes = 0;
  // tiers.fast.high_watermark / low_watermark (of the budget) and
  // pressure_check_seconds: demotion by pressure (snapshotter/fast_pressure.h).
  double fast_high_watermark = 0.90;
  double fast_low_watermark = 0.75;
  int64_t pressure_check_seconds = 10;
  Tier default_tier = Tier::kFast;
  // A container's writable layer on the fast tier while the budget and the
  // fast filesystem have room: a start that writes (a database's init) is
  // then as fast as on overlayfs-fast (README, "Where a container writes").
  Tier container_tier = Tier::kFast;
  int64_t container_reserve_bytes = 64 << 20;  // [placement] container_reserve
  // tiers.slow.flush_on_commit: true, false, or nullopt for "auto" (on unless
  // containerd's root shares the slow tier's filesystem; see ResolveFlush).
  std::optional<bool> flush_slow_commits;
  bool sync_migrations = true;
  // [migration]: background moves between tiers (ndockerctl migrate, demotion).
  int64_t migrate_bytes_per_second = 0;  // throttle; 0 = unlimited
  bool migrate_idle_io_priority = true;
  int64_t reap_interval_seconds = 30;
  LassConfig lass;
  HbcsaConfig hbcsa;

  SnapshotterOptions ToOptions() const;
};

// Reads a TOML config. Unknown keys are errors, so a typo never silently
// falls back to a default.
absl::StatusOr<Config> LoadConfig(const std::string& path);

// flush_on_commit = "auto": the background syncfs of the slow tier pays off
// unless containerd's root (its content store, downloading) is on the same
// filesystem, where the syncfs would also force out blobs still arriving
// (measured: a 100 Mbit/s CRI pull of openjdk 17.5 s -> 20.6 s). Paths that
// do not exist yet are judged by their nearest existing parent.
bool ResolveFlush(const Config& config, std::string* why);
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source_name);

// "10GiB", "512M", "1.5G", "1048576" -> bytes (K/M/G/T are powers of 1024).
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace ndocker
