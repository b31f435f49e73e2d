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

struct Config {
  std::string root = kDefaultRoot;
  std::string address = kDefaultAddress;
  std::string log_level = "info";
  std::string fast_path;  // empty: <root>/fast
  std::string slow_path;  // empty: <root>/slow
  int64_t fast_budget_bytes = 0;
  Tier default_tier = Tier::kFast;
  bool sync_migrations = true;

  SnapshotterOptions ToOptions() const;
};

// Reads a TOML config. Unknown keys are errors, so a typo never silently
// falls back to a default.
absl::StatusOr<Config> LoadConfig(const std::string& path);
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source_name);

// "10GiB", "512M", "1.5G", "1048576" -> bytes (K/M/G/T are powers of 1024).
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace ndocker
