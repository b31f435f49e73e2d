#include "hbcsa/promoter/pmem2_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

namespace {

absl::Status Pmem2Error(int rc, const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", pmem2_errormsg(), " (", rc, ")"));
}

struct ConfigDeleter {
  void operator()(pmem2_config* c) const { pmem2_config_delete(&c); }
};
struct SourceDeleter {
  void operator()(pmem2_source* s) const { pmem2_source_delete(&s); }
};

// A read-only private mapping of a source file, unmapped on destruction.
class ReadMapping {
 public:
  ReadMapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  ReadMapping(const ReadMapping&) = delete;
  ReadMapping& operator=(const ReadMapping&) = delete;
  ~ReadMapping() { ::munmap(addr_, len_); }
  const char* data() const { return static_cast<const char*>(addr_); }

 private:
  void* addr_;
  size_t len_;
};

}  // namespace

Pmem2File::Pmem2File(pmem2_map* map)
    : map_(map), memcpy_(pmem2_get_memcpy_fn(map)), persist_(pmem2_get_persist_fn(map)) {}

absl::StatusOr<Pmem2File> Pmem2File::Map(int fd) {
  pmem2_config* raw_cfg = nullptr;
  if (int rc = pmem2_config_new(&raw_cfg); rc != 0) return Pmem2Error(rc, "pmem2_config_new");
  std::unique_ptr<pmem2_config, ConfigDeleter> cfg(raw_cfg);
  // Page granularity: what a page-cache filesystem offers (persist = msync);
  // on DAX the library still uses its cache-line paths.
  if (int rc = pmem2_config_set_required_store_granularity(cfg.get(), PMEM2_GRANULARITY_PAGE);
      rc != 0) {
    return Pmem2Error(rc, "pmem2_config_set_required_store_granularity");
  }
  pmem2_source* raw_src = nullptr;
  if (int rc = pmem2_source_from_fd(&raw_src, fd); rc != 0) {
    return Pmem2Error(rc, "pmem2_source_from_fd");
  }
  std::unique_ptr<pmem2_source, SourceDeleter> src(raw_src);
  pmem2_map* map = nullptr;
  if (int rc = pmem2_map_new(&map, cfg.get(), src.get()); rc != 0) {
    return Pmem2Error(rc, "pmem2_map_new");
  }
  // The mapping holds what it needs; config and source go now.
  return Pmem2File(map);
}

void Pmem2File::CopyAndPersist(size_t offset, const void* src, size_t len) const {
  // flags 0: the library picks temporal or non-temporal stores by size and
  // drains before returning; persist then makes the range durable.
  memcpy_(data() + offset, src, len, 0);
  persist_(data() + offset, len);
}

absl::StatusOr<int64_t> CopyFileDataPmem2(int src_fd, int dst_fd, int64_t size) {
  if (size == 0) return int64_t{0};
  if (size < 0) return absl::InvalidArgumentError("negative file size");
  if (::ftruncate(dst_fd, size) != 0) return LastErrnoStatus("ftruncate");
  const size_t len = static_cast<size_t>(size);
  void* addr = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, src_fd, 0);
  if (addr == MAP_FAILED) return LastErrnoStatus("mmap source");
  ReadMapping source(addr, len);
  absl::StatusOr<Pmem2File> dst = Pmem2File::Map(dst_fd);
  if (!dst.ok()) return dst.status();
  if (dst->size() < len) return absl::InternalError("pmem2 mapping shorter than the file");

  int64_t written = 0;
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(src_fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return LastErrnoStatus("lseek SEEK_DATA");
    }
    if (data >= size) break;
    off_t hole = ::lseek(src_fd, data, SEEK_HOLE);
    if (hole < 0) return LastErrnoStatus("lseek SEEK_HOLE");
    if (hole > size) hole = size;
    const size_t n = static_cast<size_t>(hole - data);
    dst->CopyAndPersist(static_cast<size_t>(data), source.data() + data, n);
    written += static_cast<int64_t>(n);
    pos = hole;
  }
  return written;
}

}  // namespace ndocker::hbcsa
