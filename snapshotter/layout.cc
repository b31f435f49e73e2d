#include "snapshotter/layout.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace ndocker {

namespace {

// Canonical decimal: digits only, no leading zero unless the number is 0.
std::optional<uint64_t> ParseDecimal(absl::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

std::string Layout::SnapshotDir(Tier t, uint64_t id, uint64_t gen) const {
  return absl::StrCat(SnapshotsDir(t), "/", SnapshotDirName(id, gen));
}

std::string Layout::SnapshotDirName(uint64_t id, uint64_t gen) {
  return gen == 0 ? absl::StrCat(id) : absl::StrCat(id, "-", gen);
}

std::optional<std::pair<uint64_t, uint64_t>> Layout::ParseSnapshotDirName(absl::string_view name) {
  const size_t dash = name.find('-');
  auto id = ParseId(name.substr(0, dash));
  if (!id) return std::nullopt;
  if (dash == absl::string_view::npos) return std::make_pair(*id, uint64_t{0});
  auto gen = ParseDecimal(name.substr(dash + 1));
  if (!gen || *gen == 0) return std::nullopt;
  return std::make_pair(*id, *gen);
}

std::string Layout::StagingName(uint64_t id, uint64_t gen) { return absl::StrCat(id, "-", gen, "-"); }

std::optional<std::pair<uint64_t, uint64_t>> Layout::ParseStagingName(absl::string_view name) {
  constexpr size_t kSuffix = 6;  // mkdtemp's XXXXXX
  if (name.size() < kSuffix + 4) return std::nullopt;
  const absl::string_view suffix = name.substr(name.size() - kSuffix);
  for (char c : suffix) {
    if (!IsAlnum(c)) return std::nullopt;
  }
  name.remove_suffix(kSuffix);
  if (name.back() != '-') return std::nullopt;
  name.remove_suffix(1);
  const size_t dash = name.find('-');
  if (dash == absl::string_view::npos) return std::nullopt;
  auto id = ParseId(name.substr(0, dash));
  auto gen = ParseDecimal(name.substr(dash + 1));
  if (!id || !gen) return std::nullopt;
  return std::make_pair(*id, *gen);
}

std::string Layout::ShortId(uint64_t id) {
  std::string out;
  do {
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[id % 36]);
    id /= 36;
  } while (id != 0);
  return out;
}

std::optional<uint64_t> Layout::ParseShortId(absl::string_view s) {
  if (s.empty() || s.size() > 13) return std::nullopt;  // 2^64-1 is 13 base-36 digits
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    else return std::nullopt;
    v = v * 36 + static_cast<uint64_t>(d);
  }
  if (ShortId(v) != s) return std::nullopt;  // reject leading zeros: one name per id
  return v;
}

std::optional<uint64_t> Layout::ParseId(absl::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || s[0] == '0') return std::nullopt;
  return v;
}

}  // namespace ndocker
