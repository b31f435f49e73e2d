// A regular file mapped through libpmem2 for writing: on a DAX filesystem
// (real persistent memory) the library's memcpy uses non-temporal stores and
// persist flushes CPU caches; elsewhere (ext4, tmpfs) the mapping needs page
// store granularity, and persist is msync (DESIGN.md §6).
#pragma once

#include <libpmem2.h>

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"

namespace ndocker::hbcsa {

class Pmem2File {
 public:
  // Maps all of `fd` (opened O_RDWR, size > 0) shared and writable.
  static absl::StatusOr<Pmem2File> Map(int fd);

  char* data() const { return static_cast<char*>(pmem2_map_get_address(map_.get())); }
  size_t size() const { return pmem2_map_get_size(map_.get()); }
  // Copies `len` bytes to data()+offset and makes them durable.
  void CopyAndPersist(size_t offset, const void* src, size_t len) const;

 private:
  struct MapDeleter {
    void operator()(pmem2_map* m) const { pmem2_map_delete(&m); }
  };
  explicit Pmem2File(pmem2_map* map);

  std::unique_ptr<pmem2_map, MapDeleter> map_;
  pmem2_memcpy_fn memcpy_ = nullptr;
  pmem2_persist_fn persist_ = nullptr;
};

// Copies the contents of `src_fd` (a regular file of `size` bytes) into
// `dst_fd` (a new empty regular file opened O_RDWR) through a Pmem2File:
// only the source's data segments (SEEK_DATA/SEEK_HOLE) are written, so
// holes stay holes. Returns the bytes written. A size of 0 writes nothing.
absl::StatusOr<int64_t> CopyFileDataPmem2(int src_fd, int dst_fd, int64_t size);

}  // namespace ndocker::hbcsa
