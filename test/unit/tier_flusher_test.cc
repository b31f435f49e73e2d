// The background write-back of a tier: requests are served, coalesced, and
// the destructor does not hang.
#include "snapshotter/tier_flusher.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "test/unit/temp_dir.h"

namespace ndocker {

TEST_CASE("TierFlusher flushes what was asked and stops cleanly", "[flusher]") {
  testing::TempDir dir;
  {
    TierFlusher flusher(dir.path());
    CHECK(flusher.BytesPerSecond() == 0);
    for (int i = 0; i < 5; ++i) {
      std::ofstream(dir.path() + "/f" + std::to_string(i)) << std::string(1 << 16, 'x');
      flusher.Request(1 << 16);
    }
    flusher.WaitIdle();  // returns only after a syncfs that covered all five
    CHECK(flusher.BytesPerSecond() >= 0);
    flusher.Request(1);
  }  // destroyed with a request pending: must not hang
  TierFlusher missing(dir.path() + "/does-not-exist");
  missing.Request(1);
  missing.WaitIdle();  // a failed flush is logged and counted as done
}

}  // namespace ndocker
