// Test fixture for the daemon tests: runs the real ndocker-snapshotter binary
// as a child process on a private temp dir and gives a gRPC client for it.
//
//   DaemonProcess d;                       // starts it, waits for the socket
//   SnapshotsClient& c = d.client();
//   c.Prepare("k", "", {}, &mounts);
//   d.Restart(/*hard=*/true);              // SIGKILL, start again
//   // ~DaemonProcess: SIGTERM (SIGKILL after a grace period), unmounts
//   // whatever a test left mounted under the temp dir (the tier filesystems
//   // too), deletes the dir.
//
// The tiers are two real filesystems unless a test asks otherwise: a tmpfs
// (fast) and a loop-mounted ext4 image (slow), mounted at <root>/fast and
// <root>/slow (tier_fs.h; DaemonOptions::tier_fs, fast_tier_bytes,
// slow_tier_bytes; NDT_SAME_FS_TIERS=1 puts both on one filesystem).
//
// The daemon binary comes from $NDOCKER_BIN, else from the path compiled in
// (NDOCKER_DAEMON_BIN, the build's ndocker-snapshotter).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "snapshotter/mount_linux.h"
#include "snapshotter/types.h"
#include "test/daemon/tier_fs.h"

#ifndef NDOCKER_DAEMON_BIN
#define NDOCKER_DAEMON_BIN ""
#endif

namespace ndocker::daemon_test {

namespace pb = containerd::services::snapshots::v1;
using PbMount = containerd::types::Mount;
using LabelMap = std::map<std::string, std::string>;

// The value of the `snapshotter` field containerd puts in every request
// (the proxy_plugins table name).
inline constexpr char kSnapshotterName[] = "ndocker";
inline constexpr char kTierLabelKey[] = "containerd.io/snapshot/ndocker.tier";

inline std::string DaemonBinary() {
  const char* env = std::getenv("NDOCKER_BIN");
  if (env != nullptr && *env != '\0') return env;
  return NDOCKER_DAEMON_BIN;
}

// ---------------------------------------------------------------------------
// Status helpers

inline std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    default: return "CODE_" + std::to_string(static_cast<int>(code));
  }
}
inline std::string CodeName(const grpc::Status& st) { return CodeName(st.error_code()); }
inline std::string Describe(const grpc::Status& st) {
  return st.ok() ? "OK" : CodeName(st) + ": " + st.error_message();
}

// REQUIRE that a call succeeded, showing the status when it did not.
#define REQUIRE_OK(call)                              \
  do {                                                \
    const ::grpc::Status st_ok_ = (call);             \
    INFO(#call << " -> " << ::ndocker::daemon_test::Describe(st_ok_)); \
    REQUIRE(st_ok_.ok());                             \
  } while (0)

// ---------------------------------------------------------------------------
// Filesystem helpers

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("write failed: " + path);
}

// path (relative to root, "." for root) -> "type size mode [-> target]",
// never following symlinks. Mtimes are left out on purpose.
inline std::map<std::string, std::string> ListTree(const std::string& root) {
  std::map<std::string, std::string> out;
  std::function<void(const std::string&, const std::string&)> walk =
      [&](const std::string& abs, const std::string& rel) {
        struct stat st;
        if (::lstat(abs.c_str(), &st) != 0) {
          out[rel] = std::string("lstat failed: ") + std::strerror(errno);
          return;
        }
        std::ostringstream line;
        char type = S_ISDIR(st.st_mode)    ? 'd'
                    : S_ISREG(st.st_mode)  ? 'f'
                    : S_ISLNK(st.st_mode)  ? 'l'
                    : S_ISCHR(st.st_mode)  ? 'c'
                    : S_ISBLK(st.st_mode)  ? 'b'
                    : S_ISSOCK(st.st_mode) ? 's'
                    : S_ISFIFO(st.st_mode) ? 'p'
                                           : '?';
        line << type << " size=" << st.st_size << " mode=" << std::oct << (st.st_mode & 07777);
        if (S_ISLNK(st.st_mode)) {
          std::error_code ec;
          line << " -> " << std::filesystem::read_symlink(abs, ec).string();
        }
        out[rel] = line.str();
        if (!S_ISDIR(st.st_mode)) return;
        std::vector<std::string> names;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(abs, ec)) {
          names.push_back(e.path().filename().string());
        }
        if (ec) out[rel] += " (unreadable: " + ec.message() + ")";
        for (const std::string& n : names) walk(abs + "/" + n, rel == "." ? n : rel + "/" + n);
      };
  walk(root, ".");
  return out;
}

