// Layout: directory names by id, base-36 short link names (DESIGN §4).
#include "snapshotter/layout.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
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

TEST_CASE("generation g > 0 of a snapshot lives at <id>-<g>", "[layout]") {
  const Layout l("/var/lib/nd", "/mnt/nvme/nd-fast", "/srv/hdd/nd-slow");
  CHECK(Layout::SnapshotDirName(7, 0) == "7");
  CHECK(Layout::SnapshotDirName(7, 1) == "7-1");
  CHECK(Layout::SnapshotDirName(1234567, 42) == "1234567-42");
  // Generation 0 is the old name: the 2-argument forms and gen 0 agree.
  CHECK(l.SnapshotDir(Tier::kFast, 7, 0) == l.SnapshotDir(Tier::kFast, 7));
  CHECK(l.FsDir(Tier::kSlow, 7, 0) == l.FsDir(Tier::kSlow, 7));
  CHECK(l.WorkDir(Tier::kSlow, 7, 0) == l.WorkDir(Tier::kSlow, 7));
  CHECK(l.SnapshotDir(Tier::kFast, 7, 1) == "/mnt/nvme/nd-fast/snapshots/7-1");
  CHECK(l.SnapshotDir(Tier::kSlow, 36, 3) == "/srv/hdd/nd-slow/snapshots/36-3");
  CHECK(l.FsDir(Tier::kFast, 7, 2) == "/mnt/nvme/nd-fast/snapshots/7-2/fs");
  CHECK(l.WorkDir(Tier::kSlow, 7, 2) == "/srv/hdd/nd-slow/snapshots/7-2/work");
  // The link name does not depend on the generation.
  CHECK(l.LinkPath(7) == "/var/lib/nd/l/7");
}

TEST_CASE("ParseSnapshotDirName round trips and rejects other names", "[layout]") {
  using P = std::optional<std::pair<uint64_t, uint64_t>>;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (uint64_t id : {uint64_t{1}, uint64_t{10}, uint64_t{987654321}, kMax}) {
    for (uint64_t gen : {uint64_t{0}, uint64_t{1}, uint64_t{9}, uint64_t{10}, kMax}) {
      INFO("id " << id << " gen " << gen);
      CHECK(Layout::ParseSnapshotDirName(Layout::SnapshotDirName(id, gen)) == P({id, gen}));
    }
  }
  CHECK(Layout::ParseSnapshotDirName("12") == P({12, 0}));
  CHECK(Layout::ParseSnapshotDirName("12-3") == P({12, 3}));
  CHECK(Layout::ParseSnapshotDirName("18446744073709551615-18446744073709551615") ==
        P({kMax, kMax}));
  for (const char* bad :
       {"", "-", "0", "0-1", "01", "01-1", "1-01", "1-0", "1-00", "1-", "-1", "1--1", "1-1-1",
        "+1", "1-+1", "1+1", " 1", "1 ", "1-1 ", "1-a", "a-1", "1.1", "new-abc", "1-1-abcdef",
        "18446744073709551616", "1-18446744073709551616", "99999999999999999999999-1"}) {
    INFO("name '" << bad << "'");
    CHECK_FALSE(Layout::ParseSnapshotDirName(bad).has_value());
  }
  CHECK_FALSE(Layout::ParseSnapshotDirName(std::string("1\0", 2)).has_value());
  CHECK_FALSE(Layout::ParseSnapshotDirName(std::string("1-1\0", 4)).has_value());
}

TEST_CASE("staging names carry the id and generation of the copy", "[layout]") {
  using P = std::optional<std::pair<uint64_t, uint64_t>>;
  CHECK(Layout::StagingName(7, 1) == "7-1-");
  CHECK(Layout::StagingName(123, 0) == "123-0-");
  CHECK(Layout::ParseStagingName("7-1-aB3xYz") == P({7, 1}));
  CHECK(Layout::ParseStagingName("123-0-000000") == P({123, 0}));
  CHECK(Layout::ParseStagingName(Layout::StagingName(18446744073709551615ull, 5) + "zzzzzz") ==
        P({18446744073709551615ull, 5}));
  for (const char* bad : {"", "7-1-", "7-1-abcde", "7-1-abcdefg", "7-1-abc-ef", "7-1-abc.ef",
                          "7-abcdef", "7--abcdef", "-1-abcdef", "0-1-abcdef", "07-1-abcdef",
                          "7-01-abcdef", "7-+1-abcdef", "+7-1-abcdef", "7-1-1-abcdef", "7-1abcdef",
                          "7", "7-1", "x-1-abcdef", "18446744073709551616-1-abcdef"}) {
    INFO("name '" << bad << "'");
    CHECK_FALSE(Layout::ParseStagingName(bad).has_value());
  }
  // A real mkdtemp name parses back.
  char tmpl[] = "/tmp/42-3-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string made = tmpl;
  ::rmdir(tmpl);
  CHECK(Layout::ParseStagingName(made.substr(5)) == P({42, 3}));
}

}  // namespace ndocker
