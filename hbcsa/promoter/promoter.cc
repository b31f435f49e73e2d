#include "hbcsa/promoter/promoter.h"

#include "absl/strings/str_cat.h"
#include "snapshotter/fault_point.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

absl::StatusOr<HotLayerRecord> Promoter::Promote(const Profile& profile) {
  absl::StatusOr<std::optional<HotLayerRecord>> existing = hot_.Get(profile.image);
  if (!existing.ok()) return existing.status();
  if (*existing && (*existing)->Current() != nullptr &&
      (*existing)->Current()->profile_version == profile.version) {
    return **existing;
  }

  absl::StatusOr<std::vector<ChainLayer>> chain = chain_(profile.top_chain);
  if (!chain.ok()) return chain.status();
  std::vector<HotLayerSource> sources;
  std::vector<std::string> dirs;
  for (const ChainLayer& l : *chain) {
    sources.push_back(l.source);
    dirs.push_back(l.fs_dir);
  }
  HotSet hot_set;
  for (const HotFile& f : profile.files) hot_set.Add(f.path);

  const absl::Time start = absl::Now();
  absl::StatusOr<HotLayerVersion> version =
      hot_.Begin(profile.image, profile.top_chain, profile.version, sources, start);
  if (!version.ok()) return version.status();
  auto abort = [&](absl::Status why) {
    if (absl::Status s = hot_.Abort(profile.image, version->id); !s.ok()) {
      spdlog::warn("msg=\"hot layer build: abort failed (Recover removes it at the next start)\" "
                   "image={} id={} error={}",
                   Q(profile.image), version->id, Q(s.message()));
    }
    return why;
  };
  FaultPoint(fault::kPromoteAfterBegin);
  absl::StatusOr<BuildReport> report = BuildMetadataLayer(dirs, hot_set, hot_.DirOf(version->id), options_);
  if (!report.ok()) return abort(report.status());
  FaultPoint(fault::kPromoteAfterBuild);

  absl::StatusOr<std::vector<ChainLayer>> after = chain_(profile.top_chain);
  if (!after.ok()) return abort(after.status());
  std::vector<HotLayerSource> now;
  for (const ChainLayer& l : *after) now.push_back(l.source);
  if (now != sources) {
    return abort(absl::AbortedError(absl::StrCat("a layer of image ", profile.image,
                                                 " moved while its hot layer was built; build again")));
  }
  const int64_t bytes = report->bytes_on_disk;
  if (budget_.reserve) {
    if (absl::Status room = budget_.reserve(bytes); !room.ok()) return abort(room);
  }
  absl::StatusOr<HotLayerRecord> done = hot_.Finish(profile.image, version->id, *report, bytes, absl::Now());
  if (!done.ok()) {
    if (budget_.release) budget_.release(bytes);
    return abort(done.status());
  }
  FaultPoint(fault::kPromoteAfterFinish);
  spdlog::info("msg=\"hot layer built\" image={} id={} profile_version={} layers={} entries={} hot_files={} "
               "hot_bytes={} hot_not_found={} bytes={} bytes_per_entry={:.0f} ms={}",
               Q(profile.image), version->id, profile.version, dirs.size(), report->entries(),
               report->hot_files, report->hot_bytes, report->hot_not_found, report->bytes_on_disk,
               report->bytes_per_entry(), absl::ToInt64Milliseconds(absl::Now() - start));
  return done;
}

}  // namespace ndocker::hbcsa