// FNV-1a 64 of a file's bytes, in hex ("unreadable: ..." when it cannot be read).
inline std::string FileDigest(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::string("unreadable: ") + std::strerror(errno);
  uint64_t h = 1469598103934665603ULL;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return std::string("read error: ") + std::strerror(err);
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ULL;
    }
  }
  ::close(fd);
  char hex[24];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Every xattr of path (not following symlinks), sorted, "name=value;...".
inline std::string XattrsOf(const std::string& path) {
  std::vector<char> names(65536);
  ssize_t n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n <= 0) return "";
  std::vector<std::string> out;
  for (ssize_t i = 0; i < n;) {
    std::string name(names.data() + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    std::vector<char> value(65536);
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    out.push_back(name + "=" + (v >= 0 ? std::string(value.data(), static_cast<size_t>(v)) : "?"));
  }
  std::sort(out.begin(), out.end());
  std::string joined;
  for (const std::string& x : out) joined += (joined.empty() ? "" : ";") + x;
  return joined;
}

// ListTree (without directory sizes) plus, for the byte-identical checks of
// copies across filesystems: owner, the content digest and link count of
// every regular file, every xattr, and for character devices (whiteouts) the
// device number.
inline std::map<std::string, std::string> ContentTree(const std::string& root) {
  std::map<std::string, std::string> out = ListTree(root);
  for (auto& [rel, line] : out) {
    const std::string abs = rel == "." ? root : root + "/" + rel;
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      // A directory's size is the filesystem's business (tmpfs: entries, ext4: blocks).
      const size_t at = line.find(" size=");
      if (at != std::string::npos) line.erase(at, line.find(' ', at + 1) - at);
    }
    line += " owner=" + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
    if (S_ISREG(st.st_mode)) line += " nlink=" + std::to_string(st.st_nlink) + " data=" + FileDigest(abs);
    if (S_ISCHR(st.st_mode)) line += " rdev=" + std::to_string(st.st_rdev);
    const std::string x = XattrsOf(abs);
    if (!x.empty()) line += " xattrs={" + x + "}";
  }
  return out;
}

inline std::string DiffMaps(const std::map<std::string, std::string>& a,
                            const std::map<std::string, std::string>& b) {
  std::ostringstream d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) d << "  - " << k << ": " << v << "\n";
    else if (it->second != v) d << "  ~ " << k << ": " << v << " => " << it->second << "\n";
  }
  for (const auto& [k, v] : b) {
    if (!a.contains(k)) d << "  + " << k << ": " << v << "\n";
  }
  return d.str();
}

inline std::vector<ndocker::Mount> ToCore(const google::protobuf::RepeatedPtrField<PbMount>& mounts) {
  std::vector<ndocker::Mount> out;
  for (const PbMount& m : mounts) {
    out.push_back(ndocker::Mount{m.type(), m.source(), {m.options().begin(), m.options().end()}});
  }
  return out;
}

// A mount list as text (for comparisons that print well).
inline std::string MountsString(const google::protobuf::RepeatedPtrField<PbMount>& mounts) {
  std::string out;
  for (const PbMount& m : mounts) absl::StrAppend(&out, "{", m.ShortDebugString(), "}");
  return out;
}

