#include "lass/store_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lass/digest.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::lass {
namespace {

absl::Status OpenError(const std::string& what, const std::string& path) {
  if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " not found"));
  return LastErrnoStatus(what, path);
}

absl::StatusOr<UniqueFd> OpenRegular(const std::string& path, struct stat* st) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    // O_NOFOLLOW on a symlink fails with ELOOP.
    if (errno == ELOOP) return absl::FailedPreconditionError(absl::StrCat(path, " is a symlink"));
    return OpenError("open", path);
  }
  if (::fstat(fd.get(), st) != 0) return LastErrnoStatus("fstat", path);
  if (!S_ISREG(st->st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  return fd;
}

absl::StatusOr<std::string> ReadAll(int fd, const std::string& path, int64_t max_bytes) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max_bytes) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
  }
  return out;
}

std::string IngestDir(const std::string& root, const std::string& name) {
  return absl::StrCat(root, "/ingest/", name);
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, int64_t max_bytes) {
  struct stat st;
  auto fd = OpenRegular(path, &st);
  if (!fd.ok()) return fd.status();
  if (st.st_size > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
  }
  return ReadAll(fd->get(), path, max_bytes);
}

absl::StatusOr<std::vector<std::string>> ListHex64Names(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return OpenError("open", dir);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return LastErrnoStatus("fdopendir", dir);
  fd.Release();  // owned by the DIR stream now
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, &::closedir);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) return LastErrnoStatus("readdir", dir);
      break;
    }
    if (IsHex64(e->d_name)) names.emplace_back(e->d_name);
  }
  return names;
}

absl::StatusOr<IngestMeta> ReadIngestMeta(const std::string& content_root, const std::string& name) {
  const std::string dir = IngestDir(content_root, name);
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return OpenError("lstat", dir);
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));

  IngestMeta meta;
  bool have_ref = false, have_started = false, have_total = false;
  // ref is written in place (not via rename), so it may be read half-written
  // as empty; it is short enough that a non-empty read is the whole ref.
  if (auto ref = ReadSmallFile(dir + "/ref", 4096); ref.ok()) {
    meta.ref = std::string(absl::StripAsciiWhitespace(*ref));
    have_ref = !meta.ref.empty();
  } else if (!absl::IsNotFound(ref.status())) {
    return ref.status();
  }
  if (auto started = ReadSmallFile(dir + "/startedat", 256); started.ok()) {
    std::string err;
    absl::Time t;
    if (absl::ParseTime(absl::RFC3339_full, std::string(absl::StripAsciiWhitespace(*started)), &t,
                        &err)) {
      meta.started_at = t;
      have_started = true;
    }
  } else if (!absl::IsNotFound(started.status())) {
    return started.status();
  }
  if (auto total = ReadSmallFile(dir + "/total", 64); total.ok()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*total), &v) && v > 0) meta.total = v;
    have_total = true;
  } else if (!absl::IsNotFound(total.status())) {
    return total.status();
  }
  bool have_data = false;
  if (!have_total) {
    auto size = IngestDataSize(content_root, name);
    have_data = size.ok();
  }
  meta.complete = have_ref && have_started && (have_total || have_data);
  return meta;
}

absl::StatusOr<int64_t> IngestDataSize(const std::string& content_root, const std::string& name) {
  const std::string path = IngestDir(content_root, name) + "/data";
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return OpenError("lstat", path);
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<BlobInfo> StatBlob(const std::string& content_root, const std::string& hex) {
  const std::string path = absl::StrCat(content_root, "/blobs/sha256/", hex);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return OpenError("lstat", path);
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  return BlobInfo{static_cast<int64_t>(st.st_size), absl::TimeFromTimespec(st.st_mtim)};
}

absl::StatusOr<std::optional<std::string>> ReadJsonBlob(const std::string& content_root,
                                                        const std::string& hex) {
  const std::string path = absl::StrCat(content_root, "/blobs/sha256/", hex);
  struct stat st;
  auto fd = OpenRegular(path, &st);
  if (!fd.ok()) return fd.status();
  if (st.st_size <= 0 || st.st_size > kMaxJsonBlobSize) return std::optional<std::string>();
  // Peek at one byte first: most small blobs are gzip layers, not worth reading.
  char first = 0;
  ssize_t n;
  do {
    n = ::pread(fd->get(), &first, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return LastErrnoStatus("pread", path);
  if (n == 0 || first != '{') return std::optional<std::string>();
  auto bytes = ReadAll(fd->get(), path, kMaxJsonBlobSize);
  if (!bytes.ok()) {
    if (absl::IsFailedPrecondition(bytes.status())) return std::optional<std::string>();
    return bytes.status();
  }
  auto sum = Sha256Hex(*bytes);
  if (!sum.ok()) return sum.status();
  if (*sum != hex) return absl::UnavailableError(absl::StrCat(path, " does not match its digest yet"));
  return std::optional<std::string>(*std::move(bytes));
}

}  // namespace ndocker::lass
