#include "hbcsa/profiles/profile.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ndocker::hbcsa {

using nlohmann::json;

int64_t Profile::bytes() const {
  int64_t total = 0;
  for (const HotFile& f : files) total += f.size;
  return total;
}

int MergeRun(Profile& profile, const TracedRun& run, absl::Time now, size_t max_files) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < profile.files.size(); ++i) index[profile.files[i].path] = i;
  bool changed = false;
  int dropped = 0;
  std::map<std::string, bool> seen_this_run;
  for (const HotFile& f : run.files) {
    if (seen_this_run[f.path]) continue;
    seen_this_run[f.path] = true;
    if (auto it = index.find(f.path); it != index.end()) {
      HotFile& have = profile.files[it->second];
      have.runs += 1;
      if (have.layer != f.layer || have.size != f.size) {
        have.layer = f.layer;
        have.size = f.size;
        changed = true;
      }
      continue;
    }
    if (profile.files.size() >= max_files) {
      ++dropped;
      continue;
    }
    HotFile added = f;
    added.runs = 1;
    index[added.path] = profile.files.size();
    profile.files.push_back(std::move(added));
    changed = true;
  }
  profile.runs += 1;
  if (!run.complete) profile.incomplete_runs += 1;
  profile.updated = now;
  if (changed || profile.version == 0) profile.version += 1;
  return dropped;
}

std::string ToJson(const Profile& p) {
  json files = json::array();
  for (const HotFile& f : p.files) {
    files.push_back({{"path", f.path}, {"layer", f.layer}, {"size", f.size}, {"runs", f.runs}});
  }
  return json{{"image", p.image},
              {"top_chain", p.top_chain},
              {"version", p.version},
              {"runs", p.runs},
              {"incomplete_runs", p.incomplete_runs},
              {"updated_unix_nano", p.updated == absl::InfinitePast() ? 0 : absl::ToUnixNanos(p.updated)},
              {"bytes", p.bytes()},
              {"files", files}}
      .dump();
}

namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("profile JSON: ", what));
}

bool IsDigest(const std::string& s) {
  return absl::StartsWith(s, "sha256:") && s.size() == 71 &&
         s.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
}

}  // namespace

absl::StatusOr<Profile> ProfileFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  auto str = [&](const char* k) -> const json* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? &*it : nullptr;
  };
  auto num = [&](const json& o, const char* k) -> const json* {
    auto it = o.find(k);
    return it != o.end() && it->is_number_integer() && it->get<int64_t>() >= 0 ? &*it : nullptr;
  };
  Profile p;
  if (!str("image") || !IsDigest(j["image"].get<std::string>())) return Bad("image must be a sha256 digest");
  p.image = j["image"].get<std::string>();
  if (str("top_chain")) p.top_chain = j["top_chain"].get<std::string>();
  if (!p.top_chain.empty() && !IsDigest(p.top_chain)) return Bad("top_chain must be a sha256 digest");
  if (!num(j, "version") || !num(j, "runs")) return Bad("version and runs must be whole numbers >= 0");
  p.version = j["version"].get<uint64_t>();
  p.runs = j["runs"].get<int>();
  if (num(j, "incomplete_runs")) p.incomplete_runs = j["incomplete_runs"].get<int>();
  if (num(j, "updated_unix_nano") && j["updated_unix_nano"].get<int64_t>() > 0) {
    p.updated = absl::FromUnixNanos(j["updated_unix_nano"].get<int64_t>());
  }
  auto files = j.find("files");
  if (files == j.end() || !files->is_array()) return Bad("files must be an array");
  std::map<std::string, bool> seen;
  for (const json& f : *files) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string()) return Bad("a file has no path");
    HotFile h;
    h.path = f["path"].get<std::string>();
    // A path is looked up inside a rootfs: absolute, no "..", no NUL.
    if (h.path.empty() || h.path[0] != '/' || absl::StrContains(h.path, "/../") ||
        absl::EndsWith(h.path, "/..") || h.path.find('\0') != std::string::npos) {
      return Bad(absl::StrCat("bad path \"", h.path, "\""));
    }
    if (seen[h.path]) return Bad(absl::StrCat("path \"", h.path, "\" twice"));
    seen[h.path] = true;
    if (f.contains("layer")) {
      if (!f["layer"].is_string() || (!f["layer"].get<std::string>().empty() && !IsDigest(f["layer"].get<std::string>()))) {
        return Bad(absl::StrCat("layer of \"", h.path, "\" must be a sha256 digest"));
      }
      h.layer = f["layer"].get<std::string>();
    }
    if (!num(f, "size") || !num(f, "runs")) return Bad(absl::StrCat("size and runs of \"", h.path, "\""));
    h.size = f["size"].get<int64_t>();
    h.runs = f["runs"].get<int>();
    p.files.push_back(std::move(h));
  }
  return p;
}

}  // namespace ndocker::hbcsa
