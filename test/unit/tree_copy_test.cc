// CopyTree moves snapshots between tiers: everything overlayfs and the
// container see must survive the copy (owners, modes, times, xattrs,
// hardlinks, symlinks, whiteout devices, sparse files).
#include "snapshotter/tree_copy.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "snapshotter/throttle.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

// What the copy must preserve about one filesystem object.
struct Node {
  mode_t mode = 0;  // type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;
  blkcnt_t blocks = 0;
  struct timespec mtime = {};
  dev_t rdev = 0;
  nlink_t nlink = 0;
  ino_t ino = 0;
  std::string content;  // regular files
  std::string link;     // symlinks
  std::map<std::string, std::string> xattrs;
};

std::map<std::string, std::string> Xattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
  REQUIRE(n >= 0);
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(path.c_str(), names.data(), names.size());
  REQUIRE(n >= 0);
  names.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < names.size();) {
    const std::string name = names.c_str() + i;
    i += name.size() + 1;
    ssize_t len = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    REQUIRE(len >= 0);
    std::string value(static_cast<size_t>(len), '\0');
    len = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    REQUIRE(len >= 0);
    value.resize(static_cast<size_t>(len));
    out[name] = value;
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Node Describe(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  Node n;
  n.mode = st.st_mode;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.size = st.st_size;
  n.blocks = st.st_blocks;
  n.mtime = st.st_mtim;
  n.rdev = st.st_rdev;
  n.nlink = st.st_nlink;
  n.ino = st.st_ino;
  if (S_ISREG(st.st_mode)) n.content = ReadAll(path);
  if (S_ISLNK(st.st_mode)) n.link = fs::read_symlink(path).string();
  n.xattrs = Xattrs(path);
  return n;
}

// Every object below `root` (and root itself as ""), by relative path.
std::map<std::string, Node> Scan(const std::string& root) {
  std::map<std::string, Node> out;
  out[""] = Describe(root);
  for (const auto& e : fs::recursive_directory_iterator(root)) {  // never follows symlinks
    out[e.path().lexically_relative(root).string()] = Describe(e.path().string());
  }
  return out;
}

// Paths grouped by inode: which names share one file.
std::set<std::set<std::string>> InodeGroups(const std::map<std::string, Node>& tree) {
  std::map<ino_t, std::set<std::string>> by_ino;
  for (const auto& [path, node] : tree) by_ino[node.ino].insert(path);
  std::set<std::set<std::string>> out;
  for (auto& [ino, paths] : by_ino) out.insert(paths);
  return out;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

void SetMtime(const std::string& path, time_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

void Own(const std::string& path, uid_t uid, gid_t gid, mode_t mode) {
  // chown first: it clears setuid/setgid bits.
  REQUIRE(::lchown(path.c_str(), uid, gid) == 0);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

bool SetXattr(const std::string& path, const std::string& name, const std::string& value) {
  return ::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) == 0;
}

const std::string kUnicodeName = "name with spaces ünïcødé ✓ файл.txt";
constexpr off_t kSparseSize = 10 << 20;

struct Source {
  bool user_xattrs = false;
};

// Builds the source tree under `src` (which exists).
Source BuildSource(const std::string& src) {
  Source s;
  // A regular file: content, mode, owner, nanosecond mtime in the past.
  WriteFile(src + "/file.txt", "hello, tiers\n");
  Own(src + "/file.txt", 1000, 1001, 0640);

  WriteFile(src + "/setuid-bin", "#!/bin/sh\necho hi\n");
  Own(src + "/setuid-bin", 0, 0, 04755);

  WriteFile(src + "/setgid-bin", "x");
  Own(src + "/setgid-bin", 5, 50, 02711);

  REQUIRE(::mkdir((src + "/dir").c_str(), 0755) == 0);
  REQUIRE(::mkdir((src + "/dir/nested").c_str(), 0700) == 0);
  WriteFile(src + "/dir/nested/inner", "inner data");
  Own(src + "/dir/nested/inner", 123, 456, 0600);
  Own(src + "/dir/nested", 123, 456, 0700);

  REQUIRE(::mkdir((src + "/sticky").c_str(), 0755) == 0);
  REQUIRE(::chmod((src + "/sticky").c_str(), 01777) == 0);

  // Symlinks: must be copied as links, never followed.
  REQUIRE(::symlink("dir/nested/inner", (src + "/link-rel").c_str()) == 0);
  REQUIRE(::symlink("/etc/hostname", (src + "/link-abs").c_str()) == 0);
  REQUIRE(::symlink("/nonexistent/target", (src + "/link-dangling").c_str()) == 0);
  REQUIRE(::symlink("dir", (src + "/link-to-dir").c_str()) == 0);
  REQUIRE(::symlink("../../file.txt", (src + "/dir/link-up").c_str()) == 0);
  REQUIRE(::lchown((src + "/link-rel").c_str(), 77, 88) == 0);

  // A hardlink pair across directories.
  WriteFile(src + "/hard-a", "shared inode");
  Own(src + "/hard-a", 1000, 1000, 0644);
  REQUIRE(::link((src + "/hard-a").c_str(), (src + "/dir/hard-b").c_str()) == 0);
  // A hardlinked empty file too.
  WriteFile(src + "/hard-empty-a", "");
  REQUIRE(::link((src + "/hard-empty-a").c_str(), (src + "/hard-empty-b").c_str()) == 0);

  // An overlay whiteout: char device 0:0, mode 0.
  REQUIRE(::mknod((src + "/whiteout").c_str(), S_IFCHR | 0000, makedev(0, 0)) == 0);
  REQUIRE(::chmod((src + "/whiteout").c_str(), 0000) == 0);
  // Another device and a FIFO.
  REQUIRE(::mknod((src + "/null-dev").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE(::chmod((src + "/null-dev").c_str(), 0666) == 0);
  REQUIRE(::mkfifo((src + "/fifo").c_str(), 0620) == 0);
  REQUIRE(::chmod((src + "/fifo").c_str(), 0620) == 0);

  // An opaque directory (trusted.* needs root) and user xattrs.
  REQUIRE(::mkdir((src + "/opaque").c_str(), 0755) == 0);
  WriteFile(src + "/opaque/kept", "k");
  REQUIRE(SetXattr(src + "/opaque", "trusted.overlay.opaque", "y"));
  REQUIRE(SetXattr(src + "/whiteout", "trusted.overlay.test", std::string("\0\x01\xff", 3)));
  WriteFile(src + "/xattr-file", "has xattrs");
  s.user_xattrs = SetXattr(src + "/xattr-file", "user.ndocker", "hello");
  if (s.user_xattrs) {
    REQUIRE(SetXattr(src + "/xattr-file", "user.empty", ""));
    REQUIRE(SetXattr(src + "/dir", "user.on-a-dir", "d"));
  } else {
    WARN("user xattrs not supported here (errno " << errno << "); not tested");
  }

  WriteFile(src + "/empty", "");

  // Sparse: 10 MiB with one byte at the end.
  {
    const std::string p = src + "/sparse";
    int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, kSparseSize) == 0);
    REQUIRE(::pwrite(fd, "Z", 1, kSparseSize - 1) == 1);
    REQUIRE(::close(fd) == 0);
  }

  // Several data blocks with a non-repeating pattern.
  {
    std::string big(3 * 1024 * 1024 + 123, '\0');
    uint32_t x = 12345;
    for (char& c : big) {
      x = x * 1103515245 + 12345;
      c = static_cast<char>(x >> 24);
    }
    WriteFile(src + "/big.bin", big);
  }

  WriteFile(src + "/" + kUnicodeName, "unicode");
  REQUIRE(::mkdir((src + "/dir with space").c_str(), 0750) == 0);
  WriteFile(src + "/dir with space/a:b c", "colon");

  // Times last, deepest first, so creating children does not change them.
  long nsec = 1;
  for (const std::string rel :
       {"file.txt", "setuid-bin", "setgid-bin", "dir/nested/inner", "link-rel", "link-abs",
        "link-dangling", "link-to-dir", "dir/link-up", "hard-a", "hard-empty-a", "whiteout",
        "null-dev", "fifo", "opaque/kept", "xattr-file", "empty", "sparse", "big.bin",
        kUnicodeName.c_str(), "dir with space/a:b c", "dir/nested", "dir with space", "opaque",
        "sticky", "dir"}) {
    SetMtime(src + "/" + rel, 946684800 + nsec * 1000, nsec * 111111 % 1000000000);  // 2000-01-01
    ++nsec;
  }
  SetMtime(src + "/file.txt", 1234567890, 123456789);
  return s;
}

void CheckSameTree(const std::map<std::string, Node>& a, const std::map<std::string, Node>& b) {
  std::vector<std::string> names_a, names_b;
  for (const auto& [p, n] : a) names_a.push_back(p);
  for (const auto& [p, n] : b) names_b.push_back(p);
  REQUIRE(names_a == names_b);
  for (const auto& [path, x] : a) {
    const Node& y = b.at(path);
    INFO("path \"" << path << "\"");
    CHECK(x.mode == y.mode);
    CHECK(x.uid == y.uid);
    CHECK(x.gid == y.gid);
    if (!S_ISDIR(x.mode)) CHECK(x.size == y.size);
    CHECK(x.mtime.tv_sec == y.mtime.tv_sec);
    CHECK(x.mtime.tv_nsec == y.mtime.tv_nsec);
    CHECK(x.rdev == y.rdev);
    if (!S_ISDIR(x.mode)) CHECK(x.nlink == y.nlink);
    CHECK(x.content == y.content);
    CHECK(x.link == y.link);
    CHECK(x.xattrs == y.xattrs);
  }
  CHECK(InodeGroups(a) == InodeGroups(b));
}

}  // namespace

TEST_CASE("CopyTree copies everything overlayfs needs", "[tree_copy]") {
  TempDir dir;
  const std::string src = dir / "src";
  const std::string dst = dir / "dst";
  REQUIRE(::mkdir(src.c_str(), 0755) == 0);
  REQUIRE(::mkdir(dst.c_str(), 0700) == 0);
  const Source source = BuildSource(src);
  // The root's own attributes go to dst too.
  Own(src, 4242, 4343, 0751);
  REQUIRE(SetXattr(src, "trusted.overlay.origin", "root-marker"));
  SetMtime(src, 1000000000, 5);

  const auto before = Scan(src);
  absl::Status st = CopyTree(src, dst, /*sync=*/true);
  INFO(st.ToString());
  REQUIRE(st.ok());
  const auto copy = Scan(dst);
  const auto after = Scan(src);

  // The source is untouched (mtimes included: atimes are not compared).
  CheckSameTree(before, after);
  CheckSameTree(before, copy);

  SECTION("the root takes the source root's attributes") {
    const Node& root = copy.at("");
    CHECK((root.mode & 07777) == 0751);
    CHECK(S_ISDIR(root.mode));
    CHECK(root.uid == 4242);
    CHECK(root.gid == 4343);
    CHECK(root.mtime.tv_sec == 1000000000);
    CHECK(root.mtime.tv_nsec == 5);
    CHECK(root.xattrs.at("trusted.overlay.origin") == "root-marker");
  }

  SECTION("spot checks of the copy") {
    const Node& f = copy.at("file.txt");
    CHECK(S_ISREG(f.mode));
    CHECK((f.mode & 07777) == 0640);
    CHECK(f.uid == 1000);
    CHECK(f.gid == 1001);
    CHECK(f.content == "hello, tiers\n");
    CHECK(f.mtime.tv_sec == 1234567890);
    CHECK(f.mtime.tv_nsec == 123456789);

    CHECK((copy.at("setuid-bin").mode & 07777) == 04755);
    CHECK((copy.at("setgid-bin").mode & 07777) == 02711);
    CHECK(copy.at("setgid-bin").gid == 50);
    CHECK((copy.at("sticky").mode & 07777) == 01777);

    const Node& nested = copy.at("dir/nested");
    CHECK(S_ISDIR(nested.mode));
    CHECK((nested.mode & 07777) == 0700);
    CHECK(nested.uid == 123);
    CHECK(nested.gid == 456);
    CHECK(copy.at("dir/nested/inner").content == "inner data");

    // Symlinks stay symlinks with the same targets.
    CHECK(S_ISLNK(copy.at("link-rel").mode));
    CHECK(copy.at("link-rel").link == "dir/nested/inner");
    CHECK(copy.at("link-rel").uid == 77);
    CHECK(copy.at("link-rel").gid == 88);
    CHECK(S_ISLNK(copy.at("link-abs").mode));
    CHECK(copy.at("link-abs").link == "/etc/hostname");
    CHECK(copy.at("link-dangling").link == "/nonexistent/target");
    CHECK(S_ISLNK(copy.at("link-to-dir").mode));
    CHECK(copy.count("link-to-dir/nested") == 0);  // not followed
    CHECK(copy.at("dir/link-up").link == "../../file.txt");

    // Hardlinks share one inode in the copy.
    const Node& a = copy.at("hard-a");
    const Node& b = copy.at("dir/hard-b");
    CHECK(a.ino == b.ino);
    CHECK(a.nlink == 2);
    CHECK(a.content == "shared inode");
    CHECK(copy.at("hard-empty-a").ino == copy.at("hard-empty-b").ino);
    CHECK(copy.at("hard-empty-a").nlink == 2);
    CHECK(copy.at("hard-a").ino != copy.at("hard-empty-a").ino);

    // Whiteout: char device 0:0.
    const Node& wh = copy.at("whiteout");
    CHECK(S_ISCHR(wh.mode));
    CHECK((wh.mode & 07777) == 0);
    CHECK(major(wh.rdev) == 0);
    CHECK(minor(wh.rdev) == 0);
    CHECK(wh.xattrs.at("trusted.overlay.test") == std::string("\0\x01\xff", 3));
    CHECK(S_ISCHR(copy.at("null-dev").mode));
    CHECK(copy.at("null-dev").rdev == makedev(1, 3));
    CHECK(S_ISFIFO(copy.at("fifo").mode));

    CHECK(copy.at("opaque").xattrs.at("trusted.overlay.opaque") == "y");
    CHECK(copy.at("opaque/kept").content == "k");
    if (source.user_xattrs) {
      CHECK(copy.at("xattr-file").xattrs.at("user.ndocker") == "hello");
      CHECK(copy.at("xattr-file").xattrs.at("user.empty").empty());
      CHECK(copy.at("dir").xattrs.at("user.on-a-dir") == "d");
    }

    CHECK(S_ISREG(copy.at("empty").mode));
    CHECK(copy.at("empty").size == 0);

    const Node& sparse = copy.at("sparse");
    CHECK(sparse.size == kSparseSize);
    REQUIRE(sparse.content.size() == static_cast<size_t>(kSparseSize));
    CHECK(sparse.content.back() == 'Z');
    CHECK(sparse.content.find_first_not_of('\0') == static_cast<size_t>(kSparseSize - 1));
    // Still sparse: far less than 10 MiB allocated.
    CHECK(sparse.blocks * 512 < 1024 * 1024);

    CHECK(copy.at("big.bin").content == before.at("big.bin").content);
    CHECK(copy.at("big.bin").size == 3 * 1024 * 1024 + 123);
    CHECK(copy.at(kUnicodeName).content == "unicode");
    CHECK(copy.at("dir with space/a:b c").content == "colon");
  }
}

TEST_CASE("CopyTree of an empty directory copies the root's attributes", "[tree_copy]") {
  TempDir dir;
  const std::string src = dir / "src";
  const std::string dst = dir / "dst";
  REQUIRE(::mkdir(src.c_str(), 0755) == 0);
  REQUIRE(::mkdir(dst.c_str(), 0755) == 0);
  Own(src, 1, 2, 0700);
  SetMtime(src, 86400, 0);
  REQUIRE(CopyTree(src, dst, false).ok());
  CHECK(fs::is_empty(dst));
  struct stat st;
  REQUIRE(::lstat(dst.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(st.st_uid == 1);
  CHECK(st.st_gid == 2);
  CHECK(st.st_mtim.tv_sec == 86400);
}

TEST_CASE("CopyTree through symlinked parent directories", "[tree_copy]") {
  // Tier roots are often reached through a symlink (e.g. /var/lib/x -> /data/x).
  TempDir dir;
  REQUIRE(::mkdir((dir / "real-src").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "real-dst").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "real-src/fs").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir / "real-dst/fs").c_str(), 0755) == 0);
  WriteFile(dir / "real-src/fs/file", "through a link");
  REQUIRE(::mkdir((dir / "real-src/fs/sub").c_str(), 0711) == 0);
  WriteFile(dir / "real-src/fs/sub/inner", "deeper");
  REQUIRE(::symlink("real-src", (dir / "src-link").c_str()) == 0);
  REQUIRE(::symlink("real-dst", (dir / "dst-link").c_str()) == 0);

  absl::Status st = CopyTree(dir / "src-link/fs", dir / "dst-link/fs", false);
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(ReadAll(dir / "real-dst/fs/file") == "through a link");
  CHECK(ReadAll(dir / "real-dst/fs/sub/inner") == "deeper");
  struct stat sub;
  REQUIRE(::lstat((dir / "real-dst/fs/sub").c_str(), &sub) == 0);
  CHECK((sub.st_mode & 07777) == 0711);
}

TEST_CASE("CopyTree from a missing source is an error, not a crash", "[tree_copy]") {
  TempDir dir;
  const std::string dst = dir / "dst";
  REQUIRE(::mkdir(dst.c_str(), 0755) == 0);
  absl::Status st = CopyTree(dir / "no-such-dir", dst, false);
  CHECK_FALSE(st.ok());
  CHECK(fs::is_empty(dst));
}

namespace {

// A small source: data in three files (one of them hardlinked twice), an
// empty file, a symlink and a subdirectory. Returns the bytes of file data.
int64_t BuildDataSource(const std::string& src) {
  fs::create_directories(src + "/sub");
  WriteFile(src + "/a", std::string(100 * 1024, 'a'));
  WriteFile(src + "/sub/b", std::string(1 << 20, 'b'));
  WriteFile(src + "/sub/c", std::string(12345, 'c'));
  WriteFile(src + "/empty", "");
  fs::create_hard_link(src + "/sub/b", src + "/b-again");
  fs::create_symlink("sub/b", src + "/link");
  return 100 * 1024 + (1 << 20) + 12345;
}

struct Unmount {
  std::string target;
  ~Unmount() { ::umount2(target.c_str(), MNT_DETACH); }
};

}  // namespace

TEST_CASE("CopyTree reports every data block written through on_bytes", "[tree_copy]") {
  TempDir dir;
  const int64_t data = BuildDataSource(dir / "src");
  fs::create_directories(dir / "dst");
  int64_t reported = 0;
  int calls = 0;
  CopyOptions options;
  options.sync = true;
  options.on_bytes = [&](int64_t n) {
    CHECK(n > 0);
    reported += n;
    ++calls;
  };
  REQUIRE(CopyTree(dir / "src", dir / "dst", options).ok());
  CHECK(reported == data);  // the hardlink's data is written once
  CHECK(calls >= 3);
  CHECK(ReadAll(dir / "dst/sub/b") == std::string(1 << 20, 'b'));
  CHECK(fs::equivalent(dir / "dst/sub/b", dir / "dst/b-again"));
}

TEST_CASE("CopyTree through a Throttle asks for the time the rate needs", "[tree_copy][throttle]") {
  class FakeClock final : public Clock {
   public:
    Duration Now() override { return now; }
    void SleepFor(Duration d) override {
      now += d;
      slept += d;
    }
    Duration now{std::chrono::seconds(1000)};
    Duration slept{0};
  } clock;
  TempDir dir;
  const int64_t data = BuildDataSource(dir / "src");
  fs::create_directories(dir / "dst");
  Throttle throttle(static_cast<double>(data) / 2, &clock);  // two seconds' worth
  CopyOptions options;
  options.on_bytes = [&](int64_t n) { throttle.Consume(n); };
  REQUIRE(CopyTree(dir / "src", dir / "dst", options).ok());
  const double slept = std::chrono::duration<double>(clock.slept).count();
  CHECK(slept == Approx(2.0).epsilon(0.01));
}

TEST_CASE("CopyTree stops with Cancelled when asked", "[tree_copy]") {
  TempDir dir;
  BuildDataSource(dir / "src");
  fs::create_directories(dir / "dst");
  bool cancel = false;
  CopyOptions options;
  options.on_bytes = [&](int64_t) { cancel = true; };
  options.cancelled = [&] { return cancel; };
  absl::Status st = CopyTree(dir / "src", dir / "dst", options);
  CHECK(st.code() == absl::StatusCode::kCancelled);

  // Cancelled before it starts: nothing is written.
  fs::create_directories(dir / "dst2");
  options.cancelled = [] { return true; };
  CHECK(CopyTree(dir / "src", dir / "dst2", options).code() == absl::StatusCode::kCancelled);
  CHECK(fs::is_empty(dir / "dst2"));
}

TEST_CASE("CopyTree onto a full filesystem is ResourceExhausted, without paths",
          "[tree_copy][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting a small tmpfs needs root");
    return;
  }
  TempDir dir;
  fs::create_directories(dir / "src");
  WriteFile(dir / "src/big", std::string(4 << 20, 'x'));
  fs::create_directories(dir / "small");
  REQUIRE(::mount("tmpfs", (dir / "small").c_str(), "tmpfs", 0, "size=1m") == 0);
  Unmount unmount{dir / "small"};
  fs::create_directories(dir / "small/staging/7-1-abcdef");
  for (bool sync : {true, false}) {
    CopyOptions options;
    options.sync = sync;
    absl::Status st = CopyTree(dir / "src", dir / "small/staging/7-1-abcdef", options);
    INFO(st.ToString());
    CHECK(st.code() == absl::StatusCode::kResourceExhausted);
    CHECK(st.message().find(strerror(ENOSPC)) != absl::string_view::npos);
    CHECK(st.message().find(dir.path()) == absl::string_view::npos);
    CHECK(st.message().find("big") == absl::string_view::npos);
  }
}

TEST_CASE("CopyTree between filesystems: ext4's own inode flags do not travel", "[tree_copy][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting a tmpfs needs root");
    return;
  }
  TempDir dir;
  const int64_t data = BuildDataSource(dir / "src");
  fs::create_directories(dir / "tmpfs");
  REQUIRE(::mount("tmpfs", (dir / "tmpfs").c_str(), "tmpfs", 0, "size=64m") == 0);
  Unmount unmount{dir / "tmpfs"};
  fs::create_directories(dir / "tmpfs/dst");
  // The temp dir is on ext4 here, where every inode has the "extents" flag
  // that tmpfs cannot take; elsewhere this is a plain copy.
  int64_t reported = 0;
  CopyOptions options;
  options.on_bytes = [&](int64_t n) { reported += n; };
  absl::Status st = CopyTree(dir / "src", dir / "tmpfs/dst", options);
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(reported == data);
  CHECK(ReadAll(dir / "tmpfs/dst/sub/c") == std::string(12345, 'c'));
  CHECK(fs::read_symlink(dir / "tmpfs/dst/link") == "sub/b");
}

}  // namespace ndocker
