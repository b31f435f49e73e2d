#include "hbcsa/promoter/hot_layer_record.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ndocker::hbcsa {

using nlohmann::json;

namespace {

int64_t ToNanos(absl::Time t) { return t == absl::InfinitePast() ? 0 : absl::ToUnixNanos(t); }
absl::Time FromNanos(int64_t n) { return n == 0 ? absl::InfinitePast() : absl::FromUnixNanos(n); }

absl::StatusOr<HotState> ParseState(const std::string& s) {
  for (HotState st : {HotState::kBuilding, HotState::kReady, HotState::kRetired}) {
    if (s == HotStateName(st)) return st;
  }
  return absl::DataLossError(absl::StrCat("hot layer record: unknown state \"", s, "\""));
}

}  // namespace

const char* HotStateName(HotState state) {
  switch (state) {
    case HotState::kBuilding: return "building";
    case HotState::kReady: return "ready";
    case HotState::kRetired: return "retired";
  }
  return "unknown";
}

const HotLayerVersion* HotLayerRecord::Current() const {
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->state == HotState::kReady) return &*it;
  }
  return nullptr;
}

HotLayerVersion* HotLayerRecord::Find(uint64_t id) {
  for (HotLayerVersion& v : versions) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

std::string EncodeHotLayerRecord(const HotLayerRecord& record) {
  json versions = json::array();
  for (const HotLayerVersion& v : record.versions) {
    json layers = json::array();
    for (const HotLayerSource& l : v.layers) {
      layers.push_back({{"chain_id", l.chain_id},
                        {"snapshot_id", l.snapshot_id},
                        {"generation", l.generation},
                        {"tier", TierName(l.tier)}});
    }
    versions.push_back({{"id", v.id},
                        {"profile_version", v.profile_version},
                        {"state", HotStateName(v.state)},
                        {"started_ns", ToNanos(v.started)},
                        {"finished_ns", ToNanos(v.finished)},
                        {"bytes", v.bytes},
                        {"entries", v.entries},
                        {"hot_files", v.hot_files},
                        {"hot_bytes", v.hot_bytes},
                        {"layers", std::move(layers)}});
  }
  return json{{"image", record.image}, {"top_chain", record.top_chain}, {"versions", std::move(versions)}}
      .dump();
}

absl::StatusOr<HotLayerRecord> DecodeHotLayerRecord(const std::string& bytes) {
  try {
    const json j = json::parse(bytes);
    HotLayerRecord r;
    r.image = j.at("image").get<std::string>();
    r.top_chain = j.at("top_chain").get<std::string>();
    for (const json& jv : j.at("versions")) {
      HotLayerVersion v;
      v.id = jv.at("id").get<uint64_t>();
      v.profile_version = jv.at("profile_version").get<uint64_t>();
      absl::StatusOr<HotState> state = ParseState(jv.at("state").get<std::string>());
      if (!state.ok()) return state.status();
      v.state = *state;
      v.started = FromNanos(jv.at("started_ns").get<int64_t>());
      v.finished = FromNanos(jv.at("finished_ns").get<int64_t>());
      v.bytes = jv.at("bytes").get<int64_t>();
      v.entries = jv.at("entries").get<int64_t>();
      v.hot_files = jv.at("hot_files").get<int64_t>();
      v.hot_bytes = jv.at("hot_bytes").get<int64_t>();
      for (const json& jl : jv.at("layers")) {
        HotLayerSource l;
        l.chain_id = jl.at("chain_id").get<std::string>();
        l.snapshot_id = jl.at("snapshot_id").get<uint64_t>();
        l.generation = jl.at("generation").get<uint64_t>();
        const std::string tier = jl.at("tier").get<std::string>();
        if (tier != "fast" && tier != "slow") {
          return absl::DataLossError(absl::StrCat("hot layer record: unknown tier \"", tier, "\""));
        }
        l.tier = tier == "fast" ? Tier::kFast : Tier::kSlow;
        v.layers.push_back(std::move(l));
      }
      r.versions.push_back(std::move(v));
    }
    return r;
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("hot layer record: ", e.what()));
  }
}

}  // namespace ndocker::hbcsa
