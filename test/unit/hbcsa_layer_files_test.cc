// Layer file lists streamed from real blobs (plain tar, gzip, zstd) written
// with libarchive: names, types, modes, links, whiteouts; and broken blobs
// (truncated, corrupt, missing, a symlink) as errors, never crashes.
#include "hbcsa/layer_files.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include <fstream>

#include "hbcsa_blobs.h"
#include "temp_dir.h"

namespace ndocker::hbcsa {
namespace {

using namespace ndocker::hbcsa::testing;  // NOLINT

const FileEntry* Find(const LayerFileList& l, const std::string& path, FileType type) {
  for (const FileEntry& e : l.entries) {
    if (e.path == path && e.type == type) return &e;
  }
  return nullptr;
}

std::vector<TarEntry> SampleLayer() {
  return {
      Dir("./"),
      Dir("./usr/"),
      Dir("./usr/bin/"),
      Exe("./usr/bin/tool", std::string(1000, 'a')),
      File("./etc/conf", "hello"),
      Symlink("./usr/bin/t", "tool"),
      Symlink("usr/lib64", "/usr/lib"),
      Hardlink("./usr/bin/tool2", "./usr/bin/tool"),
      Whiteout("etc", "gone"),
      Whiteout("", "topgone"),
      Dir("var/cache/"),
      Opaque("var/cache"),
      File("etc/.wh..wh.plnk", ""),  // aufs metadata: not a file of the image
      File("/abs//x/../y", "z"),
      File("../../escape", "e"),
  };
}

void CheckSample(const LayerFileList& l) {
  const FileEntry* tool = Find(l, "usr/bin/tool", FileType::kRegular);
  REQUIRE(tool != nullptr);
  CHECK(tool->size == 1000);
  CHECK(tool->mode == 0755);
  CHECK(tool->executable());
  const FileEntry* conf = Find(l, "etc/conf", FileType::kRegular);
  REQUIRE(conf != nullptr);
  CHECK(conf->size == 5);
  CHECK_FALSE(conf->executable());
  REQUIRE(Find(l, "usr", FileType::kDirectory) != nullptr);
  REQUIRE(Find(l, "usr/bin", FileType::kDirectory) != nullptr);
  const FileEntry* t = Find(l, "usr/bin/t", FileType::kSymlink);
  REQUIRE(t != nullptr);
  CHECK(t->link_target == "tool");
  const FileEntry* lib64 = Find(l, "usr/lib64", FileType::kSymlink);
  REQUIRE(lib64 != nullptr);
  CHECK(lib64->link_target == "/usr/lib");
  const FileEntry* hl = Find(l, "usr/bin/tool2", FileType::kHardlink);
  REQUIRE(hl != nullptr);
  CHECK(hl->link_target == "usr/bin/tool");
  CHECK(Find(l, "etc/gone", FileType::kWhiteout) != nullptr);
  CHECK(Find(l, "topgone", FileType::kWhiteout) != nullptr);
  CHECK(Find(l, "var/cache", FileType::kOpaqueDir) != nullptr);
  CHECK(Find(l, "abs/y", FileType::kRegular) != nullptr);
  CHECK(Find(l, "escape", FileType::kRegular) != nullptr);
  for (const FileEntry& e : l.entries) {
    CHECK_FALSE(e.path.empty());
    CHECK(e.path.find(".wh.") == std::string::npos);
    CHECK(e.path.front() != '/');
    CHECK(e.path.substr(0, 2) != "./");
  }
  CHECK(l.regular_bytes == 1000 + 5 + 1 + 1);  // whiteouts are typed apart
  CHECK(l.disk_bytes == 4 * 4096 + 3 * 4096);   // 4 files and 3 directories, a block each
  CHECK(l.skipped == 0);
}

TEST_CASE("hbcsa: NormalizePath cleans tar names as containerd's applier does", "[hbcsa]") {
  CHECK(NormalizePath("./usr//bin/") == "usr/bin");
  CHECK(NormalizePath("/etc/passwd") == "etc/passwd");
  CHECK(NormalizePath("../../etc") == "etc");
  CHECK(NormalizePath("a/./b/../c") == "a/c");
  CHECK(NormalizePath("./") == "");
  CHECK(NormalizePath("") == "");
}

TEST_CASE("hbcsa: file lists of plain, gzip and zstd layers", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    INFO("compression " << static_cast<int>(c));
    BuiltLayer layer = PutLayer(dir.path(), SampleLayer(), c);
    auto list = ReadLayerBlob(dir.path(), layer.digest);
    REQUIRE(list.ok());
    CheckSample(*list);
  }
}

TEST_CASE("hbcsa: truncated and corrupt blobs are errors", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  std::vector<TarEntry> big = SampleLayer();
  // Incompressible data, so that a cut lands inside the stream.
  std::string noise;
  uint32_t x = 12345;
  for (int i = 0; i < 300000; ++i) {
    x = x * 1103515245 + 12345;
    noise += static_cast<char>(x >> 24);
  }
  big.push_back(File("data/noise", noise));
  big.push_back(File("data/after", "after"));
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    INFO("compression " << static_cast<int>(c));
    const std::string whole = TarBytes(big, c);
    const std::string digest = PutBlob(dir.path(), whole.substr(0, whole.size() / 2), Sha256Digest(whole));
    auto list = ReadLayerBlob(dir.path(), digest);
    REQUIRE_FALSE(list.ok());
    CHECK(list.status().code() == absl::StatusCode::kDataLoss);
  }
  SECTION("gzip header, garbage after") {
    std::string bytes = TarBytes(big, Compression::kGzip);
    for (size_t i = 20; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    auto list = ReadLayerBlob(dir.path(), PutBlob(dir.path(), bytes));
    REQUIRE_FALSE(list.ok());
    CHECK(list.status().code() == absl::StatusCode::kDataLoss);
  }
  SECTION("not an archive at all") {
    auto list = ReadLayerBlob(dir.path(), PutBlob(dir.path(), std::string(5000, 'q')));
    REQUIRE_FALSE(list.ok());
    CHECK(list.status().code() == absl::StatusCode::kDataLoss);
  }
  SECTION("empty blob") {
    auto list = ReadLayerBlob(dir.path(), PutBlob(dir.path(), ""));
    CHECK_FALSE(list.ok());
  }
}

TEST_CASE("hbcsa: missing blobs, symlinked blobs and bad digests", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  const std::string hex(64, 'a');
  auto missing = ReadLayerBlob(dir.path(), "sha256:" + hex);
  CHECK(absl::IsNotFound(missing.status()));
  BuiltLayer real = PutLayer(dir.path(), SampleLayer());
  REQUIRE(::symlink((dir.path() + "/blobs/sha256/" + real.digest.substr(7)).c_str(),
                    (dir.path() + "/blobs/sha256/" + hex).c_str()) == 0);
  CHECK(absl::IsFailedPrecondition(ReadLayerBlob(dir.path(), "sha256:" + hex).status()));
  CHECK(absl::IsInvalidArgument(ReadLayerBlob(dir.path(), "sha256:../../etc/passwd").status()));
  CHECK(absl::IsInvalidArgument(ReadLayerBlob(dir.path(), "sha256:" + std::string(64, 'A')).status()));
}

TEST_CASE("hbcsa: entry and path limits", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  std::vector<TarEntry> many;
  for (int i = 0; i < 50; ++i) many.push_back(File(absl::StrCat("f", i)));
  BuiltLayer layer = PutLayer(dir.path(), many);
  LayerReadLimits limits;
  limits.max_entries = 10;
  CHECK(ReadLayerBlob(dir.path(), layer.digest, limits).status().code() == absl::StatusCode::kResourceExhausted);
  limits.max_entries = 50;
  CHECK(ReadLayerBlob(dir.path(), layer.digest, limits).ok());

  BuiltLayer long_names = PutLayer(dir.path(), {File(std::string(300, 'p')), File("short"),
                                                Symlink("link", std::string(300, 't'))});
  limits.max_path_length = 100;
  auto list = ReadLayerBlob(dir.path(), long_names.digest, limits);
  REQUIRE(list.ok());
  REQUIRE(list->entries.size() == 1);
  CHECK(list->entries[0].path == "short");
  CHECK(list->skipped == 2);
}

}  // namespace
}  // namespace ndocker::hbcsa
