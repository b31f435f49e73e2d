// What static analysis needs from an image config: how the container starts
// (Entrypoint, Cmd, WorkingDir, PATH) and which build step made each layer
// (history). diff_ids and history come from lass's config parser; the rest
// is read here, so lass's tracker does not carry it for every pull.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lass/image_json.h"

namespace ndocker::hbcsa {

// containerd's (and runc's) PATH when the image sets none.
inline constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct ImageConfigFacts {
  std::vector<std::string> entrypoint;  // config.Entrypoint
  std::vector<std::string> cmd;         // config.Cmd
  std::string working_dir;              // config.WorkingDir, as written
  std::string path = kDefaultPath;      // PATH from config.Env, else kDefaultPath
  bool path_from_env = false;
  std::vector<std::string> diff_ids;    // rootfs.diff_ids, bottom first
  std::vector<lass::HistoryEntry> history;
  // created_by of the step that made layer i: the i-th history entry without
  // empty_layer. Empty (and history_note set) when the non-empty entries do
  // not line up one to one with diff_ids, since then no mapping can be
  // trusted.
  std::vector<std::string> layer_created_by;
  std::string history_note;

  // The argv the container runs by default: Entrypoint + Cmd.
  std::vector<std::string> Argv() const;
};

// InvalidArgument when `bytes` is not an image config (see
// lass::ParseImageConfig). Missing or mistyped optional fields are left empty.
absl::StatusOr<ImageConfigFacts> ParseImageConfigFacts(absl::string_view bytes);

}  // namespace ndocker::hbcsa
