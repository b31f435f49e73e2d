// kill -9 at every step (issue 8): for each fault point of the mover spec the
// daemon is started with NDOCKER_FAULT_POINT=<name>, driven to that step, and
// must SIGKILL itself there. Restarted without it, it must show
//   - every snapshot made before the crash: present, its tree complete and
//     byte-identical (mounted through a View, or the active's own mounts,
//     every file hashed against what was written through the mounts);
//   - the interrupted operation done completely or not at all (a Commit:
//     the active or the committed snapshot, never both, never neither);
//   - after a Cleanup, nothing left: no staging entry, every dir under
//     <tier>/snapshots is the current copy of a record (<id> or <id>-<gen>),
//     every <root>/l link resolves to its record's dir;
//   - new Prepare/Commit (also one that moves to the slow tier) still work.
// The tiers are real filesystems (TierFilesystems): tmpfs fast + loop ext4
// slow, and for the commit and migrate steps also both on one ext4. Two more
// cases keep a View of the migrating layer mounted across the crash: its old
// copy must survive the restart and Cleanup until that mount is gone.
// cleanup.after-list is reached by the Cleanup every start-up runs.
//
// Each scenario adds a row to a step x outcome table, printed (markdown) at
// the end of the run and appended to $NDOCKER_CRASH_TABLE when set:
//   ndocker_daemon_tests '[crash]'
// Needs root (mounts) and a daemon built with -DNDOCKER_FAULT_POINTS=ON.
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <set>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

#include "snapshotter/layout.h"
#include "test/daemon/admin_rpc_client.h"
#include "test/daemon/daemon_fixture.h"
#include "test/daemon/tier_filesystems.h"

namespace ndocker::daemon_test {
namespace {

namespace fs = std::filesystem;
using Mounts = google::protobuf::RepeatedPtrField<PbMount>;

// The fast budget: every baseline snapshot fits in it, a commit carrying
// kBigBytes does not, so that Commit moves the snapshot to the slow tier.
constexpr char kFastBudget[] = "1MiB";
constexpr size_t kBigBytes = size_t{2} << 20;

// ---------------------------------------------------------------------------
// The step x outcome table

struct Row {
  std::string step, tiers;
  std::string crash = "not reached";  // where the daemon died
  std::string outcome = "-";          // the interrupted operation after restart
  std::string intact = "-";           // snapshots made before the crash
  std::string leftovers = "-";        // what Cleanup left
  std::string serves = "-";           // new Prepare/Commit after restart
};

class Table {
 public:
  void Add(const Row& r) {
    std::lock_guard<std::mutex> lock(mu_);
    rows_.push_back(r);
    std::cout << "crash-table: " << Line(r) << std::endl;
  }
  ~Table() {
    if (rows_.empty()) return;
    std::ostringstream md;
    md << "| step | tiers | daemon died | interrupted operation after restart | snapshots made before "
          "| left after Cleanup | new Prepare/Commit |\n"
       << "|---|---|---|---|---|---|---|\n";
    for (const Row& r : rows_) md << Line(r) << "\n";
    std::cout << "\nkill -9 at every step (" << rows_.size() << " scenarios):\n" << md.str() << std::flush;
    const char* path = std::getenv("NDOCKER_CRASH_TABLE");
    if (path != nullptr && *path != '\0') {
      std::ofstream out(path, std::ios::app);
      out << md.str();
    }
  }

 private:
  static std::string Line(const Row& r) {
    return "| `" + r.step + "` | " + r.tiers + " | " + r.crash + " | " + r.outcome + " | " + r.intact + " | " +
           r.leftovers + " | " + r.serves + " |";
  }
  std::mutex mu_;
  std::vector<Row> rows_;
};
Table g_table;

// ---------------------------------------------------------------------------
// What a tree should hold

struct Entry {
  char type = 'f';  // f, d, l
  mode_t mode = 0644;
  std::string data;  // file content or symlink target
};
using Tree = std::map<std::string, Entry>;  // relative path -> entry (no ".")

std::string Sha256(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string Render(char type, mode_t mode, const std::string& data) {
  std::ostringstream s;
  s << type << " " << std::oct << (mode & 07777) << std::dec;
  if (type == 'f') s << " " << data.size() << " sha256:" << Sha256(data);
  if (type == 'l') s << " -> " << data;
  return s.str();
}

std::map<std::string, std::string> Rendered(const Tree& t) {
  std::map<std::string, std::string> out;
  for (const auto& [p, e] : t) out[p] = Render(e.type, e.mode, e.data);
  return out;
}

// Every entry under `root` (a mounted snapshot), files read and hashed.
std::map<std::string, std::string> Scan(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string abs = it->path().string();
    // lexically: fs::relative would resolve the symlinks being listed
    const std::string rel = it->path().lexically_relative(root).string();
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) {
      out[rel] = std::string("lstat: ") + std::strerror(errno);
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      std::string data;
      try {
        data = ReadFile(abs);
      } catch (const std::exception& e) {
        out[rel] = std::string("read failed: ") + e.what();
        continue;
      }
      out[rel] = Render('f', st.st_mode, data);
    } else if (S_ISDIR(st.st_mode)) {
      out[rel] = Render('d', st.st_mode, "");
    } else if (S_ISLNK(st.st_mode)) {
      out[rel] = Render('l', st.st_mode, fs::read_symlink(abs).string());
    } else {
      out[rel] = "unexpected file type " + std::to_string(st.st_mode & S_IFMT);
    }
  }
  return out;
}

// One change made through a mounted active snapshot.
struct Op {
  enum Kind { kWrite, kSymlink, kRemove } kind;
  std::string path;
  std::string data;
  mode_t mode = 0644;
};

std::string RandomBytes(const std::string& seed, size_t n) {
  std::seed_seq seq(seed.begin(), seed.end());
  std::mt19937_64 rng(seq);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>(v >> (8 * j));
  }
  return out;
}