// The value of `name=` among mount options, if present.
inline std::optional<std::string> MountOption(const PbMount& m, const std::string& name) {
  for (const std::string& o : m.options()) {
    if (o.rfind(name + "=", 0) == 0) return o.substr(name.size() + 1);
  }
  return std::nullopt;
}

// Mounts a mount list with ndocker::MountAll; unmounts (lazily if busy) in
// the destructor unless Unmount() already did.
class ScopedMount {
 public:
  ScopedMount(const std::vector<ndocker::Mount>& mounts, std::string target)
      : target_(std::move(target)) {
    status_ = ndocker::MountAll(mounts, target_);
    mounted_ = status_.ok();
  }
  ~ScopedMount() {
    if (mounted_) (void)ndocker::Unmount(target_, /*lazy=*/true);
  }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;

  const absl::Status& status() const { return status_; }
  bool mounted() const { return mounted_; }
  absl::Status Unmount() {
    if (!mounted_) return absl::OkStatus();
    absl::Status st = ndocker::Unmount(target_);
    if (st.ok()) mounted_ = false;
    return st;
  }

 private:
  std::string target_;
  absl::Status status_;
  bool mounted_ = false;
};

// ---------------------------------------------------------------------------
// gRPC client

inline bool SameTime(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}
inline std::string TimeString(const google::protobuf::Timestamp& t) {
  return std::to_string(t.seconds()) + "s+" + std::to_string(t.nanos()) + "ns";
}

// Stays valid across daemon restarts (the fixture swaps the channel under
// it); while the daemon is down every call returns UNAVAILABLE.
class SnapshotsClient {
 public:
  SnapshotsClient() = default;
  void Connect(std::shared_ptr<grpc::Channel> channel) {
    stub_ = channel ? pb::Snapshots::NewStub(std::move(channel)) : nullptr;
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent, const LabelMap& labels = {},
                       google::protobuf::RepeatedPtrField<PbMount>* mounts = nullptr) {
    pb::PrepareSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    req.set_parent(parent);
    req.mutable_labels()->insert(labels.begin(), labels.end());
    pb::PrepareSnapshotResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->Prepare(ctx.get(), req, &resp);
    if (mounts != nullptr) *mounts = resp.mounts();
    return st;
  }

  grpc::Status View(const std::string& key, const std::string& parent, const LabelMap& labels = {},
                    google::protobuf::RepeatedPtrField<PbMount>* mounts = nullptr) {
    pb::ViewSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    req.set_parent(parent);
    req.mutable_labels()->insert(labels.begin(), labels.end());
    pb::ViewSnapshotResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->View(ctx.get(), req, &resp);
    if (mounts != nullptr) *mounts = resp.mounts();
    return st;
  }

  grpc::Status Mounts(const std::string& key, google::protobuf::RepeatedPtrField<PbMount>* mounts = nullptr) {
    pb::MountsRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    pb::MountsResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->Mounts(ctx.get(), req, &resp);
    if (mounts != nullptr) *mounts = resp.mounts();
    return st;
  }

  // `parent` is CommitSnapshotRequest.parent (field 5, containerd 2.2+).
  grpc::Status Commit(const std::string& name, const std::string& key, const LabelMap& labels = {},
                      const std::string& parent = "") {
    pb::CommitSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_name(name);
    req.set_key(key);
    req.mutable_labels()->insert(labels.begin(), labels.end());
    req.set_parent(parent);
    google::protobuf::Empty resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    return stub_->Commit(ctx.get(), req, &resp);
  }

  grpc::Status Remove(const std::string& key) {
    pb::RemoveSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    google::protobuf::Empty resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    return stub_->Remove(ctx.get(), req, &resp);
  }

  grpc::Status Stat(const std::string& key, pb::Info* info = nullptr) {
    pb::StatSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    pb::StatSnapshotResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->Stat(ctx.get(), req, &resp);
    if (info != nullptr) *info = resp.info();
    return st;
  }

