#include "snapshotter/config.h"

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

absl::Status ReadTier(const toml::table& root, const std::string& name, std::string* path,
                      int64_t* budget) {
  const toml::table* tiers = root["tiers"].as_table();
  if (tiers == nullptr) return absl::OkStatus();
  const toml::table* t = (*tiers)[name].as_table();
  if (t == nullptr) return absl::OkStatus();
  NDOCKER_RETURN_IF_ERROR(CheckKeys(*t, absl::StrCat("[tiers.", name, "]"),
                                    budget ? std::set<std::string>{"path", "budget"}
                                           : std::set<std::string>{"path"}));
  NDOCKER_RETURN_IF_ERROR(ReadString(*t, "path", path));
  if (budget == nullptr) return absl::OkStatus();
  if (const toml::node* b = t->get("budget")) {
    if (auto i = b->value_exact<int64_t>()) {  // exact: no bool or float conversion
      *budget = *i;
    } else if (auto s = b->value<std::string>()) {
      auto bytes = ParseByteSize(*s);
      if (!bytes.ok()) return bytes.status();
      *budget = *bytes;
    } else {
      return absl::InvalidArgumentError("config: tiers.fast.budget must be bytes or a size like \"8GiB\"");
    }
    if (*budget < 0) return absl::InvalidArgumentError("config: tiers.fast.budget must not be negative");
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
  o.sync_migrations = sync_migrations;
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
                                    {"root", "address", "log_level", "tiers", "placement", "migration"}));
  NDOCKER_RETURN_IF_ERROR(CheckTables(root, "", {"tiers", "placement", "migration"}));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "root", &c.root));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "address", &c.address));
  NDOCKER_RETURN_IF_ERROR(ReadString(root, "log_level", &c.log_level));
  if (const toml::table* tiers = root["tiers"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(CheckKeys(*tiers, "[tiers]", {"fast", "slow"}));
    NDOCKER_RETURN_IF_ERROR(CheckTables(*tiers, "tiers.", {"fast", "slow"}));
  }
  NDOCKER_RETURN_IF_ERROR(ReadTier(root, "fast", &c.fast_path, &c.fast_budget_bytes));
  NDOCKER_RETURN_IF_ERROR(ReadTier(root, "slow", &c.slow_path, nullptr));
  if (const toml::table* p = root["placement"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(CheckKeys(*p, "[placement]", {"default_tier"}));
    std::string tier;
    NDOCKER_RETURN_IF_ERROR(ReadString(*p, "default_tier", &tier));
    if (!tier.empty()) {
      auto t = ParseTier(tier);
      if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("config: placement.default_tier: ", t.status().message()));
      c.default_tier = *t;
    }
  }
  if (const toml::table* m = root["migration"].as_table()) {
    NDOCKER_RETURN_IF_ERROR(CheckKeys(*m, "[migration]", {"sync"}));
    if (const toml::node* n = m->get("sync")) {
      auto b = n->value_exact<bool>();  // exact: 1 is not true
      if (!b) return absl::InvalidArgumentError("config: migration.sync must be true or false");
      c.sync_migrations = *b;
    }
  }
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseConfig(buf.str(), path);
}

}  // namespace ndocker
