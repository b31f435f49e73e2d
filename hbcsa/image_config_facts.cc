#include "hbcsa/image_config_facts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ndocker::hbcsa {
namespace {

using nlohmann::json;

std::vector<std::string> StringArray(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return out;
  for (const json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::vector<std::string> ImageConfigFacts::Argv() const {
  std::vector<std::string> argv = entrypoint;
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

absl::StatusOr<ImageConfigFacts> ParseImageConfigFacts(absl::string_view bytes) {
  auto base = lass::ParseImageConfig(bytes);
  if (!base.ok()) return base.status();
  ImageConfigFacts facts;
  facts.diff_ids = std::move(base->diff_ids);
  facts.history = std::move(base->history);

  // lass has validated the document; parse again for the fields it skips.
  json doc = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  auto config = doc.is_object() ? doc.find("config") : doc.end();
  if (config != doc.end() && config->is_object()) {
    facts.entrypoint = StringArray(*config, "Entrypoint");
    facts.cmd = StringArray(*config, "Cmd");
    if (auto wd = config->find("WorkingDir"); wd != config->end() && wd->is_string()) {
      facts.working_dir = wd->get<std::string>();
    }
    for (const std::string& env : StringArray(*config, "Env")) {
      if (absl::StartsWith(env, "PATH=")) {
        facts.path = env.substr(5);
        facts.path_from_env = true;
      }
    }
  }

  size_t non_empty = 0;
  for (const lass::HistoryEntry& h : facts.history) non_empty += h.empty_layer ? 0 : 1;
  if (facts.history.empty()) {
    facts.history_note = "the config has no history";
  } else if (non_empty != facts.diff_ids.size()) {
    facts.history_note = absl::StrCat("history has ", non_empty, " entries with a layer for ",
                                      facts.diff_ids.size(), " layers: not mapped");
  } else {
    for (const lass::HistoryEntry& h : facts.history) {
      if (!h.empty_layer) facts.layer_created_by.push_back(h.created_by);
    }
  }
  return facts;
}

}  // namespace ndocker::hbcsa
