#include "hbcsa/promoter/data_only_layers.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/scoped_mount.h"
#include "hbcsa/promoter/scoped_temp_dir.h"
#include "hbcsa/promoter/xattrs.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/status_macros.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

namespace {

constexpr char kProbeData[] = "ndocker data-only layer probe\n";

absl::Status WriteFile(const std::string& path, const std::string& data, off_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return LastErrnoStatus("create", path);
  if (!data.empty() &&
      ::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return LastErrnoStatus("write", path);
  }
  if (::ftruncate(fd.get(), size) != 0) return LastErrnoStatus("ftruncate", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("open", path);
  char buf[256];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) return LastErrnoStatus("read", path);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string DataOnlyOverlayOptions(const std::string& meta_dir,
                                   const std::vector<std::string>& data_layers) {
  std::string lower = meta_dir;
  for (const std::string& layer : data_layers) absl::StrAppend(&lower, "::", layer);
  return absl::StrCat("lowerdir=", lower, ",metacopy=on,redirect_dir=on");
}

absl::StatusOr<bool> DataOnlyLowerLayersSupported(const std::string& scratch_dir) {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Make(scratch_dir, ".ndocker-dataonly-probe-");
  if (!dir.ok()) return dir.status();
  const std::string meta = dir->path() + "/meta";
  const std::string data = dir->path() + "/data";
  const std::string mnt = dir->path() + "/mnt";
  for (const std::string* d : {&meta, &data, &mnt}) {
    if (::mkdir(d->c_str(), 0755) != 0) return LastErrnoStatus("mkdir", *d);
  }
  // The data sits at another name than the stub, so only a followed
  // redirect can serve it.
  const std::string payload = kProbeData;
  NDOCKER_RETURN_IF_ERROR(WriteFile(data + "/data", payload, static_cast<off_t>(payload.size())));
  NDOCKER_RETURN_IF_ERROR(WriteFile(meta + "/stub", "", static_cast<off_t>(payload.size())));
  NDOCKER_RETURN_IF_ERROR(SetXattr(meta + "/stub", "trusted.overlay.metacopy", ""));
  NDOCKER_RETURN_IF_ERROR(SetXattr(meta + "/stub", "trusted.overlay.redirect", "/data"));

  absl::StatusOr<ScopedMount> m =
      ScopedMount::Mount("overlay", mnt, "overlay", MS_RDONLY, DataOnlyOverlayOptions(meta, {data}));
  if (!m.ok()) {
    if (absl::IsInvalidArgument(m.status())) return false;  // "::" or metacopy not known
    return m.status();
  }
  absl::StatusOr<std::string> got = ReadSmallFile(mnt + "/stub");
  NDOCKER_RETURN_IF_ERROR(m->Unmount());
  if (!got.ok()) return false;  // the kernel mounted it but cannot follow the redirect
  return *got == payload;
}

absl::StatusOr<bool> OnOverlayfs(const std::string& path) {
  constexpr long kOverlayfsMagic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) return LastErrnoStatus("statfs", path);
  return static_cast<long>(fs.f_type) == kOverlayfsMagic;
}

}  // namespace ndocker::hbcsa
