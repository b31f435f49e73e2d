// Logging in containerd's logfmt style: time="…" level=info msg="…" key=value.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

namespace ndocker {

// Sets the global logger: stderr, logfmt pattern, the given level name
// (trace, debug, info, warn, error). InvalidArgument for an unknown level.
absl::Status InitLogging(absl::string_view level);

// A logfmt value: bare when it needs no quoting, else quoted and escaped.
std::string Q(absl::string_view value);

}  // namespace ndocker
