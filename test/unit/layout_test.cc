// Layout: directory names by id, base-36 short link names (DESIGN §4).
#include "snapshotter/layout.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace ndocker {
namespace {

std::vector<uint64_t> InterestingIds() {
  std::vector<uint64_t> ids = {0, 1, 9, 10, 35, 36, 37, 71, 72, 1295, 1296, 1297, 46655, 46656};
  // Every power of 36 and its neighbours, while they fit.
  for (uint64_t p = 36; p <= std::numeric_limits<uint64_t>::max() / 36; p *= 36) {
    ids.push_back(p - 1);
    ids.push_back(p);
    ids.push_back(p + 1);
  }
  // Every power of two and its neighbours.
  for (int b = 1; b < 64; ++b) {
    const uint64_t p = uint64_t{1} << b;
    ids.push_back(p - 1);
    ids.push_back(p);
    ids.push_back(p + 1);
  }
  ids.push_back(std::numeric_limits<uint64_t>::max() - 1);
  ids.push_back(std::numeric_limits<uint64_t>::max());
  // A pseudo-random spread.
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ids.push_back(x >> (i % 64));
  }
  return ids;
}

}  // namespace

TEST_CASE("ShortId is base 36 with lowercase digits", "[layout]") {
  CHECK(Layout::ShortId(0) == "0");
  CHECK(Layout::ShortId(1) == "1");
  CHECK(Layout::ShortId(9) == "9");
  CHECK(Layout::ShortId(10) == "a");
  CHECK(Layout::ShortId(35) == "z");
  CHECK(Layout::ShortId(36) == "10");
  CHECK(Layout::ShortId(36 * 36 - 1) == "zz");
  CHECK(Layout::ShortId(36 * 36) == "100");
  // 2^64-1 takes 13 base-36 digits (36^12 < 2^64 <= 36^13).
  CHECK(Layout::ShortId(std::numeric_limits<uint64_t>::max()) == "3w5e11264sgsf");
}

TEST_CASE("ShortId and ParseShortId round trip", "[layout]") {
  std::set<std::string> seen;
  for (uint64_t id : InterestingIds()) {
    const std::string s = Layout::ShortId(id);
    INFO("id " << id << " short " << s);
    CHECK(!s.empty());
    CHECK(s.size() <= 13);
    CHECK(s.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string::npos);
    CHECK((s == "0" || s[0] != '0'));
    auto back = Layout::ParseShortId(s);
    REQUIRE(back.has_value());
    CHECK(*back == id);
    seen.insert(s);
  }
  // Distinct ids get distinct names: check it on a dense range.
  std::set<std::string> dense;
  for (uint64_t id = 0; id < 50000; ++id) dense.insert(Layout::ShortId(id));
  CHECK(dense.size() == 50000);
}

TEST_CASE("ParseShortId rejects names that are not canonical", "[layout]") {
  CHECK_FALSE(Layout::ParseShortId("").has_value());
  // Leading zeros: each id has exactly one name.
  CHECK_FALSE(Layout::ParseShortId("00").has_value());
  CHECK_FALSE(Layout::ParseShortId("01").has_value());
  CHECK_FALSE(Layout::ParseShortId("0z").has_value());
  CHECK(Layout::ParseShortId("0") == std::optional<uint64_t>(0));
  // Uppercase and other characters.
  CHECK_FALSE(Layout::ParseShortId("A").has_value());
  CHECK_FALSE(Layout::ParseShortId("1Z").has_value());
  CHECK_FALSE(Layout::ParseShortId("-1").has_value());
  CHECK_FALSE(Layout::ParseShortId("+1").has_value());
  CHECK_FALSE(Layout::ParseShortId(" 1").has_value());
  CHECK_FALSE(Layout::ParseShortId("1 ").has_value());
  CHECK_FALSE(Layout::ParseShortId("a.b").has_value());
  CHECK_FALSE(Layout::ParseShortId("new-abc").has_value());
  CHECK_FALSE(Layout::ParseShortId(std::string("a\0", 2)).has_value());
  // Too long or too large for 64 bits.
  CHECK_FALSE(Layout::ParseShortId("3w5e11264sgsg").has_value());  // 2^64
  CHECK_FALSE(Layout::ParseShortId("zzzzzzzzzzzzz").has_value());  // 13 digits, overflows
  CHECK_FALSE(Layout::ParseShortId("10000000000000").has_value());  // 14 digits
  CHECK_FALSE(Layout::ParseShortId(std::string(100, '1')).has_value());
  CHECK(Layout::ParseShortId("zzzzzzzzzzzz") ==
        std::optional<uint64_t>(4738381338321616895ull));  // 36^12 - 1
}

