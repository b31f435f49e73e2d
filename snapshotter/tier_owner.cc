#include "snapshotter/tier_owner.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "snapshotter/errno_status.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/log.h"
#include "snapshotter/status_macros.h"

namespace ndocker {
namespace {

constexpr char kInstanceKey[] = "instance";
// "pending-fresh", "pending-legacy" while the owner files are being written
// for the first time (a crash there must not lock the daemon out), then "done".
constexpr char kClaimKey[] = "tier-claim";

struct Owner {
  std::string instance;
  std::string tier;
};

absl::StatusOr<std::string> NewInstanceId() {
  std::ifstream in("/proc/sys/kernel/random/uuid");
  std::string id;
  if (!(in >> id) || id.empty()) return absl::InternalError("cannot read a random uuid from the kernel");
  return id;
}

absl::StatusOr<std::optional<Owner>> ReadOwner(const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    return LastErrnoStatus("open tier owner file", file);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("instance") || !j["instance"].is_string()) {
    return absl::FailedPreconditionError(absl::StrCat("tier owner file ", file, " is not valid"));
  }
  Owner o;
  o.instance = j["instance"].get<std::string>();
  if (j.contains("tier") && j["tier"].is_string()) o.tier = j["tier"].get<std::string>();
  return std::optional<Owner>(o);
}

absl::Status WriteOwner(const std::string& tier_root, const Owner& o) {
  const std::string file = absl::StrCat(tier_root, "/", kTierOwnerFile);
  const std::string tmp = file + ".tmp";
  const std::string text = nlohmann::json{{"instance", o.instance}, {"tier", o.tier}}.dump() + "\n";
  {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return LastErrnoStatus("create tier owner file", tmp);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) return ErrnoStatus(err, "write tier owner file", tmp);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) return LastErrnoStatus("rename tier owner file", file);
  return SyncPath(tier_root);
}

// Snapshot or staging directories on a tier: anything this daemon could
// mistake for its own garbage.
absl::StatusOr<bool> Populated(const Layout& layout, Tier t) {
  for (const std::string& dir : {layout.SnapshotsDir(t), layout.StagingDir(t)}) {
    auto names = ListDir(dir);
    if (!names.ok()) return names.status();
    if (!names->empty()) return true;
  }
  return false;
}

absl::StatusOr<bool> HasRecords(MetaStore& meta) {
  bool any = false;
  NDOCKER_RETURN_IF_ERROR(meta.View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord&) {
      any = true;
      return false;
    });
  }));
  return any;
}

std::string Refusal(const Layout& layout, Tier t, absl::string_view why) {
  return absl::StrCat("the ", TierName(t), " tier ", layout.TierRoot(t), " ", why,
                      "; refusing to start so that nothing on it is deleted. Point --",
                      TierName(t), "-path at this root's own tier, or start with "
                      "--claim-tiers=adopt (take the tier; directories no snapshot of this root "
                      "knows are moved to ", kLostAndFound, "/) or --claim-tiers=wipe (take it and "
                      "delete them)");
}

}  // namespace

absl::Status ParseClaimMode(const std::string& text, ClaimMode* mode) {
  if (text.empty() || text == "refuse") {
    *mode = ClaimMode::kRefuse;
  } else if (text == "adopt") {
    *mode = ClaimMode::kAdopt;
  } else if (text == "wipe") {
    *mode = ClaimMode::kWipe;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("claim-tiers must be refuse, adopt or wipe, not \"", text, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TierClaim>> ClaimTiers(const Layout& layout, MetaStore& meta,
                                                  ClaimMode mode) {
  std::optional<std::string> instance, claim;
  NDOCKER_RETURN_IF_ERROR(meta.View([&](const MetaTxn& txn) -> absl::Status {
    auto i = txn.GetMeta(kInstanceKey);
    if (!i.ok()) return i.status();
    auto c = txn.GetMeta(kClaimKey);
    if (!c.ok()) return c.status();
    instance = *i;
    claim = *c;
    return absl::OkStatus();
  }));
  if (!instance) {
    // First start of this metadata with ownership: a store that already has
    // records was made by an older version and owns its (unmarked) tiers.
    auto records = HasRecords(meta);
    if (!records.ok()) return records.status();
    auto id = NewInstanceId();
    if (!id.ok()) return id.status();
    instance = *id;
    claim = *records ? "pending-legacy" : "pending-fresh";
    NDOCKER_RETURN_IF_ERROR(meta.Update([&](MetaTxn& txn) -> absl::Status {
      NDOCKER_RETURN_IF_ERROR(txn.PutMeta(kInstanceKey, *instance));
      return txn.PutMeta(kClaimKey, *claim);
    }));
  }
  std::vector<TierClaim> claims;
  for (Tier t : {Tier::kFast, Tier::kSlow}) {
    const std::string root = layout.TierRoot(t);
    auto owner = ReadOwner(absl::StrCat(root, "/", kTierOwnerFile));
    if (!owner.ok()) return owner.status();
    auto populated = Populated(layout, t);
    if (!populated.ok()) return populated.status();
    TierClaim c{t, false};
    std::string problem;
    if (*owner) {
      if ((*owner)->instance != *instance) {
        problem = absl::StrCat("belongs to another ndocker root (owner ", (*owner)->instance,
                               ", this root's metadata is ", *instance, ")");
      } else if (!(*owner)->tier.empty() && (*owner)->tier != TierName(t)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the ", TierName(t), " tier path ", root, " is this root's ", (*owner)->tier,
            " tier: the fast and slow paths are swapped"));
      }
    } else if (*populated && *claim != "pending-legacy") {
      problem = "holds snapshot directories but no owner file, and this root's metadata has never owned it";
    }
    if (!problem.empty()) {
      if (mode == ClaimMode::kRefuse) return absl::FailedPreconditionError(Refusal(layout, t, problem));
      spdlog::warn("msg=\"taking over a tier\" tier={} path={} why={} mode={}", TierName(t), Q(root),
                   Q(problem), mode == ClaimMode::kAdopt ? "adopt" : "wipe");
      c.adopted = true;
    }
    if (!*owner || c.adopted) {
      NDOCKER_RETURN_IF_ERROR(WriteOwner(root, Owner{*instance, TierName(t)}));
    }
    claims.push_back(c);
  }
  if (*claim != "done") {
    NDOCKER_RETURN_IF_ERROR(meta.Update([&](MetaTxn& txn) { return txn.PutMeta(kClaimKey, "done"); }));
  }
  return claims;
}

}  // namespace ndocker
