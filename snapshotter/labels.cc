#include "snapshotter/labels.h"

#include "absl/strings/str_cat.h"

namespace ndocker {

absl::Status ValidateLabels(const Labels& labels) {
  for (const auto& [key, value] : labels) {
    if (key.size() + value.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label key and value greater than maximum size (", kMaxLabelBytes, " bytes), key: ",
          key.substr(0, 64)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Tier> ParseTier(absl::string_view name) {
  if (name == "fast") return Tier::kFast;
  if (name == "slow") return Tier::kSlow;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tier \"", name, "\": want \"fast\" or \"slow\""));
}

absl::StatusOr<std::optional<Tier>> RequestedTier(const Labels& labels) {
  auto it = labels.find(std::string(kTierLabel));
  if (it == labels.end()) return std::nullopt;
  auto tier = ParseTier(it->second);
  if (!tier.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("label ", kTierLabel, ": ", tier.status().message()));
  }
  return std::optional<Tier>(*tier);
}

}  // namespace ndocker