  grpc::Status Update(const pb::Info& info, const std::vector<std::string>& paths,
                      pb::Info* out = nullptr) {
    pb::UpdateSnapshotRequest req;
    req.set_snapshotter(kSnapshotterName);
    *req.mutable_info() = info;
    for (const std::string& p : paths) req.mutable_update_mask()->add_paths(p);
    pb::UpdateSnapshotResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->Update(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp.info();
    return st;
  }

  // Reads the whole stream; `batches` gets the number of infos per message.
  grpc::Status List(const std::vector<std::string>& filters, std::vector<pb::Info>* infos = nullptr,
                    std::vector<int>* batches = nullptr) {
    pb::ListSnapshotsRequest req;
    req.set_snapshotter(kSnapshotterName);
    for (const std::string& f : filters) req.add_filters(f);
    if (!stub_) return NotRunning();
    auto ctx = Context();
    auto reader = stub_->List(ctx.get(), req);
    pb::ListSnapshotsResponse resp;
    while (reader->Read(&resp)) {
      if (infos != nullptr) infos->insert(infos->end(), resp.info().begin(), resp.info().end());
      if (batches != nullptr) batches->push_back(resp.info_size());
    }
    return reader->Finish();
  }

  grpc::Status Usage(const std::string& key, pb::UsageResponse* usage = nullptr) {
    pb::UsageRequest req;
    req.set_snapshotter(kSnapshotterName);
    req.set_key(key);
    pb::UsageResponse resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    grpc::Status st = stub_->Usage(ctx.get(), req, &resp);
    if (usage != nullptr) *usage = resp;
    return st;
  }

  grpc::Status Cleanup() {
    pb::CleanupRequest req;
    req.set_snapshotter(kSnapshotterName);
    google::protobuf::Empty resp;
    if (!stub_) return NotRunning();
    auto ctx = Context();
    return stub_->Cleanup(ctx.get(), req, &resp);
  }

  // Every snapshot as one line each, sorted: the List view of the state.
  std::vector<std::string> ListLines() {
    std::vector<pb::Info> infos;
    grpc::Status st = List({}, &infos);
    if (!st.ok()) return {"List failed: " + Describe(st)};
    std::vector<std::string> out;
    for (const pb::Info& i : infos) out.push_back(i.ShortDebugString());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static grpc::Status NotRunning() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "daemon is not running"); }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  std::unique_ptr<pb::Snapshots::Stub> stub_;
};

// ---------------------------------------------------------------------------
// The daemon process

struct DaemonOptions {
  // Name of the root dir inside the temp dir (make it long to get long paths).
  std::string root_name = "root";
  // When set, <tmp>/run is created with this mode before the first start.
  std::optional<mode_t> precreate_run_dir;
  std::vector<std::string> extra_args;
  // Where the tiers live (tier_fs.h). kSeparate: fast = a tmpfs of
  // fast_tier_bytes at <root>/fast, slow = an ext4 image of slow_tier_bytes
  // mounted at <root>/slow. kSame: plain dirs <root>/fast and <root>/slow on
  // the temp dir's filesystem. NDT_SAME_FS_TIERS=1 in the environment (or
  // not being root) turns kSeparate into kSame.
  TierFs tier_fs = TierFs::kSeparate;
  uint64_t fast_tier_bytes = 256 * kMiB;
  uint64_t slow_tier_bytes = 768 * kMiB;
  // Serve these tier dirs (e.g. another fixture's fast_dir()/slow_dir()) via
  // --fast-path/--slow-path instead of tiers of its own (tier_fs is then
  // ignored).
  std::optional<std::string> fast_path, slow_path;
  // false: the constructor makes the dirs and tiers but does not start the
  // daemon (Start() or RunExpectingExit() later).
  bool start = true;
  // Added to the child's environment ("NAME=value"); set_env() changes it
  // for the next Start().
  std::vector<std::string> env;
};

