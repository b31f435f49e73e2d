// Test helpers for hbcsa: real layer blobs (tar, tar.gz, tar.zst written with
// libarchive), image configs and manifests, in a content store laid out as
// <root>/blobs/sha256/<hex>.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "lass/digest.h"
#include "nlohmann/json.hpp"

namespace ndocker::hbcsa::testing {

struct TarEntry {
  std::string path;
  char type = 'f';        // f file, d dir, l symlink, h hardlink
  std::string data;       // file content
  std::string link;       // symlink or hardlink target
  unsigned mode = 0644;
};

inline TarEntry File(std::string path, std::string data = "x", unsigned mode = 0644) {
  return {std::move(path), 'f', std::move(data), "", mode};
}
inline TarEntry Exe(std::string path, std::string data = "\x7f" "ELF") { return File(std::move(path), std::move(data), 0755); }
inline TarEntry Dir(std::string path) { return {std::move(path), 'd', "", "", 0755}; }
inline TarEntry Symlink(std::string path, std::string target) { return {std::move(path), 'l', "", std::move(target), 0777}; }
inline TarEntry Hardlink(std::string path, std::string target) { return {std::move(path), 'h', "", std::move(target), 0755}; }
inline TarEntry Whiteout(const std::string& dir, const std::string& name) {
  return File(dir.empty() ? ".wh." + name : dir + "/.wh." + name, "");
}
inline TarEntry Opaque(const std::string& dir) { return File(dir + "/.wh..wh..opq", ""); }

enum class Compression { kNone, kGzip, kZstd };

inline void Check(int r, archive* a, const char* what) {
  if (r != ARCHIVE_OK) {
    const char* msg = archive_error_string(a);
    throw std::runtime_error(std::string(what) + ": " + (msg ? msg : "?"));
  }
}

// Writes `entries` as a tar stream (pax) compressed with `c` into `out`.
inline std::string TarBytes(const std::vector<TarEntry>& entries, Compression c) {
  archive* a = archive_write_new();
  switch (c) {
    case Compression::kNone: Check(archive_write_add_filter_none(a), a, "filter none"); break;
    case Compression::kGzip: Check(archive_write_add_filter_gzip(a), a, "filter gzip"); break;
    case Compression::kZstd: Check(archive_write_add_filter_zstd(a), a, "filter zstd"); break;
  }
  Check(archive_write_set_format_pax_restricted(a), a, "format");
  archive_write_set_bytes_in_last_block(a, 1);
  std::vector<char> buf(8 << 20);
  size_t used = 0;
  Check(archive_write_open_memory(a, buf.data(), buf.size(), &used), a, "open");
  for (const TarEntry& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (t.type) {
      case 'f':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
        break;
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.link.c_str());
        archive_entry_set_size(e, 0);
        break;
    }
    Check(archive_write_header(a, e), a, "header");
    if (t.type == 'f' && !t.data.empty()) {
      if (archive_write_data(a, t.data.data(), t.data.size()) < 0) Check(ARCHIVE_FATAL, a, "data");
    }
    archive_entry_free(e);
  }
  Check(archive_write_close(a), a, "close");
  archive_write_free(a);
  return std::string(buf.data(), used);
}

inline std::string Sha256Digest(const std::string& bytes) {
  auto hex = lass::Sha256Hex(bytes);
  if (!hex.ok()) throw std::runtime_error("sha256");
  return "sha256:" + *hex;
}

// Stores `bytes` as a blob; `name_digest` overrides the name (for blobs whose
// content is broken on purpose). Returns the digest it is stored under.
inline std::string PutBlob(const std::string& root, const std::string& bytes, std::string name_digest = "") {
  if (name_digest.empty()) name_digest = Sha256Digest(bytes);
  std::filesystem::create_directories(root + "/blobs/sha256");
  std::ofstream(root + "/blobs/sha256/" + name_digest.substr(7), std::ios::binary) << bytes;
  return name_digest;
}

struct BuiltLayer {
  std::string digest;   // compressed blob
  std::string diff_id;  // uncompressed tar
  std::string media_type;
  int64_t size = 0;
};

inline BuiltLayer PutLayer(const std::string& root, const std::vector<TarEntry>& entries,
                           Compression c = Compression::kGzip) {
  BuiltLayer l;
  l.diff_id = Sha256Digest(TarBytes(entries, Compression::kNone));
  const std::string blob = TarBytes(entries, c);
  l.digest = PutBlob(root, blob);
  l.size = static_cast<int64_t>(blob.size());
  l.media_type = c == Compression::kNone ? "application/vnd.oci.image.layer.v1.tar"
                 : c == Compression::kGzip ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                           : "application/vnd.oci.image.layer.v1.tar+zstd";
  return l;
}

// An image config: `history` lists created_by per layer (no empty layers).
inline nlohmann::json ConfigJson(const std::vector<BuiltLayer>& layers, const std::vector<std::string>& history,
                                 const nlohmann::json& config) {
  nlohmann::json doc;
  doc["architecture"] = "amd64";
  doc["os"] = "linux";
  doc["config"] = config;
  doc["rootfs"]["type"] = "layers";
  doc["rootfs"]["diff_ids"] = nlohmann::json::array();
  for (const BuiltLayer& l : layers) doc["rootfs"]["diff_ids"].push_back(l.diff_id);
  doc["history"] = nlohmann::json::array();
  for (const std::string& h : history) doc["history"].push_back({{"created_by", h}});
  return doc;
}

// Stores config and manifest; returns the manifest digest.
inline std::string PutImage(const std::string& root, const std::vector<BuiltLayer>& layers,
                            const nlohmann::json& config_doc, std::string* config_digest = nullptr) {
  const std::string config = config_doc.dump();
  const std::string cd = PutBlob(root, config);
  if (config_digest) *config_digest = cd;
  nlohmann::json m;
  m["schemaVersion"] = 2;
  m["mediaType"] = "application/vnd.oci.image.manifest.v1+json";
  m["config"] = {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                 {"digest", cd},
                 {"size", config.size()}};
  m["layers"] = nlohmann::json::array();
  for (const BuiltLayer& l : layers) {
    m["layers"].push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
  }
  return PutBlob(root, m.dump());
}

}  // namespace ndocker::hbcsa::testing