// A layer's own files: a little tree under <tag>/, the shared file, and
// optionally a big file (to overflow the fast budget).
std::vector<Op> LayerOps(const std::string& tag, size_t big = 0) {
  std::vector<Op> ops = {
      {Op::kWrite, tag + "/hello.txt", "hello from " + tag + "\n", 0644},
      {Op::kWrite, tag + "/data/blob.bin", RandomBytes(tag + "/blob", 48 << 10), 0644},
      {Op::kWrite, tag + "/data/empty", "", 0600},
      {Op::kWrite, tag + "/data/run.sh", "#!/bin/sh\necho " + tag + "\n", 0755},
      {Op::kSymlink, tag + "/link", "data/blob.bin", 0777},
      {Op::kWrite, "shared/file", "last written by " + tag + "\n", 0644},
  };
  for (int i = 0; i < 6; ++i) {
    ops.push_back({Op::kWrite, tag + "/data/sub/f" + std::to_string(i),
                   RandomBytes(tag + "/f" + std::to_string(i), 1000 + 517 * static_cast<size_t>(i)), 0640});
  }
  if (big > 0) ops.push_back({Op::kWrite, tag + "/big.bin", RandomBytes(tag + "/big", big), 0644});
  return ops;
}

void ApplyToModel(const Op& op, Tree* t) {
  // Parents are directories (made with mode 0755 by Apply).
  for (size_t pos = op.path.find('/'); pos != std::string::npos; pos = op.path.find('/', pos + 1)) {
    const std::string dir = op.path.substr(0, pos);
    if (!t->contains(dir)) (*t)[dir] = Entry{'d', 0755, ""};
  }
  switch (op.kind) {
    case Op::kWrite: (*t)[op.path] = Entry{'f', op.mode, op.data}; break;
    case Op::kSymlink: (*t)[op.path] = Entry{'l', 0777, op.data}; break;
    case Op::kRemove:
      for (auto it = t->begin(); it != t->end();) {
        if (it->first == op.path || it->first.rfind(op.path + "/", 0) == 0) it = t->erase(it);
        else ++it;
      }
      break;
  }
}

void ApplyToDisk(const Op& op, const std::string& mnt) {
  const fs::path p = fs::path(mnt) / op.path;
  fs::path acc = mnt;
  for (const auto& part : fs::path(op.path).parent_path()) {
    acc /= part;
    if (::mkdir(acc.c_str(), 0755) == 0) {
      if (::chmod(acc.c_str(), 0755) != 0) throw std::runtime_error("chmod " + acc.string());
    } else if (errno != EEXIST) {
      throw std::runtime_error("mkdir " + acc.string() + ": " + std::strerror(errno));
    }
  }
  switch (op.kind) {
    case Op::kWrite:
      WriteFile(p.string(), op.data);
      if (::chmod(p.c_str(), op.mode) != 0) throw std::runtime_error("chmod " + p.string());
      break;
    case Op::kSymlink:
      if (::symlink(op.data.c_str(), p.c_str()) != 0) {
        throw std::runtime_error("symlink " + p.string() + ": " + std::strerror(errno));
      }
      break;
    case Op::kRemove: fs::remove_all(p); break;
  }
}

std::string ShortDiff(const std::map<std::string, std::string>& want,
                      const std::map<std::string, std::string>& got) {
  std::string d = DiffMaps(want, got);
  if (d.size() > 3000) d = d.substr(0, 3000) + "...\n";
  return d;
}

// ---------------------------------------------------------------------------
// The fault points (mover spec)

enum class Step { kPrepare, kCommit, kMigrate, kReap, kCleanup };

Step StepOf(const std::string& point) {
  if (point.rfind("prepare.", 0) == 0) return Step::kPrepare;
  if (point.rfind("commit.", 0) == 0) return Step::kCommit;
  if (point.rfind("migrate.", 0) == 0) return Step::kMigrate;
  if (point.rfind("reap.", 0) == 0) return Step::kReap;
  if (point.rfind("cleanup.", 0) == 0) return Step::kCleanup;
  throw std::invalid_argument("unknown fault point " + point);
}