// The tier layout a fixture with these options gets.
inline TierFs EffectiveTierFs(const DaemonOptions& o) {
  if (o.tier_fs == TierFs::kSame) return TierFs::kSame;
  const char* env = std::getenv("NDT_SAME_FS_TIERS");
  if (env != nullptr && std::string(env) == "1") return TierFs::kSame;
  if (::geteuid() != 0) return TierFs::kSame;
  return TierFs::kSeparate;
}

class DaemonProcess {
 public:
  explicit DaemonProcess(DaemonOptions options = {}) : options_(std::move(options)) {
    std::string tmpl = DaemonTestTmpParent() + "/ndocker-daemon-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    // Whose dir this is, for ReapStaleDaemonDirs after a SIGKILL; and what
    // to detach on a signal.
    WriteFile(base_ + "/" + kOwnerFile, ProcessIdentity(::getpid()) + "\n");
    emergency_slot_ = EmergencyRegister(base_);
    root_ = base_ + "/" + options_.root_name;
    run_dir_ = base_ + "/run";
    socket_ = run_dir_ + "/nd.sock";
    log_ = base_ + "/daemon.log";
    // Never the host's /etc config or containerd: LASS follows a content
    // store that does not exist (rule store-unreadable) unless a test says.
    config_ = base_ + "/config.toml";
    {
      std::ofstream config(config_);
      config << "[lass]\ncontainerd_root = \"" << base_ << "/containerd\"\n";
    }
    if (options_.precreate_run_dir) {
      if (::mkdir(run_dir_.c_str(), 0700) != 0 || ::chmod(run_dir_.c_str(), *options_.precreate_run_dir) != 0) {
        Cleanup();
        throw std::runtime_error("cannot create " + run_dir_);
      }
    }
    try {
      SetUpTiers();
      if (options_.start) Start();
    } catch (...) {
      Cleanup();
      throw;
    }
  }

