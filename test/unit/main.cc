#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  // The core logs every operation at info; tests want only problems.
  spdlog::set_level(spdlog::level::warn);
  return Catch::Session().run(argc, argv);
}
