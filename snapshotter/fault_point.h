// Crash injection for the kill -9 tests: with the build option
// NDOCKER_FAULT_POINTS, a daemon started with NDOCKER_FAULT_POINT=<name>
// SIGKILLs itself the moment it reaches the step of that name, so a test can
// prove that a restart finds every step's leftovers complete or rolled back.
// Without the option (the default for deployments) FaultPoint does nothing.
#pragma once

namespace ndocker {

// The steps, in the order an operation reaches them. Tests name them too.
namespace fault {
inline constexpr char kPrepareAfterMkdir[] = "prepare.after-mkdir";
inline constexpr char kPrepareAfterLink[] = "prepare.after-link";
inline constexpr char kPrepareAfterTxn[] = "prepare.after-txn";
inline constexpr char kCommitAfterCopy[] = "commit.after-copy";
inline constexpr char kCommitAfterRename[] = "commit.after-rename";
inline constexpr char kCommitAfterTxn[] = "commit.after-txn";
inline constexpr char kCommitAfterLink[] = "commit.after-link";
inline constexpr char kMigrateAfterCopy[] = "migrate.after-copy";
inline constexpr char kMigrateAfterRename[] = "migrate.after-rename";
inline constexpr char kMigrateAfterTxn[] = "migrate.after-txn";
inline constexpr char kMigrateAfterLink[] = "migrate.after-link";
inline constexpr char kReapAfterTxn[] = "reap.after-txn";
inline constexpr char kReapMidDelete[] = "reap.mid-delete";
inline constexpr char kCleanupAfterList[] = "cleanup.after-list";
inline constexpr char kCleanupMidDelete[] = "cleanup.mid-delete";
// HBCSA hot layer builds (hbcsa/promoter/promoter.cc).
inline constexpr char kPromoteAfterBegin[] = "promote.after-begin";
inline constexpr char kPromoteAfterBuild[] = "promote.after-build";
inline constexpr char kPromoteAfterFinish[] = "promote.after-finish";
// Dropping a retired hot layer (hbcsa/promoter/hot_stacks.cc).
inline constexpr char kHotDropAfterUnmount[] = "hot-drop.after-unmount";
}  // namespace fault

// Dies by SIGKILL when `name` is the configured fault point (logged first).
void FaultPoint(const char* name);

// Whether this build honours NDOCKER_FAULT_POINT at all.
bool FaultPointsEnabled();

}  // namespace ndocker