  ~DaemonProcess() { Cleanup(); }

  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  const std::string& base() const { return base_; }
  const std::string& root() const { return root_; }
  const std::string& run_dir() const { return run_dir_; }
  const std::string& socket_path() const { return socket_; }
  const std::string& log_path() const { return log_; }
  const std::string& fast_dir() const { return fast_dir_; }
  const std::string& slow_dir() const { return slow_dir_; }
  std::string tier_dir(const std::string& tier) const { return tier == "fast" ? fast_dir_ : slow_dir_; }
  // kSeparate: the tiers are the tmpfs and the ext4 image of this fixture.
  TierFs tier_fs() const { return tier_fs_; }
  // The slow tier's ext4 image (kSeparate), else "".
  const std::string& slow_image() const { return slow_image_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Valid for the fixture's lifetime, across restarts.
  SnapshotsClient& client() { return client_; }
  // The current connection (null while the daemon is down): for other
  // services on the same socket (ndocker.admin.v1.Admin).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  void set_env(std::vector<std::string> env) { options_.env = std::move(env); }
  // The wait status of the last exit the fixture saw (Start failing,
  // WaitForExit, Stop, Kill), if any.
  std::optional<int> last_exit_status() const { return last_exit_status_; }

  std::string LogTail(size_t max_bytes = 4000) const {
    try {
      std::string log = ReadFile(log_);
      return log.size() > max_bytes ? "..." + log.substr(log.size() - max_bytes) : log;
    } catch (const std::exception&) {
      return "(no log)";
    }
  }

  // The daemon's command line (binary first) as Start() runs it.
  std::vector<std::string> Args() const {
    const std::string bin = DaemonBinary();
    if (bin.empty() || ::access(bin.c_str(), X_OK) != 0) {
      throw std::runtime_error("daemon binary not found: set NDOCKER_BIN (got \"" + bin + "\")");
    }
    std::vector<std::string> args = {bin, "--root", root_, "--address", socket_, "--log-level", "debug"};
    if (options_.fast_path) args.insert(args.end(), {"--fast-path", *options_.fast_path});
    if (options_.slow_path) args.insert(args.end(), {"--slow-path", *options_.slow_path});
    if (std::find(options_.extra_args.begin(), options_.extra_args.end(), "--config") ==
        options_.extra_args.end()) {
      args.insert(args.end(), {"--config", config_});
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    return args;
  }

  // Arguments for every later start (e.g. a flag a test adds after a refusal).
  void AddArgs(const std::vector<std::string>& extra) {
    options_.extra_args.insert(options_.extra_args.end(), extra.begin(), extra.end());
  }

  // Runs the daemon in the foreground with Args() + extra, for a start that
  // must fail: it is expected to exit by itself; after `timeout` it is killed
  // (status of timeout(1): exit 124). Output is captured, not logged.
  CommandResult RunExpectingExit(const std::vector<std::string>& extra = {},
                                 std::chrono::seconds timeout = std::chrono::seconds(30)) {
    if (pid_ > 0) throw std::runtime_error("RunExpectingExit: the fixture's daemon is running");
    // options_.env as Start() sets it; never an inherited fault point.
    std::vector<std::string> cmd = {"env", "-u", "NDOCKER_FAULT_POINT"};
    cmd.insert(cmd.end(), options_.env.begin(), options_.env.end());
    cmd.insert(cmd.end(), {"timeout", "--kill-after=5", std::to_string(timeout.count())});
    for (const std::string& a : Args()) cmd.push_back(a);
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return RunCommand(cmd);
  }

  // Starts the daemon and waits until its socket accepts a gRPC connection.
  void Start() {
    if (pid_ > 0) throw std::runtime_error("daemon already running");
    std::vector<std::string> args = Args();
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The test's environment, minus what options_.env sets and minus a
    // fault point (only ever set for one start, never inherited).
    auto name_of = [](const std::string& e) { return e.substr(0, e.find('=')); };
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry(*e), name = name_of(entry);
      if (name == "NDOCKER_FAULT_POINT") continue;
      if (std::any_of(options_.env.begin(), options_.env.end(),
                      [&](const std::string& o) { return name_of(o) == name; })) {
        continue;
      }
      env_strings.push_back(entry);
    }
    env_strings.insert(env_strings.end(), options_.env.begin(), options_.env.end());
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) throw std::runtime_error("cannot open " + log_);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    // Everything the child needs is prepared above: after fork it only makes
    // async-signal-safe calls.
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(log_fd);
      if (null_fd >= 0) ::close(null_fd);
      throw std::runtime_error("fork failed");
    }
    if (pid == 0) {
      // Never outlive the test process, even when it is killed.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    pid_ = pid;
    EmergencySetDaemon(emergency_slot_, pid_);
    ++starts_;

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!SocketAccepts()) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        EmergencySetDaemon(emergency_slot_, -1);
        last_exit_status_ = wstatus;
        throw std::runtime_error("daemon exited during startup (status " + std::to_string(wstatus) +
                                 "); log:\n" + LogTail());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Kill();
        throw std::runtime_error("daemon socket did not accept within 30s; log:\n" + LogTail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    grpc::ChannelArguments args_ch;
    args_ch.SetMaxReceiveMessageSize(16 << 20);
    args_ch.SetMaxSendMessageSize(16 << 20);
    // A fresh channel per start: never reuse a subchannel of a dead daemon.
    args_ch.SetInt("grpc.use_local_subchannel_pool", 1);
    channel_ = grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args_ch);
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      Kill();
      throw std::runtime_error("gRPC channel did not connect; log:\n" + LogTail());
    }
    client_.Connect(channel_);
  }

  // SIGTERM, then SIGKILL after `grace`. Returns the wait status (or -1 when
  // it was not running).
  int Stop(std::chrono::seconds grace = std::chrono::seconds(20)) {
    if (pid_ <= 0) return -1;
    client_.Connect(nullptr);
    channel_.reset();
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      // It died on its own before we asked: that is a bug worth seeing.
      std::fprintf(stderr, "daemon test: daemon %d had already exited (status %d); log:\n%s\n", pid_,
                   wstatus, LogTail().c_str());
      pid_ = -1;
      EmergencySetDaemon(emergency_slot_, -1);
      last_exit_status_ = wstatus;
      return wstatus;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (true) {
      pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &wstatus, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    EmergencySetDaemon(emergency_slot_, -1);
    last_exit_status_ = wstatus;
    return wstatus;
  }

  // Waits up to `timeout` for the daemon to exit by itself (e.g. a fault
  // point's SIGKILL) and returns its wait status; nullopt when it is still
  // running (it is left running) or was not running.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        client_.Connect(nullptr);
        channel_.reset();
        pid_ = -1;
        last_exit_status_ = wstatus;
        return wstatus;
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // SIGKILL: no shutdown code runs (the socket file stays behind).
  int Kill() {
    if (pid_ <= 0) return -1;
    client_.Connect(nullptr);
    channel_.reset();
    ::kill(pid_, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid_, &wstatus, 0);
    pid_ = -1;
    EmergencySetDaemon(emergency_slot_, -1);
    last_exit_status_ = wstatus;
    return wstatus;
  }

  // hard: SIGKILL (a crash); otherwise SIGTERM. Then starts again.
  void Restart(bool hard) {
    if (hard) Kill();
    else Stop();
    Start();
  }

  int starts() const { return starts_; }

 private:
  // Makes <root> and the tier filesystems (kSeparate) before the first start.
  void SetUpTiers() {
    // Tier paths from options_.fast_path/slow_path, or passed by the test
    // itself as --fast-path/--slow-path in extra_args (e.g. TierFilesystems').
    std::optional<std::string> fast = options_.fast_path, slow = options_.slow_path;
    for (size_t i = 0; i < options_.extra_args.size(); ++i) {
      const std::string& a = options_.extra_args[i];
      for (const auto& [flag, out] : {std::pair<std::string, std::optional<std::string>*>{"--fast-path", &fast},
                                      {"--slow-path", &slow}}) {
        if (a == flag && i + 1 < options_.extra_args.size()) *out = options_.extra_args[i + 1];
        if (a.rfind(flag + "=", 0) == 0) *out = a.substr(flag.size() + 1);
      }
    }
    if (fast || slow) {
      fast_dir_ = fast.value_or(root_ + "/fast");
      slow_dir_ = slow.value_or(root_ + "/slow");
      tier_fs_ = TierFs::kSame;  // not ours to say
      if (fast && slow) {
        std::error_code ec;
        if (std::filesystem::exists(fast_dir_, ec) && std::filesystem::exists(slow_dir_, ec)) {
          tier_fs_ = DeviceOf(fast_dir_) == DeviceOf(slow_dir_) ? TierFs::kSame : TierFs::kSeparate;
        }
      }
      return;
    }
    fast_dir_ = root_ + "/fast";
    slow_dir_ = root_ + "/slow";
    tier_fs_ = EffectiveTierFs(options_);
    if (tier_fs_ == TierFs::kSame) {
      if (options_.tier_fs == TierFs::kSeparate && ::geteuid() != 0) {
        std::fprintf(stderr, "daemon test: not root: both tiers on the temp dir's filesystem\n");
      }
      return;
    }
    if (::mkdir(root_.c_str(), 0700) != 0) throw std::runtime_error("mkdir " + root_ + ": " + std::strerror(errno));
    MountTmpfs(fast_dir_, options_.fast_tier_bytes);
    slow_image_ = base_ + "/slow-tier.img";
    MountExt4Image(slow_image_, slow_dir_, options_.slow_tier_bytes);
  }

  bool SocketAccepts() const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_.size() >= sizeof(addr.sun_path)) {
      ::close(fd);
      return false;
    }
    socket_.copy(addr.sun_path, socket_.size());
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
  }

  void Cleanup() noexcept {
    try {
      Stop();
    } catch (...) {
    }
    if (base_.empty()) return;
    // A failed assertion may have left a snapshot mounted under the dir; the
    // tier filesystems are mounts under it too (deepest first: theirs last).
    if (std::getenv("NDOCKER_KEEP_TEST_DIRS") != nullptr && !slow_image_.empty()) {
      std::fprintf(stderr, "daemon test: NDOCKER_KEEP_TEST_DIRS: the tmpfs fast tier's content is lost at unmount\n");
    }
    if (!UnmountAllUnder(base_)) {
      std::fprintf(stderr, "daemon test: mounts remain under %s; leaving it in place\n", base_.c_str());
      return;
    }
    if (!slow_image_.empty() && !DetachLoopDevicesOf(slow_image_)) {
      std::fprintf(stderr, "daemon test: a loop device still uses %s\n", slow_image_.c_str());
    }
    if (std::getenv("NDOCKER_KEEP_TEST_DIRS") != nullptr) {
      std::fprintf(stderr, "daemon test: kept %s (the slow tier is in %s)\n", base_.c_str(),
                   slow_image_.empty() ? "<root>/slow" : slow_image_.c_str());
      EmergencyRelease(emergency_slot_);
      return;
    }
    if (!RemoveTree(base_)) std::fprintf(stderr, "daemon test: could not remove %s\n", base_.c_str());
    EmergencyRelease(emergency_slot_);
    emergency_slot_ = -1;
    base_.clear();
  }

  DaemonOptions options_;
  std::string base_, root_, run_dir_, socket_, log_, config_;
  std::string fast_dir_, slow_dir_, slow_image_;
  TierFs tier_fs_ = TierFs::kSame;
  int emergency_slot_ = -1;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::optional<int> last_exit_status_;
  std::shared_ptr<grpc::Channel> channel_;
  SnapshotsClient client_;
};