// What was written, per snapshot key (the merged tree a mount shows).
struct Snap {
  std::string key, parent, tier;
  bool committed = false;
  Tree tree;
};

class CrashScenario {
 public:
  // live_view: a View on top of the migrating layer stays mounted (by this
  // process) across the crash; its old copy must outlive the restart and
  // Cleanup until the mount is gone.
  CrashScenario(std::string point, TierFilesystems::Mode mode, bool live_view = false)
      : point_(std::move(point)), step_(StepOf(point_)), live_view_(live_view), tiers_(mode),
        d_(Options(tiers_)) {
    row_.step = point_;
    row_.tiers = std::string(tiers_.mode_name()) + (live_view_ ? ", view mounted" : "");
    admin_.Connect(d_.channel());
  }
  ~CrashScenario() { g_table.Add(row_); }

  void Run() {
    Baseline();
    Crash();
    RestartClean();
    VerifyBefore();
    VerifyInterrupted();
    if (live_view_) VerifyLiveViewOutlives();
    VerifyCleanupLeavesNothing("after restart");
    VerifyServes();
  }

 private:
  static DaemonOptions Options(const TierFilesystems& t) {
    DaemonOptions o;
    o.extra_args = t.DaemonArgs();
    o.extra_args.insert(o.extra_args.end(), {"--fast-budget", kFastBudget});
    return o;
  }

  SnapshotsClient& c() { return d_.client(); }

  std::string NewMountDir() {
    const std::string dir = d_.base() + "/mnt-" + std::to_string(++mounts_made_);
    fs::create_directory(dir);
    return dir;
  }

  // Mounts `m`, runs fn on the mount point, unmounts.
  void WithMounted(const Mounts& m, const std::function<void(const std::string&)>& fn) {
    const std::string dir = NewMountDir();
    ScopedMount mnt(ToCore(m), dir);
    INFO("mounting " << MountsString(m) << ": " << mnt.status().ToString());
    REQUIRE(mnt.mounted());
    fn(dir);
    absl::Status st = mnt.Unmount();
    INFO("unmount " << dir << ": " << st.ToString());
    REQUIRE(st.ok());
  }

  // Prepare `key` on `tier`, write `ops` through its mounts.
  void PrepareAndWrite(const std::string& key, const std::string& parent, const std::string& tier,
                       const std::vector<Op>& ops) {
    INFO("Prepare " << key << " on " << tier);
    Snap s{key, parent, tier, false, parent.empty() ? Tree{} : snaps_.at(parent).tree};
    Mounts m;
    REQUIRE_OK(c().Prepare(key, parent, {{kTierLabelKey, tier}}, &m));
    WithMounted(m, [&](const std::string& dir) {
      for (const Op& op : ops) {
        ApplyToDisk(op, dir);
        ApplyToModel(op, &s.tree);
      }
    });
    snaps_[key] = std::move(s);
  }

  void CommitAs(const std::string& name, const std::string& key) {
    INFO("Commit " << key << " as " << name);
    Snap s = snaps_.at(key);
    REQUIRE_OK(c().Commit(name, key, {{kTierLabelKey, s.tier}}));
    snaps_.erase(key);
    s.key = name;
    s.committed = true;
    snaps_[name] = std::move(s);
  }

  void MakeCommitted(const std::string& name, const std::string& parent, const std::string& tier,
                     const std::vector<Op>& ops) {
    PrepareAndWrite(name + "-active", parent, tier, ops);
    CommitAs(name, name + "-active");
  }

  // Snapshots on both tiers, a chain across them, an active with data.
  void Baseline() {
    MakeCommitted("base/A", "", "fast", LayerOps("A"));
    std::vector<Op> b = LayerOps("B");
    b.push_back({Op::kRemove, "A/hello.txt", "", 0});    // a whiteout
    b.push_back({Op::kRemove, "A/data/sub", "", 0});     // a whited-out dir
    MakeCommitted("base/B", "base/A", "slow", b);
    MakeCommitted("base/C", "base/B", "fast", LayerOps("C"));
    MakeCommitted("base/D", "", "slow", LayerOps("D"));
    PrepareAndWrite("base/E-active", "base/D", "fast", LayerOps("E"));
    MakeCommitted("junk/1", "", "fast", LayerOps("J1"));
    MakeCommitted("junk/2", "base/D", "slow", LayerOps("J2"));
    if (live_view_) {
      // Like a container's rootfs: base/C's chain (C, B, A) mounted.
      Mounts m;
      REQUIRE_OK(c().View("live/view", "base/C", {}, &m));
      live_dir_ = NewMountDir();
      live_mount_ = std::make_unique<ScopedMount>(ToCore(m), live_dir_);
      INFO("mount live/view: " << live_mount_->status().ToString());
      REQUIRE(live_mount_->mounted());
      REQUIRE(ShortDiff(Rendered(snaps_.at("base/C").tree), Scan(live_dir_)) == "");
    }
    if (step_ == Step::kCommit) {
      // Committing this one overflows the fast budget: a move to slow.
      PrepareAndWrite("crash/T-active", "base/A", "fast", LayerOps("T", kBigBytes));
    }
    // Nothing of the above may be the daemon's unsynced memory only.
    REQUIRE(d_.Stop() == 0);
  }

