#include "snapshotter/layout.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace ndocker {

std::string Layout::SnapshotDir(Tier t, uint64_t id) const {
  return absl::StrCat(SnapshotsDir(t), "/", id);
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