// ---------------------------------------------------------------------------
// "Nothing changed" checks

struct StateSnapshot {
  std::map<std::string, std::string> disk;  // ListTree(root)
  std::vector<std::string> listed;          // ListLines()
};

inline StateSnapshot CaptureState(DaemonProcess& d) {
  return StateSnapshot{ListTree(d.root()), d.client().ListLines()};
}

inline std::string DiffStates(const StateSnapshot& a, const StateSnapshot& b) {
  std::string out;
  std::string disk = DiffMaps(a.disk, b.disk);
  if (!disk.empty()) out += "disk under root changed:\n" + disk;
  if (a.listed != b.listed) {
    out += "List result changed:\n";
    for (const std::string& l : a.listed) out += "  before: " + l + "\n";
    for (const std::string& l : b.listed) out += "  after:  " + l + "\n";
  }
  return out;
}

// Runs `call`, checks it failed with exactly `want` and that neither the
// disk under the root nor the List result changed. Returns the status.
inline grpc::Status ExpectRejectedUnchanged(DaemonProcess& d, grpc::StatusCode want, const char* what,
                                            const std::function<grpc::Status()>& call) {
  StateSnapshot before = CaptureState(d);
  grpc::Status st = call();
  INFO(what << "\n  -> " << Describe(st));
  CHECK(CodeName(st) == CodeName(want));
  CHECK(DiffStates(before, CaptureState(d)) == "");
  return st;
}

#define EXPECT_REJECTED(daemon, code, call)                                          \
  ::ndocker::daemon_test::ExpectRejectedUnchanged((daemon), ::grpc::StatusCode::code, #call, \
                                                  [&]() -> ::grpc::Status { return (call); })

}  // namespace ndocker::daemon_test
