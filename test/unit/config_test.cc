// Daemon configuration: TOML parsing, strict keys and types, byte sizes.
#include "snapshotter/config.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;

constexpr char kFullExample[] = R"(# ndocker-snapshotter configuration
root = "/srv/ndocker/root"
address = "/run/ndocker/custom.sock"
log_level = "debug"

[tiers.fast]
path = "/mnt/nvme/ndocker"
budget = "8GiB"

[tiers.slow]
path = "/mnt/hdd/ndocker"

[placement]
default_tier = "slow"

[migration]
sync = false
)";

absl::Status ParseError(const std::string& text) {
  auto c = ParseConfig(text, "test.toml");
  if (c.ok()) return absl::OkStatus();
  return c.status();
}

bool Mentions(const absl::Status& st, const std::string& what) {
  return std::string(st.message()).find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("the full example config parses into every field", "[config]") {
  auto c = ParseConfig(kFullExample, "example.toml");
  REQUIRE(c.ok());
  CHECK(c->root == "/srv/ndocker/root");
  CHECK(c->address == "/run/ndocker/custom.sock");
  CHECK(c->log_level == "debug");
  CHECK(c->fast_path == "/mnt/nvme/ndocker");
  CHECK(c->slow_path == "/mnt/hdd/ndocker");
  CHECK(c->fast_budget_bytes == int64_t{8} << 30);
  CHECK(c->default_tier == Tier::kSlow);
  CHECK(c->sync_migrations == false);

  SnapshotterOptions o = c->ToOptions();
  CHECK(o.root == "/srv/ndocker/root");
  CHECK(o.fast_path == "/mnt/nvme/ndocker");
  CHECK(o.slow_path == "/mnt/hdd/ndocker");
  CHECK(o.fast_budget_bytes == int64_t{8} << 30);
  CHECK(o.default_tier == Tier::kSlow);
  CHECK(o.sync_migrations == false);
}

TEST_CASE("LoadConfig reads a file and a missing file is NotFound", "[config]") {
  TempDir dir;
  const std::string path = dir / "config.toml";
  {
    std::ofstream out(path);
    out << kFullExample;
  }
  auto c = LoadConfig(path);
  REQUIRE(c.ok());
  CHECK(c->root == "/srv/ndocker/root");
  CHECK(c->fast_budget_bytes == int64_t{8} << 30);

  auto missing = LoadConfig(dir / "missing.toml");
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(Mentions(missing.status(), "missing.toml"));
}

TEST_CASE("an empty config gives the defaults", "[config]") {
  for (const char* text :
       {"", "# only a comment\n", "\n\n", "[tiers]\n", "[placement]\n[migration]\n"}) {
    INFO("config: " << text);
    auto c = ParseConfig(text, "empty.toml");
    REQUIRE(c.ok());
    CHECK(c->root == kDefaultRoot);
    CHECK(c->root == "/var/lib/ndocker-snapshotter");
    CHECK(c->address == kDefaultAddress);
    CHECK(c->address == "/run/ndocker-snapshotter/ndocker.sock");
    CHECK(c->log_level == "info");
    CHECK(c->fast_path.empty());
    CHECK(c->slow_path.empty());
    CHECK(c->fast_budget_bytes == 0);
    CHECK(c->default_tier == Tier::kFast);
    CHECK(c->sync_migrations == true);
  }
  // Setting one key leaves the others at their defaults.
  auto partial = ParseConfig("[tiers.fast]\nbudget = 1024\n", "p.toml");
  REQUIRE(partial.ok());
  CHECK(partial->fast_budget_bytes == 1024);
  CHECK(partial->fast_path.empty());
  CHECK(partial->root == kDefaultRoot);
  CHECK(partial->default_tier == Tier::kFast);
}

TEST_CASE("unknown keys at every level are InvalidArgument naming the key", "[config]") {
  struct Case {
    const char* text;
    const char* key;
    const char* where;
  };
  const Case cases[] = {
      {"rooot = \"/x\"\n", "rooot", "top level"},
      {"[tier]\n", "tier", "top level"},
      {"[tiers.medium]\npath = \"/x\"\n", "medium", "[tiers]"},
      {"[tiers]\nfastest = 1\n", "fastest", "[tiers]"},
      {"[tiers.fast]\npth = \"/x\"\n", "pth", "[tiers.fast]"},
      {"[tiers.fast]\nbudget_bytes = 5\n", "budget_bytes", "[tiers.fast]"},
      {"[tiers.slow]\nbudget = \"1G\"\n", "budget", "[tiers.slow]"},
      {"[tiers.slow]\npath = \"/s\"\nextra = true\n", "extra", "[tiers.slow]"},
      {"[placement]\npolicy = \"ldl\"\n", "policy", "[placement]"},
      {"[placement]\ndefault-tier = \"fast\"\n", "default-tier", "[placement]"},
      {"[migration]\nasync = true\n", "async", "[migration]"},
  };
  for (const Case& c : cases) {
    INFO("config: " << c.text);
    absl::Status st = ParseError(c.text);
    CHECK(st.code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(st, std::string("\"") + c.key + "\""));
    CHECK(Mentions(st, c.where));
  }
}

TEST_CASE("values of the wrong type are InvalidArgument", "[config]") {
  struct Case {
    const char* text;
    const char* mention;
  };
  const Case cases[] = {
      {"root = 5\n", "root"},
      {"address = [\"/a\"]\n", "address"},
      {"log_level = true\n", "log_level"},
      {"[tiers.fast]\npath = 1\n", "path"},
      {"[tiers.slow]\npath = { a = 1 }\n", "path"},
      {"[tiers.fast]\nbudget = [1, 2]\n", "budget"},
      {"[tiers.fast]\nbudget = true\n", "budget"},
      {"[tiers.fast]\nbudget = 1.5\n", "budget"},
      {"[tiers.fast]\nbudget = 1.0\n", "budget"},
      {"[tiers.fast]\nbudget = 1e9\n", "budget"},
      {"[tiers.fast]\nbudget = 2024-01-01\n", "budget"},
      {"[placement]\ndefault_tier = 1\n", "default_tier"},
      {"[migration]\nsync = \"yes\"\n", "sync"},
      {"[migration]\nsync = 1\n", "sync"},
      {"[migration]\nsync = 0\n", "sync"},
      {"[placement]\ncontainer_tier = \"warm\"\n", "container_tier"},
      {"[tiers.slow]\nflush_on_commit = \"no\"\n", "flush_on_commit"},
      {"[tiers.slow]\nflush_on_commit = 1\n", "flush_on_commit"},
      {"[tiers.fast]\nflush_on_commit = true\n", "flush_on_commit"},
      {"[lass]\nenabled = 1\n", "enabled"},
      {"[lass]\npolicy = \"fifo\"\n", "policy"},
      {"[lass]\ncontainerd_root = \"relative/dir\"\n", "containerd_root"},
      {"[lass]\nmax_concurrent_downloads = 0\n", "max_concurrent_downloads"},
      {"[lass]\nmax_concurrent_downloads = \"3\"\n", "max_concurrent_downloads"},
      {"[lass]\nslow_store_bandwidth = 0\n", "slow_store_bandwidth"},
      {"[lass]\nwatch = true\n", "watch"},
      {"[hbcsa]\npromote = \"always\"\n", "promote"},
      {"[hbcsa]\npromote = true\n", "promote"},
      {"[hbcsa]\ndemote = \"yes\"\n", "demote"},
      {"lass = true\n", "lass"},
      // Tables given as plain values.
      {"tiers = \"fast\"\n", "tiers"},
      {"placement = \"slow\"\n", "placement"},
      {"migration = false\n", "migration"},
      {"[tiers]\nfast = \"/mnt/nvme\"\n", "fast"},
      {"[tiers]\nslow = 3\n", "slow"},
  };
  for (const Case& c : cases) {
    INFO("config: " << c.text);
    absl::Status st = ParseError(c.text);
    CHECK(st.code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(st, c.mention));
  }
}

TEST_CASE("the fast budget is an integer or a size string", "[config]") {
  auto as_int = ParseConfig("[tiers.fast]\nbudget = 1073741824\n", "t.toml");
  REQUIRE(as_int.ok());
  CHECK(as_int->fast_budget_bytes == 1073741824);

  auto as_string = ParseConfig("[tiers.fast]\nbudget = \"1GiB\"\n", "t.toml");
  REQUIRE(as_string.ok());
  CHECK(as_string->fast_budget_bytes == 1073741824);

  auto zero = ParseConfig("[tiers.fast]\nbudget = 0\n", "t.toml");
  REQUIRE(zero.ok());
  CHECK(zero->fast_budget_bytes == 0);

  auto plain_string = ParseConfig("[tiers.fast]\nbudget = \"4096\"\n", "t.toml");
  REQUIRE(plain_string.ok());
  CHECK(plain_string->fast_budget_bytes == 4096);

  absl::Status negative = ParseError("[tiers.fast]\nbudget = -1\n");
  CHECK(negative.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(negative, "negative"));

  absl::Status bad_unit = ParseError("[tiers.fast]\nbudget = \"8 parsecs\"\n");
  CHECK(bad_unit.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Mentions(bad_unit, "8 parsecs"));

  absl::Status negative_string = ParseError("[tiers.fast]\nbudget = \"-1GiB\"\n");
  CHECK(negative_string.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("placement.default_tier is fast or slow", "[config]") {
  auto slow = ParseConfig("[placement]\ndefault_tier = \"slow\"\n", "t.toml");
  REQUIRE(slow.ok());
  CHECK(slow->default_tier == Tier::kSlow);

  auto fast = ParseConfig("[placement]\ndefault_tier = \"fast\"\n", "t.toml");
  REQUIRE(fast.ok());
  CHECK(fast->default_tier == Tier::kFast);

  for (const char* bad : {"medium", "Fast", "SLOW", " fast", "fast "}) {
    INFO("tier " << bad);
    absl::Status st = ParseError(std::string("[placement]\ndefault_tier = \"") + bad + "\"\n");
    CHECK(st.code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(st, "default_tier"));
    CHECK(Mentions(st, bad));
  }
}

TEST_CASE("TOML syntax errors carry the source and line number", "[config]") {
  struct Case {
    const char* text;
    const char* line;
  };
  const Case cases[] = {
      {"root = \"/x\"\naddress = \n", "line 2"},
      {"root = \"/x\"\nlog_level = \"info\"\n[tiers.fast\npath = \"/f\"\n", "line 3"},
      {"root = \"unterminated\n", "line 1"},
      {"root = \"/a\"\nroot = \"/b\"\n", "line 2"},  // duplicate key
      {"\n\n\n\nthis is not toml\n", "line 5"},
  };
  for (const Case& c : cases) {
    INFO("config: " << c.text);
    auto r = ParseConfig(c.text, "bad.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Mentions(r.status(), "bad.toml"));
    CHECK(Mentions(r.status(), c.line));
  }
}

TEST_CASE("ParseByteSize", "[config]") {
  struct Good {
    const char* text;
    int64_t bytes;
  };
  const Good good[] = {
      {"8GiB", int64_t{8} << 30},
      {"512M", int64_t{512} << 20},
      {"1.5G", int64_t{3} << 29},
      {"1048576", 1048576},
      {"10 KiB", 10240},
      {"0", 0},
      {"1", 1},
      {"100b", 100},
      {"100B", 100},
      {"1k", 1024},
      {"1K", 1024},
      {"1KB", 1024},
      {"2mb", int64_t{2} << 20},
      {"2MiB", int64_t{2} << 20},
      {"3gb", int64_t{3} << 30},
      {"1T", int64_t{1} << 40},
      {"1tib", int64_t{1} << 40},
      {"  4 GiB  ", int64_t{4} << 30},
      {"0.5K", 512},
  };
  for (const Good& g : good) {
    INFO("size \"" << g.text << "\"");
    auto r = ParseByteSize(g.text);
    REQUIRE(r.ok());
    CHECK(*r == g.bytes);
  }

  const char* bad[] = {"", " ", "GiB", "-1", "-1G", "+1G", "8 parsecs", "8X", "8GiBs", "8 G i B",
                       "8iB", "1e3", "0x10", "1..5G", "1.5.G", ".", "8PiB", "99999999999T",
                       "nan", "inf"};
  for (const char* b : bad) {
    INFO("size \"" << b << "\"");
    auto r = ParseByteSize(b);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("placement, slow-tier flush and [lass] keys", "[config]") {
  auto defaults = ParseConfig("", "t.toml");
  REQUIRE(defaults.ok());
  CHECK(defaults->container_tier == Tier::kFast);
  CHECK(defaults->container_reserve_bytes == 64 << 20);
  CHECK(defaults->ToOptions().container_expected_bytes == 64 << 20);
  auto reserve = ParseConfig("[placement]\ncontainer_tier = \"slow\"\ncontainer_reserve = \"1GiB\"\n", "t.toml");
  REQUIRE(reserve.ok());
  CHECK(reserve->container_tier == Tier::kSlow);
  CHECK(reserve->ToOptions().container_expected_bytes == int64_t{1} << 30);
  CHECK_FALSE(defaults->flush_slow_commits.has_value());  // auto
  CHECK(defaults->lass.enabled);
  CHECK(defaults->lass.policy == "ldl");
  CHECK(defaults->lass.containerd_root == "/var/lib/containerd");
  CHECK(defaults->lass.max_concurrent_downloads == 3);
  CHECK(defaults->lass.slow_store_bytes_per_second == int64_t{150} << 20);
  CHECK(defaults->hbcsa.promote == "after-trace");
  CHECK(defaults->hbcsa.demote);
  auto manual = ParseConfig("[hbcsa]\npromote = \"manual\"\ndemote = false\n", "t.toml");
  REQUIRE(manual.ok());
  CHECK(manual->hbcsa.promote == "manual");
  CHECK_FALSE(manual->hbcsa.demote);

  auto c = ParseConfig(R"(
[tiers.slow]
flush_on_commit = true
[placement]
container_tier = "fast"
[lass]
enabled = false
policy = "predict"
containerd_root = "/srv/containerd"
max_concurrent_downloads = 8
slow_store_bandwidth = "80MiB"
)", "t.toml");
  REQUIRE(c.ok());
  CHECK(c->container_tier == Tier::kFast);
  CHECK(c->flush_slow_commits == true);
  CHECK_FALSE(c->lass.enabled);
  CHECK(c->lass.policy == "predict");
  CHECK(c->lass.containerd_root == "/srv/containerd");
  CHECK(c->lass.max_concurrent_downloads == 8);
  CHECK(c->lass.slow_store_bytes_per_second == int64_t{80} << 20);
  const SnapshotterOptions o = c->ToOptions();
  CHECK(o.container_tier == Tier::kFast);
  CHECK(o.flush_slow_commits);
}

TEST_CASE("flush_on_commit auto: off when containerd's root shares the slow tier's filesystem",
          "[config]") {
  TempDir dir;
  auto c = ParseConfig("[tiers.slow]\nflush_on_commit = \"auto\"\n", "t.toml");
  REQUIRE(c.ok());
  CHECK_FALSE(c->flush_slow_commits.has_value());
  c->root = dir / "root";                              // slow tier <root>/slow: not made yet
  c->lass.containerd_root = dir / "containerd/root";   // not made yet either
  std::string why;
  CHECK_FALSE(ResolveFlush(*c, &why));
  CHECK(why.find("shares") != std::string::npos);
  CHECK_FALSE(c->ToOptions().flush_slow_commits);
  c->lass.containerd_root = "/proc/containerd";  // another filesystem
  CHECK(ResolveFlush(*c, &why));
  CHECK(why.find("another filesystem") != std::string::npos);
  CHECK(c->ToOptions().flush_slow_commits);
  c->flush_slow_commits = false;  // the config's word wins
  CHECK_FALSE(ResolveFlush(*c, &why));
  CHECK(why == "off (config)");
}

TEST_CASE("fast-tier watermarks and pressure check interval", "[config]") {
  auto d = ParseConfig("", "t.toml");
  REQUIRE(d.ok());
  CHECK(d->fast_high_watermark == 0.90);
  CHECK(d->fast_low_watermark == 0.75);
  CHECK(d->pressure_check_seconds == 10);
  auto c = ParseConfig("[tiers.fast]\nbudget = \"1GiB\"\nhigh_watermark = 0.8\nlow_watermark = 0.5\n"
                       "pressure_check_seconds = 2\n",
                       "t.toml");
  REQUIRE(c.ok());
  CHECK(c->fast_high_watermark == 0.8);
  CHECK(c->fast_low_watermark == 0.5);
  CHECK(c->pressure_check_seconds == 2);
  for (const char* bad : {"[tiers.fast]\nhigh_watermark = 1.5\n", "[tiers.fast]\nlow_watermark = 0\n",
                          "[tiers.fast]\nhigh_watermark = \"90%\"\n",
                          "[tiers.fast]\nhigh_watermark = 0.6\nlow_watermark = 0.7\n",
                          "[tiers.fast]\npressure_check_seconds = 0\n"}) {
    auto r = ParseConfig(bad, "t.toml");
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("tiers.fast."));
  }
}

}  // namespace ndocker