  // Starts with the fault point, drives the step, waits for the SIGKILL.
  void Crash() {
    d_.set_env({"NDOCKER_FAULT_POINT=" + point_});
    bool died_at_start = false;
    std::string start_error;
    try {
      d_.Start();
      admin_.Connect(d_.channel());
    } catch (const std::runtime_error& e) {
      died_at_start = true;
      start_error = e.what();
    }
    INFO("start with the fault point: " << (died_at_start ? start_error : "up"));
    std::optional<int> status;
    if (died_at_start) {
      status = d_.last_exit_status();
      row_.crash = "at start-up";
    } else {
      trigger_status_ = Trigger();
      status = d_.WaitForExit(std::chrono::seconds(20));
      if (!status && step_ == Step::kReap) {
        // Reaping also runs at Cleanup (and periodically).
        (void)c().Cleanup();
        status = d_.WaitForExit(std::chrono::seconds(40));
      }
      row_.crash = "in " + TriggerName() + " (rpc: " + CodeName(trigger_status_) + ")";
    }
    d_.set_env({});
    INFO("log:\n" << d_.LogTail());
    if (!status) {
      row_.crash = "not reached";
      d_.Kill();
      FAIL("the daemon did not die at " << point_ << " (trigger rpc: " << Describe(trigger_status_) << ")");
    }
    INFO("wait status " << *status);
    const bool sigkill = WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
    if (!sigkill) row_.crash += ", not by SIGKILL (status " + std::to_string(*status) + ")";
    REQUIRE(sigkill);
    const int seen = FaultLines();
    if (seen != 1) row_.crash += ", " + std::to_string(seen) + " log lines";
    CHECK(seen == 1);
  }

  std::string TriggerName() const {
    switch (step_) {
      case Step::kPrepare: return "Prepare";
      case Step::kCommit: return "Commit (move to slow)";
      case Step::kMigrate: return "Migrate fast->slow";
      case Step::kReap: return "reap after Migrate";
      case Step::kCleanup: return "Cleanup";
    }
    return "?";
  }

