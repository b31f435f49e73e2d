#include "snapshotter/config.h"

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/labels.h"
#include "snapshotter/status_macros.h"
#include "toml++/toml.h"

namespace ndocker {
namespace {

absl::Status CheckKeys(const toml::table& table, const std::string& where,
                       const std::set<std::string>& allowed) {
  for (const auto& [key, value] : table) {
    const std::string name(key.str());
    if (!allowed.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("config: unknown key \"", name, "\" in ", where));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadString(const toml::table& t, const std::string& key, std::string* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  auto v = n->value<std::string>();
  if (!v) return absl::InvalidArgumentError(absl::StrCat("config: ", key, " must be a string"));
  *out = *v;
  return absl::OkStatus();
}

// Tables must be tables: `tiers = "x"` must not silently mean "no tiers".
absl::Status CheckTables(const toml::table& table, const std::string& prefix,
                         const std::set<std::string>& names) {
  for (const std::string& name : names) {
    const toml::node* n = table.get(name);
    if (n != nullptr && !n->is_table()) {
      return absl::InvalidArgumentError(absl::StrCat("config: ", prefix, name, " must be a table"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadBool(const toml::table& t, const std::string& where, const std::string& key,
                      bool* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  auto b = n->value_exact<bool>();  // exact: 1 is not true
  if (!b) return absl::InvalidArgumentError(absl::StrCat("config: ", where, key, " must be true or false"));
  *out = *b;
  return absl::OkStatus();
}

// Bytes as an integer or a size such as "8GiB"; never negative.
absl::Status ReadBytes(const toml::table& t, const std::string& where, const std::string& key,
                       int64_t* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  if (auto i = n->value_exact<int64_t>()) {  // exact: no bool or float conversion
    *out = *i;
  } else if (auto s = n->value<std::string>()) {
    auto bytes = ParseByteSize(*s);
    if (!bytes.ok()) return bytes.status();
    *out = *bytes;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", where, key, " must be bytes or a size like \"8GiB\""));
  }
  if (*out < 0) return absl::InvalidArgumentError(absl::StrCat("config: ", where, key, " must not be negative"));
  return absl::OkStatus();
}

absl::Status ReadTierName(const toml::table& t, const std::string& where, const std::string& key,
                          Tier* out) {
  std::string name;
  NDOCKER_RETURN_IF_ERROR(ReadString(t, key, &name));
  if (name.empty()) return absl::OkStatus();
  auto tier = ParseTier(name);
  if (!tier.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", where, key, ": ", tier.status().message()));
  }
  *out = *tier;
  return absl::OkStatus();
}

absl::Status ReadTier(const toml::table& root, const std::string& name, Config* c) {
  const toml::table* tiers = root["tiers"].as_table();
  if (tiers == nullptr) return absl::OkStatus();
  const toml::table* t = (*tiers)[name].as_table();
  if (t == nullptr) return absl::OkStatus();
  const bool fast = name == "fast";
  NDOCKER_RETURN_IF_ERROR(CheckKeys(*t, absl::StrCat("[tiers.", name, "]"),
                                    fast ? std::set<std::string>{"path", "budget", "high_watermark",
                                                                 "low_watermark", "pressure_check_seconds"}
                                         : std::set<std::string>{"path", "flush_on_commit"}));
  NDOCKER_RETURN_IF_ERROR(ReadString(*t, "path", fast ? &c->fast_path : &c->slow_path));
  if (fast) {
    NDOCKER_RETURN_IF_ERROR(ReadBytes(*t, "tiers.fast.", "budget", &c->fast_budget_bytes));
    for (auto [key, out] : {std::pair{"high_watermark", &c->fast_high_watermark},
                            std::pair{"low_watermark", &c->fast_low_watermark}}) {
      if (const toml::node* n = t->get(key)) {
        std::optional<double> v = n->value<double>();
        if (!v || !(*v > 0.0 && *v <= 1.0)) {
          return absl::InvalidArgumentError(
              absl::StrCat("config: tiers.fast.", key, " must be a fraction of the budget in (0, 1]"));
        }
        *out = *v;
      }
    }
    if (c->fast_low_watermark >= c->fast_high_watermark) {
      return absl::InvalidArgumentError(absl::StrCat("config: tiers.fast.low_watermark (", c->fast_low_watermark,
                                                     ") must be below high_watermark (", c->fast_high_watermark,
                                                     ")"));
    }
    if (const toml::node* n = t->get("pressure_check_seconds")) {
      std::optional<int64_t> v = n->value_exact<int64_t>();
      if (!v || *v < 1) {
        return absl::InvalidArgumentError("config: tiers.fast.pressure_check_seconds must be a whole number >= 1");
      }
      c->pressure_check_seconds = *v;
    }
    return absl::OkStatus();
  }
  if (const toml::node* n = t->get("flush_on_commit")) {
    if (auto b = n->value_exact<bool>()) {
      c->flush_slow_commits = *b;
    } else if (auto s = n->value<std::string>(); s && *s == "auto") {
      c->flush_slow_commits.reset();
    } else {
      return absl::InvalidArgumentError("config: tiers.slow.flush_on_commit must be true, false or \"auto\"");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadLass(const toml::table& t, LassConfig* lass) {
  NDOCKER_RETURN_IF_ERROR(CheckKeys(t, "[lass]",
                                    {"enabled", "policy", "containerd_root", "max_concurrent_downloads",
                                     "slow_store_bandwidth"}));
  NDOCKER_RETURN_IF_ERROR(ReadBool(t, "lass.", "enabled", &lass->enabled));
  NDOCKER_RETURN_IF_ERROR(ReadString(t, "policy", &lass->policy));
  if (lass->policy != "ldl" && lass->policy != "predict") {
    return absl::InvalidArgumentError(
        absl::StrCat("config: lass.policy must be \"ldl\" or \"predict\", not \"", lass->policy, "\""));
  }
  NDOCKER_RETURN_IF_ERROR(ReadString(t, "containerd_root", &lass->containerd_root));
  if (lass->containerd_root.empty() || lass->containerd_root[0] != '/') {
    return absl::InvalidArgumentError("config: lass.containerd_root must be an absolute path");
  }
  if (const toml::node* n = t.get("max_concurrent_downloads")) {
    auto i = n->value_exact<int64_t>();
    if (!i || *i < 1 || *i > 1024) {
      return absl::InvalidArgumentError("config: lass.max_concurrent_downloads must be an integer from 1 to 1024");
    }
    lass->max_concurrent_downloads = static_cast<int>(*i);
  }
  NDOCKER_RETURN_IF_ERROR(ReadBytes(t, "lass.", "slow_store_bandwidth", &lass->slow_store_bytes_per_second));
  if (lass->slow_store_bytes_per_second == 0) {
    return absl::InvalidArgumentError("config: lass.slow_store_bandwidth must be more than 0");
  }
  return absl::OkStatus();
}

}  // namespace

SnapshotterOptions Config::ToOptions() const {
  SnapshotterOptions o;
  o.root = root;
  o.fast_path = fast_path;
  o.slow_path = slow_path;
  o.fast_budget_bytes = fast_budget_bytes;
  o.default_tier = default_tier;
  o.container_tier = container_tier;
  o.container_expected_bytes = container_reserve_bytes;
  std::string ignored;
  o.flush_slow_commits = flush_slow_commits.value_or(ResolveFlush(*this, &ignored));
  o.sync_migrations = sync_migrations;
  o.migrate_bytes_per_second = static_cast<double>(migrate_bytes_per_second);
  o.migrate_idle_io_priority = migrate_idle_io_priority;
  o.reap_interval = absl::Seconds(reap_interval_seconds);
  return o;
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  std::string s(absl::StripAsciiWhitespace(text));
  size_t split = 0;
  while (split < s.size() && (absl::ascii_isdigit(s[split]) || s[split] == '.')) ++split;
  double number;
  if (split == 0 || !absl::SimpleAtod(s.substr(0, split), &number)) {
    return absl::InvalidArgumentError(absl::StrCat("bad size \"", text, "\""));
  }
  std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(split)));
  static const std::pair<const char*, int> kUnits[] = {
      {"", 0}, {"b", 0}, {"k", 1}, {"kb", 1}, {"kib", 1}, {"m", 2}, {"mb", 2}, {"mib", 2},
      {"g", 3}, {"gb", 3}, {"gib", 3}, {"t", 4}, {"tb", 4}, {"tib", 4}};
  for (const auto& [name, power] : kUnits) {
    if (unit == name) {
      double bytes = number * std::pow(1024.0, power);
      if (bytes > 9.2e18) return absl::InvalidArgumentError(absl::StrCat("size too large: ", text));
      return static_cast<int64_t>(bytes);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("bad size unit in \"", text, "\""));
}

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(toml_text.data(), toml_text.size()),
                       std::string_view(source_name.data(), source_name.size()));
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "config " << source_name << ": " << e.description() << " at line "
        << e.source().begin.line << ", column " << e.source().begin.column;
    return absl::InvalidArgumentError(msg.str());
  }
  Config c;
  NDOCKER_RETURN_IF_ERROR(CheckKeys(root, "the top level",
                                    {"root", "address", "log_level", "tiers", "placement", "migration", "lass", "hbcsa"}));
  NDOCKER_RETURN_IF_ERROR(CheckTables(root, "", {"tiers", "placement", "migration", "lass", "hbcsa"}));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "root", &c.root));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "address", &c.address));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "log_level", &c.log_level));
  if (const toml::table* tiers = root["tiers"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(CheckKeys(*tiers, "[tiers]", {"fast", "slow"}));
    NDOCKER_RETURN_IF_ERROR(CheckTables(*tiers, "tiers.", {"fast", "slow"}));
  }
  NDOCKER_RETURN_IF_ERROR(ReadTier(root, "fast", &c));
  NDOCKER_RETURN_IF_ERROR(ReadTier(root, "slow", &c));
  if (const toml::table* p = root["placement"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(
        CheckKeys(*p, "[placement]", {"default_tier", "container_tier", "container_reserve"}));
    NDOCKER_RETURN_IF_ERROR(ReadBytes(*p, "placement.", "container_reserve", &c.container_reserve_bytes));
    NDOCKER_RETURN_IF_ERROR(ReadTierName(*p, "placement.", "default_tier", &c.default_tier));
    NDOCKER_RETURN_IF_ERROR(ReadTierName(*p, "placement.", "container_tier", &c.container_tier));
  }
  if (const toml::table* m = root["migration"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(CheckKeys(*m, "[migration]",
                                      {"sync", "throttle", "idle_io_priority", "reap_interval_seconds"}));
    NDOCKER_RETURN_IF_ERROR(ReadBool(*m, "migration.", "sync", &c.sync_migrations));
    NDOCKER_RETURN_IF_ERROR(ReadBytes(*m, "migration.", "throttle", &c.migrate_bytes_per_second));
    NDOCKER_RETURN_IF_ERROR(ReadBool(*m, "migration.", "idle_io_priority", &c.migrate_idle_io_priority));
    if (const toml::node* n = m->get("reap_interval_seconds")) {
      auto v = n->value<int64_t>();
      if (!v || *v < 1) {
        return absl::InvalidArgumentError("config: migration.reap_interval_seconds must be a whole number >= 1");
      }
      c.reap_interval_seconds = *v;
    }
  }
  if (const toml::table* l = root["lass"].as_table()) NDOCKER_RETURN_IF_ERROR(ReadLass(*l, &c.lass));
  if (const toml::table* h = root["hbcsa"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(
        CheckKeys(*h, "[hbcsa]", {"enabled", "quiet_ms", "limit_ms", "max_files", "promote", "demote"}));
    NDOCKER_RETURN_IF_ERROR(ReadBool(*h, "hbcsa.", "enabled", &c.hbcsa.enabled));
    NDOCKER_RETURN_IF_ERROR(ReadBool(*h, "hbcsa.", "demote", &c.hbcsa.demote));
    NDOCKER_RETURN_IF_ERROR(ReadString(*h, "promote", &c.hbcsa.promote));
    if (c.hbcsa.promote != "after-trace" && c.hbcsa.promote != "manual") {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: hbcsa.promote must be \"after-trace\" or \"manual\", not \"", c.hbcsa.promote, "\""));
    }
    for (auto [key, out] : {std::pair{"quiet_ms", &c.hbcsa.quiet_ms}, std::pair{"limit_ms", &c.hbcsa.limit_ms},
                            std::pair{"max_files", &c.hbcsa.max_files}}) {
      if (const toml::node* n = h->get(key)) {
        auto v = n->value_exact<int64_t>();
        if (!v || *v < 1) {
          return absl::InvalidArgumentError(absl::StrCat("config: hbcsa.", key, " must be a whole number >= 1"));
        }
        *out = *v;
      }
    }
  }
  return c;
}

namespace {

// The device of a path, or of its nearest existing parent.
std::optional<dev_t> DeviceOf(std::string path) {
  while (!path.empty()) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return st.st_dev;
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return std::nullopt;
    path = slash == 0 ? (path == "/" ? "" : "/") : path.substr(0, slash);
  }
  return std::nullopt;
}

}  // namespace

bool ResolveFlush(const Config& config, std::string* why) {
  if (config.flush_slow_commits) {
    *why = *config.flush_slow_commits ? "on (config)" : "off (config)";
    return *config.flush_slow_commits;
  }
  const std::string slow = config.slow_path.empty() ? config.root + "/slow" : config.slow_path;
  const auto slow_dev = DeviceOf(slow);
  const auto ctrd_dev = DeviceOf(config.lass.containerd_root);
  if (slow_dev && ctrd_dev && *slow_dev == *ctrd_dev) {
    *why = "off (auto: containerd's root shares the slow tier's filesystem)";
    return false;
  }
  *why = "on (auto: containerd's root is on another filesystem)";
  return true;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseConfig(buf.str(), path);
}

}  // namespace ndocker
