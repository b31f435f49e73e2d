// Small files for tests: write one (parents created), read one back.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace ndocker::testing {

inline void WriteText(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << data;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace ndocker::testing