  grpc::Status Trigger() {
    switch (step_) {
      case Step::kPrepare:
        return c().Prepare("crash/P-active", "base/C", {{kTierLabelKey, "fast"}});
      case Step::kCommit:
        return c().Commit("crash/T", "crash/T-active", {{kTierLabelKey, "fast"}});
      case Step::kMigrate:
      case Step::kReap:
#ifdef NDOCKER_HAVE_ADMIN_MIGRATE
        return admin_.Migrate("base/A", "slow", /*wait=*/true);
#else
        return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "this build's admin.proto has no rpc Migrate (the mover is not merged)");
#endif
      case Step::kCleanup: {
        // Removed snapshots keep their dirs until a Cleanup. (Removed here,
        // not before the restart: the start-up Cleanup would delete them.)
        for (const std::string key : {"junk/2", "junk/1"}) {
          grpc::Status st = c().Remove(key);
          if (!st.ok()) return st;
          snaps_.erase(key);
          removed_.push_back(key);
        }
        return c().Cleanup();
      }
    }
    return grpc::Status::OK;
  }

  // Log lines saying the fault point was reached, for this point.
  int FaultLines() const {
    std::istringstream log(ReadFile(d_.log_path()));
    int n = 0;
    const std::regex point_re("point=\"?" + std::regex_replace(point_, std::regex(R"(\.)"), R"(\.)") +
                              "\"?(\\s|$)");
    for (std::string line; std::getline(log, line);) {
      if (line.find("fault point reached") != std::string::npos && std::regex_search(line, point_re)) ++n;
    }
    return n;
  }

  void RestartClean() {
    INFO("restart without the fault point");
    try {
      d_.Start();
    } catch (const std::runtime_error& e) {
      row_.outcome = "daemon does not start";
      FAIL("restart after the crash failed: " << e.what());
    }
    admin_.Connect(d_.channel());
  }

  // Mounts what `key` shows (a View of a committed one, the active's own
  // mounts) and compares every file with what was written.
  std::string CheckTree(const Snap& s) {
    Mounts m;
    std::string view;
    if (s.committed) {
      view = "verify/" + std::to_string(++views_made_);
      grpc::Status st = c().View(view, s.key, {}, &m);
      if (!st.ok()) return s.key + ": View: " + Describe(st);
    } else {
      grpc::Status st = c().Mounts(s.key, &m);
      if (!st.ok()) return s.key + ": Mounts: " + Describe(st);
    }
    std::map<std::string, std::string> got;
    WithMounted(m, [&](const std::string& dir) { got = Scan(dir); });
    if (!view.empty()) {
      grpc::Status st = c().Remove(view);
      if (!st.ok()) return s.key + ": Remove of its view: " + Describe(st);
    }
    const std::string diff = ShortDiff(Rendered(s.tree), got);
    return diff.empty() ? "" : s.key + ": tree differs from what was written:\n" + diff;
  }

  // Every snapshot made before the crash: there, same kind, same bytes.
  void VerifyBefore() {
    std::vector<std::string> problems;
    int checked = 0;
    for (const auto& [key, s] : snaps_) {
      if (key.rfind("crash/", 0) == 0) continue;  // the interrupted one: VerifyInterrupted
      ++checked;
      pb::Info info;
      grpc::Status st = c().Stat(key, &info);
      if (!st.ok()) {
        problems.push_back(key + ": Stat: " + Describe(st));
        continue;
      }
      if (info.kind() != (s.committed ? pb::COMMITTED : pb::ACTIVE)) {
        problems.push_back(key + ": kind " + pb::Kind_Name(info.kind()));
      }
      if (info.parent() != s.parent) problems.push_back(key + ": parent " + info.parent() + ", want " + s.parent);
      if (std::string p = CheckTree(s); !p.empty()) problems.push_back(p);
    }
    for (const std::string& key : removed_) {
      grpc::Status st = c().Stat(key);
      if (st.error_code() != grpc::StatusCode::NOT_FOUND) {
        problems.push_back(key + " was removed before the crash, Stat says " + Describe(st));
      }
    }
    row_.intact = problems.empty() ? "all " + std::to_string(checked) + " intact"
                                   : std::to_string(problems.size()) + " PROBLEMS";
    INFO(Joined(problems));
    CHECK(problems.empty());
  }

  std::optional<adminpb::SnapshotSummary> Summary(const std::string& key) {
    std::vector<adminpb::SnapshotSummary> all;
    if (!admin_.ListSnapshots(&all).ok()) return std::nullopt;
    for (const auto& s : all) {
      if (s.key() == key) return s;
    }
    return std::nullopt;
  }

  // Where <root>/l/<id> points (canonical), or "" when it does not resolve.
  std::string LinkTarget(uint64_t id) {
    std::error_code ec;
    fs::path p = fs::canonical(d_.root() + "/l/" + Layout::ShortId(id), ec);
    return ec ? "" : p.string();
  }

  std::string TierRootReal(const std::string& tier) {
    return fs::canonical(tier == "fast" ? tiers_.fast() : tiers_.slow()).string();
  }

  // The interrupted operation: all or nothing.
  void VerifyInterrupted() {
    std::vector<std::string> problems;
    switch (step_) {
      case Step::kPrepare: {
        pb::Info info;
        grpc::Status st = c().Stat("crash/P-active", &info);
        if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
          row_.outcome = "rolled back: no snapshot";
        } else if (st.ok()) {
          row_.outcome = "done: the active exists";
          Snap s{"crash/P-active", "base/C", "fast", false, snaps_.at("base/C").tree};
          if (info.kind() != pb::ACTIVE) problems.push_back("crash/P-active is " + pb::Kind_Name(info.kind()));
          if (std::string p = CheckTree(s); !p.empty()) problems.push_back(p);
          snaps_["crash/P-active"] = s;
        } else {
          row_.outcome = "Stat: " + CodeName(st);
          problems.push_back("Stat crash/P-active: " + Describe(st));
        }
        break;
      }
      case Step::kCommit: {
        grpc::Status active = c().Stat("crash/T-active");
        grpc::Status committed = c().Stat("crash/T");
        INFO("active: " << Describe(active) << ", committed: " << Describe(committed));
        Snap s = snaps_.at("crash/T-active");
        if (active.ok() && committed.error_code() == grpc::StatusCode::NOT_FOUND) {
          row_.outcome = "rolled back: the active, intact";
          if (std::string p = CheckTree(s); !p.empty()) problems.push_back(p);
          // It can still be committed (and moved).
          snaps_["crash/T-active"] = s;
          CommitAs("crash/T", "crash/T-active");
          row_.outcome += "; committed again";
        } else if (committed.ok() && active.error_code() == grpc::StatusCode::NOT_FOUND) {
          row_.outcome = "done: committed";
          snaps_.erase("crash/T-active");
          s.key = "crash/T";
          s.committed = true;
          snaps_["crash/T"] = s;
        } else {
          row_.outcome = "BROKEN: active " + CodeName(active) + ", committed " + CodeName(committed);
          problems.push_back("active " + Describe(active) + ", committed " + Describe(committed));
          break;
        }
        const Snap& t = snaps_.at("crash/T");
        if (std::string p = CheckTree(t); !p.empty()) problems.push_back(p);
        auto sum = Summary("crash/T");
        if (!sum) {
          problems.push_back("crash/T is not in the admin list");
        } else {
          row_.outcome += ", on " + sum->tier();
          if (sum->tier() != "slow") problems.push_back("crash/T is on " + sum->tier() + ", the budget says slow");
          if (LinkTarget(sum->id()).rfind(TierRootReal(sum->tier()) + "/snapshots/", 0) != 0) {
            problems.push_back("crash/T: l/ link points to " + LinkTarget(sum->id()));
          }
        }
        break;
      }
      case Step::kMigrate:
      case Step::kReap: {
        auto sum = Summary("base/A");
        if (!sum) {
          row_.outcome = "base/A missing";
          problems.push_back("base/A is not in the admin list");
          break;
        }
        row_.outcome = sum->tier() == "slow" ? "done: on slow" : "rolled back: on " + sum->tier();
        if (step_ == Step::kReap && sum->tier() != "slow") {
          problems.push_back("the migration was switched before reaping, but base/A is on " + sum->tier());
        }
        const std::string link = LinkTarget(sum->id());
        if (link.rfind(TierRootReal(sum->tier()) + "/snapshots/", 0) != 0) {
          problems.push_back("base/A on " + sum->tier() + " but its l/ link points to '" + link + "'");
        }
        break;
      }
      case Step::kCleanup:
        // (checked in VerifyBefore)
        row_.outcome = removed_.empty() ? "nothing lost (the start-up Cleanup was killed)"
                                        : "removed snapshots stay removed";
        break;
    }
    INFO(Joined(problems));
    CHECK(problems.empty());
    if (!problems.empty()) row_.outcome += " (PROBLEMS)";
  }

  // Cleanup, then: no staging entry, every snapshot dir is the current copy
  // of a record, every link resolves to its record's dir.
  void VerifyCleanupLeavesNothing(const std::string& when) {
    grpc::Status st = c().Cleanup();
    std::vector<std::string> problems = Leftovers();
    if (!st.ok()) problems.insert(problems.begin(), "Cleanup: " + Describe(st));
    if (row_.leftovers == "-" || !problems.empty()) {
      row_.leftovers = problems.empty() ? "nothing" : std::to_string(problems.size()) + " LEFT " + when;
    }
    INFO("after Cleanup (" << when << "):\n" << Joined(problems) << "\nlog:\n" << d_.LogTail());
    CHECK(problems.empty());
  }

  std::vector<std::string> Leftovers() {
    std::vector<std::string> problems;
    std::vector<adminpb::SnapshotSummary> all;
    grpc::Status st = admin_.ListSnapshots(&all);
    if (!st.ok()) return {"admin ListSnapshots: " + Describe(st)};
    std::map<uint64_t, adminpb::SnapshotSummary> records;
    for (const auto& s : all) records[s.id()] = s;
    // The admin list and the snapshots List agree.
    std::vector<pb::Info> infos;
    if (grpc::Status ls = c().List({}, &infos); !ls.ok()) problems.push_back("List: " + Describe(ls));
    if (infos.size() != all.size()) {
      problems.push_back("List has " + std::to_string(infos.size()) + " snapshots, the admin list " +
                         std::to_string(all.size()));
    }

    static const std::regex kSnapshotDir(R"(([1-9][0-9]*)(-([1-9][0-9]*))?)");
    for (const std::string tier : {"fast", "slow"}) {
      const std::string troot = tier == "fast" ? tiers_.fast() : tiers_.slow();
      std::error_code staging_ec, ec;
      for (const auto& e : fs::directory_iterator(troot + "/staging", staging_ec)) {
        problems.push_back(tier + " staging entry left: " + e.path().filename().string());
      }
      if (fs::exists(troot + "/lost+found")) problems.push_back(tier + ": a lost+found appeared");
      for (const auto& e : fs::directory_iterator(troot + "/snapshots", ec)) {
        const std::string name = e.path().filename().string();
        std::smatch m;
        if (!std::regex_match(name, m, kSnapshotDir)) {
          problems.push_back(tier + "/snapshots/" + name + ": not a snapshot dir name");
          continue;
        }
        const uint64_t id = std::stoull(m[1].str());
        auto r = records.find(id);
        if (r == records.end()) {
          problems.push_back(tier + "/snapshots/" + name + ": no record has id " + std::to_string(id));
          continue;
        }
        std::error_code cec;
        const std::string fsdir = fs::canonical(e.path(), cec).string() + "/fs";
        if (r->second.tier() != tier || LinkTarget(id) != fsdir) {
          problems.push_back(tier + "/snapshots/" + name + ": not the current copy of " + r->second.key() +
                             " (on " + r->second.tier() + ", l/ -> '" + LinkTarget(id) + "')");
        }
      }
      if (ec) problems.push_back(tier + "/snapshots: " + ec.message());
    }
    std::set<uint64_t> linked;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d_.root() + "/l", ec)) {
      const std::string name = e.path().filename().string();
      auto id = Layout::ParseShortId(name);
      if (!id) {
        problems.push_back("l/" + name + ": not a link name");
        continue;
      }
      linked.insert(*id);
      auto r = records.find(*id);
      if (r == records.end()) {
        problems.push_back("l/" + name + ": no record has id " + std::to_string(*id));
        continue;
      }
      const std::string target = LinkTarget(*id);
      if (target.empty() || !fs::is_directory(target)) {
        problems.push_back("l/" + name + " (" + r->second.key() + "): does not resolve to a directory");
      } else if (target.rfind(TierRootReal(r->second.tier()) + "/snapshots/", 0) != 0) {
        problems.push_back("l/" + name + " (" + r->second.key() + " on " + r->second.tier() + ") -> " + target);
      }
    }
    for (const auto& [id, s] : records) {
      if (!linked.contains(id)) problems.push_back(s.key() + " (id " + std::to_string(id) + ") has no l/ link");
      // Its current generation's dir is where the link points.
      const std::string name = s.generation() == 0 ? std::to_string(id)
                                                   : absl::StrCat(id, "-", s.generation());
      const std::string dir = (s.tier() == "fast" ? tiers_.fast() : tiers_.slow()) + "/snapshots/" + name;
      std::error_code dec;
      if (!fs::is_directory(dir + "/fs", dec)) {
        problems.push_back(s.key() + ": its current copy " + s.tier() + "/snapshots/" + name + " is missing");
      } else if (LinkTarget(id) != fs::canonical(dir + "/fs", dec).string()) {
        problems.push_back(s.key() + ": l/ link -> '" + LinkTarget(id) + "', not its generation " +
                           std::to_string(s.generation()));
      }
      // Nothing is mounted: Cleanup reaps every retired copy.
      for (const auto& r : s.retired()) {
        problems.push_back(s.key() + ": retired copy left on " + r.tier() + " (generation " +
                           std::to_string(r.generation()) + ")");
      }
    }
    adminpb::StatusResponse status;
    if (grpc::Status sst = admin_.Status(&status); !sst.ok()) {
      problems.push_back("admin Status: " + Describe(sst));
    } else {
      for (const std::string& m : status.missing()) problems.push_back("admin Status reports missing: " + m);
      for (const auto& m : status.migrations()) {
        problems.push_back("migration still in flight: " + m.key() + " -> " + m.tier() + " (" + m.state() + ")");
      }
    }
    return problems;
  }

  // New work after the restart: a Prepare/Commit that stays on fast, one
  // that moves to slow, both read back; then Cleanup leaves nothing again.
  void VerifyServes() {
    MakeCommitted("after/small", "base/C", "fast", LayerOps("S"));
    MakeCommitted("after/big", "base/A", "fast", LayerOps("G", kBigBytes));
    std::vector<std::string> problems;
    for (const std::string key : {"after/small", "after/big"}) {
      if (std::string p = CheckTree(snaps_.at(key)); !p.empty()) problems.push_back(p);
    }
    auto big = Summary("after/big");
    if (!big || big->tier() != "slow") problems.push_back("after/big did not move to slow");
    row_.serves = problems.empty() ? "yes" : "PROBLEMS";
    INFO(Joined(problems));
    CHECK(problems.empty());
    VerifyCleanupLeavesNothing("after new work");
  }

  static std::string Joined(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += "  " + s + "\n";
    return out;
  }

  // The live view across the crash: its retired copy stays through Cleanup
  // while the view exists, and (the view removed) while it is still mounted;
  // the mount reads the same bytes all along; unmounted, it goes.
  void VerifyLiveViewOutlives() {
    std::vector<std::string> problems;
    auto retired_of_a = [&]() -> std::string {
      auto a = Summary("base/A");
      if (!a) return "base/A missing";
      if (a->retired_size() != 1) return std::to_string(a->retired_size()) + " retired copies";
      const auto& r = a->retired(0);
      const std::string dir = (r.tier() == "fast" ? tiers_.fast() : tiers_.slow()) + "/snapshots/" +
                              absl::StrCat(a->id(), r.generation() == 0 ? "" : absl::StrCat("-", r.generation()));
      return fs::is_directory(dir + "/fs") ? "" : "retired copy " + dir + " is gone";
    };
    auto check = [&](const std::string& when) {
      if (std::string p = retired_of_a(); !p.empty()) problems.push_back(when + ": " + p);
      const std::string diff = ShortDiff(Rendered(snaps_.at("base/C").tree), Scan(live_dir_));
      if (!diff.empty()) problems.push_back(when + ": the mounted view reads differently:\n" + diff);
    };
    if (auto a = Summary("base/A"); a && a->tier() == "slow") {
      grpc::Status st = c().Cleanup();
      if (!st.ok()) problems.push_back("Cleanup: " + Describe(st));
      check("after restart and Cleanup, view mounted");
      st = c().Remove("live/view");
      if (!st.ok()) problems.push_back("Remove live/view: " + Describe(st));
      st = c().Cleanup();
      if (!st.ok()) problems.push_back("Cleanup: " + Describe(st));
      check("view removed but still mounted, after Cleanup");
    } else {
      // Rolled back: nothing retired; the mount reads the same all the same.
      const std::string diff = ShortDiff(Rendered(snaps_.at("base/C").tree), Scan(live_dir_));
      if (!diff.empty()) problems.push_back("the mounted view reads differently:\n" + diff);
      if (grpc::Status st = c().Remove("live/view"); !st.ok()) problems.push_back("Remove live/view: " + Describe(st));
    }
    absl::Status um = live_mount_->Unmount();
    if (!um.ok()) problems.push_back("unmount live view: " + um.ToString());
    row_.outcome += problems.empty() ? "; old copy kept while mounted" : "; LIVE VIEW PROBLEMS";
    INFO(Joined(problems));
    CHECK(problems.empty());
  }

  std::string point_;
  Step step_;
  bool live_view_ = false;
  Row row_;
  TierFilesystems tiers_;  // before d_: outlives the daemon
  DaemonProcess d_;
  AdminRpcClient admin_;
  std::map<std::string, Snap> snaps_;
  std::vector<std::string> removed_;
  grpc::Status trigger_status_;
  int mounts_made_ = 0, views_made_ = 0;
  // After d_: unmounted before the daemon stops.
  std::string live_dir_;
  std::unique_ptr<ScopedMount> live_mount_;
};

