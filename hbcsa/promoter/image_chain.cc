#include "hbcsa/promoter/image_chain.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace ndocker::hbcsa {

absl::StatusOr<std::vector<ChainLayer>> ChainFromEntries(const std::vector<SnapshotEntry>& entries,
                                                         const Layout& layout, const std::string& top_chain) {
  std::map<std::string, const SnapshotEntry*> by_key;
  const SnapshotEntry* top = nullptr;
  for (const SnapshotEntry& e : entries) {
    by_key[e.key] = &e;
    if (top == nullptr && e.record.kind == Kind::kCommitted && ClientNameOfKey(e.key) == top_chain) top = &e;
  }
  if (top == nullptr) return absl::NotFoundError(absl::StrCat("no committed layer ", top_chain));
  std::vector<ChainLayer> chain;
  for (const SnapshotEntry* e = top; e != nullptr;) {
    if (e->record.kind != Kind::kCommitted) {
      return absl::FailedPreconditionError(absl::StrCat("layer ", e->key, " of ", top_chain, " is not committed"));
    }
    if (chain.size() > entries.size()) return absl::DataLossError("snapshot parents form a cycle");
    const SnapshotRecord& r = e->record;
    chain.push_back(ChainLayer{HotLayerSource{ClientNameOfKey(e->key), r.id, r.generation, r.tier},
                               layout.FsDir(r.tier, r.id, r.generation)});
    if (r.parent.empty()) break;
    auto it = by_key.find(r.parent);
    if (it == by_key.end()) {
      return absl::DataLossError(absl::StrCat("parent ", r.parent, " of ", e->key, " is missing"));
    }
    e = it->second;
  }
  return chain;
}

absl::StatusOr<std::vector<ChainLayer>> ReadImageChain(Snapshotter& core, const std::string& top_chain) {
  absl::StatusOr<std::vector<SnapshotEntry>> entries = core.Entries();
  if (!entries.ok()) return entries.status();
  return ChainFromEntries(*entries, core.layout(), top_chain);
}

}  // namespace ndocker::hbcsa
