// The plan book stays bounded: evicting an image also forgets its unpacks
// that never committed.
#include "lass/plan_book.h"

#include <catch2/catch.hpp>

namespace ndocker::lass {

TEST_CASE("PlanBook forgets the oldest image and its uncommitted unpacks", "[lass]") {
  PlanBook book(/*max_images=*/2);
  auto session = [](const std::string& name) {
    PullSession s;
    s.manifest_digest = "sha256:" + name;
    s.layers.resize(1);
    s.layers[0].digest = "sha256:blob-" + name;
    return s;
  };
  const Placement fast{Tier::kFast, rule::kNoDownloads, "r"};
  book.Decided(session("a"), 0, "ldl", "key-a", fast, absl::FromUnixSeconds(1));
  book.Decided(session("b"), 0, "ldl", "key-b", fast, absl::FromUnixSeconds(2));
  book.Decided(session("c"), 0, "ldl", "key-c", fast, absl::FromUnixSeconds(3));
  CHECK_FALSE(book.Get("sha256:a").has_value());
  CHECK(book.Get("sha256:b").has_value());
  CHECK(book.Get("sha256:c").has_value());
  CommitReport late;
  late.key = "key-a";  // a's unpack was forgotten with a's plan
  CHECK(book.Committed(late).empty());
  late.key = "key-c";
  late.size = 42;
  const auto where = book.Committed(late);
  REQUIRE(where.size() == 1);
  CHECK(where[0].first == "sha256:c");
  CHECK(book.Get("sha256:c")->layers[0].unpacked_size == 42);
}

}  // namespace ndocker::lass