bool CanRun() {
  if (::geteuid() != 0) {
    WARN("skipped: the crash tests mount filesystems (needs root)");
    return false;
  }
#ifndef NDOCKER_TEST_FAULT_POINTS
  WARN("skipped: configure with -DNDOCKER_FAULT_POINTS=ON (the daemon has no fault points)");
  return false;
#else
  return true;
#endif
}

void RunScenario(const std::string& point, TierFilesystems::Mode mode, bool live_view = false) {
  if (!CanRun()) return;
  CrashScenario s(point, mode, live_view);
  s.Run();
}

#define CRASH_CASE(point, mode, mode_name)                                      \
  TEST_CASE("kill -9 at " point " (" mode_name ")", "[daemon][crash]") {      \
    RunScenario(point, TierFilesystems::mode);                                  \
  }

CRASH_CASE("prepare.after-mkdir", kCross, "fast tmpfs slow ext4")
CRASH_CASE("prepare.after-link", kCross, "fast tmpfs slow ext4")
CRASH_CASE("prepare.after-txn", kCross, "fast tmpfs slow ext4")
CRASH_CASE("commit.after-copy", kCross, "fast tmpfs slow ext4")
CRASH_CASE("commit.after-rename", kCross, "fast tmpfs slow ext4")
CRASH_CASE("commit.after-txn", kCross, "fast tmpfs slow ext4")
CRASH_CASE("commit.after-link", kCross, "fast tmpfs slow ext4")
CRASH_CASE("commit.after-copy", kSame, "both on one ext4")
CRASH_CASE("commit.after-rename", kSame, "both on one ext4")
CRASH_CASE("commit.after-txn", kSame, "both on one ext4")
CRASH_CASE("commit.after-link", kSame, "both on one ext4")
CRASH_CASE("migrate.after-copy", kCross, "fast tmpfs slow ext4")
CRASH_CASE("migrate.after-rename", kCross, "fast tmpfs slow ext4")
CRASH_CASE("migrate.after-txn", kCross, "fast tmpfs slow ext4")
CRASH_CASE("migrate.after-link", kCross, "fast tmpfs slow ext4")
CRASH_CASE("migrate.after-copy", kSame, "both on one ext4")
CRASH_CASE("migrate.after-rename", kSame, "both on one ext4")
CRASH_CASE("migrate.after-txn", kSame, "both on one ext4")
CRASH_CASE("migrate.after-link", kSame, "both on one ext4")
TEST_CASE("kill -9 at migrate.after-txn with a view mounted across the crash", "[daemon][crash]") {
  RunScenario("migrate.after-txn", TierFilesystems::kCross, /*live_view=*/true);
}
TEST_CASE("kill -9 at migrate.after-link with a view mounted across the crash", "[daemon][crash]") {
  RunScenario("migrate.after-link", TierFilesystems::kCross, /*live_view=*/true);
}
CRASH_CASE("reap.after-txn", kCross, "fast tmpfs slow ext4")
CRASH_CASE("reap.mid-delete", kCross, "fast tmpfs slow ext4")
CRASH_CASE("cleanup.after-list", kCross, "fast tmpfs slow ext4")
CRASH_CASE("cleanup.mid-delete", kCross, "fast tmpfs slow ext4")

}  // namespace
}  // namespace ndocker::daemon_test