TEST_CASE("ParseId reads canonical decimal directory names only", "[layout]") {
  CHECK(Layout::ParseId("1") == std::optional<uint64_t>(1));
  CHECK(Layout::ParseId("42") == std::optional<uint64_t>(42));
  CHECK(Layout::ParseId("18446744073709551615") ==
        std::optional<uint64_t>(std::numeric_limits<uint64_t>::max()));
  CHECK_FALSE(Layout::ParseId("18446744073709551616").has_value());  // overflow
  CHECK_FALSE(Layout::ParseId("").has_value());
  CHECK_FALSE(Layout::ParseId("01").has_value());
  CHECK_FALSE(Layout::ParseId("0").has_value());  // ids start at 1
  CHECK_FALSE(Layout::ParseId("1a").has_value());
  CHECK_FALSE(Layout::ParseId("a1").has_value());
  CHECK_FALSE(Layout::ParseId("new-abc").has_value());
  CHECK_FALSE(Layout::ParseId("-1").has_value());
  CHECK_FALSE(Layout::ParseId("+1").has_value());
  CHECK_FALSE(Layout::ParseId(" 1").has_value());
  CHECK_FALSE(Layout::ParseId("1 ").has_value());
  CHECK_FALSE(Layout::ParseId("1.0").has_value());
  for (uint64_t id : {uint64_t{1}, uint64_t{9}, uint64_t{10}, uint64_t{1234567890}}) {
    CHECK(Layout::ParseId(std::to_string(id)) == std::optional<uint64_t>(id));
  }
}

TEST_CASE("layout paths have the documented shapes", "[layout]") {
  const Layout l("/var/lib/nd", "/mnt/nvme/nd-fast", "/srv/hdd/nd-slow");
  CHECK(l.root() == "/var/lib/nd");
  CHECK(l.TierRoot(Tier::kFast) == "/mnt/nvme/nd-fast");
  CHECK(l.TierRoot(Tier::kSlow) == "/srv/hdd/nd-slow");
  CHECK(l.MetadataDir() == "/var/lib/nd/metadata");
  CHECK(l.LinksDir() == "/var/lib/nd/l");
  CHECK(l.SnapshotsDir(Tier::kFast) == "/mnt/nvme/nd-fast/snapshots");
  CHECK(l.SnapshotsDir(Tier::kSlow) == "/srv/hdd/nd-slow/snapshots");
  CHECK(l.StagingDir(Tier::kFast) == "/mnt/nvme/nd-fast/staging");
  CHECK(l.StagingDir(Tier::kSlow) == "/srv/hdd/nd-slow/staging");
  CHECK(l.SnapshotDir(Tier::kFast, 7) == "/mnt/nvme/nd-fast/snapshots/7");
  CHECK(l.SnapshotDir(Tier::kSlow, 1234567) == "/srv/hdd/nd-slow/snapshots/1234567");
  CHECK(l.FsDir(Tier::kFast, 7) == "/mnt/nvme/nd-fast/snapshots/7/fs");
  CHECK(l.WorkDir(Tier::kFast, 7) == "/mnt/nvme/nd-fast/snapshots/7/work");
  CHECK(l.FsDir(Tier::kSlow, 36) == "/srv/hdd/nd-slow/snapshots/36/fs");
  CHECK(l.WorkDir(Tier::kSlow, 36) == "/srv/hdd/nd-slow/snapshots/36/work");
  // Links live under the root, named by short id, independent of the tier.
  CHECK(l.LinkPath(7) == "/var/lib/nd/l/7");
  CHECK(l.LinkPath(36) == "/var/lib/nd/l/10");
  CHECK(l.LinkPath(1295) == "/var/lib/nd/l/zz");
  // Directory names parse back to their ids.
  CHECK(Layout::ParseId("1234567") == std::optional<uint64_t>(1234567));
  const std::string link = l.LinkPath(98765);
  CHECK(Layout::ParseShortId(link.substr(l.LinksDir().size() + 1)) ==
        std::optional<uint64_t>(98765));
}

}  // namespace ndocker
