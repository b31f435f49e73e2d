// Hot layer builds after traces: one at a time, an image queued twice built
// once, a failure logged and the next one built, Stop drops what waits.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "hbcsa/promoter/auto_promoter.h"

namespace ndocker::hbcsa {
namespace {

// A promote function that blocks until released, recording what it built
// and how many builds ever ran at once.
struct FakeBuilds {
  absl::Mutex mu;
  std::vector<std::string> built ABSL_GUARDED_BY(mu);
  int running ABSL_GUARDED_BY(mu) = 0;
  int max_running ABSL_GUARDED_BY(mu) = 0;
  bool open ABSL_GUARDED_BY(mu) = false;
  absl::Notification first_started;

  AutoPromoter::PromoteFn Fn() {
    return [this](const std::string& image) -> absl::Status {
      absl::MutexLock lock(&mu);
      ++running;
      max_running = std::max(max_running, running);
      if (!first_started.HasBeenNotified()) first_started.Notify();
      mu.Await(absl::Condition(&open));
      --running;
      built.push_back(image);
      if (image == "broken") return absl::InternalError("build failed");
      return absl::OkStatus();
    };
  }
  void Open() {
    absl::MutexLock lock(&mu);
    open = true;
  }
  std::vector<std::string> Built() {
    absl::MutexLock lock(&mu);
    return built;
  }
};

TEST_CASE("AutoPromoter: one build at a time, repeats while queued built once, failures do not stop it",
          "[hbcsa][hot]") {
  FakeBuilds builds;
  AutoPromoter auto_promoter(builds.Fn(), /*idle_io=*/false);
  auto_promoter.Request("a");
  builds.first_started.WaitForNotification();  // "a" is being built
  auto_promoter.Request("broken");
  auto_promoter.Request("b");
  auto_promoter.Request("b");       // already queued
  auto_promoter.Request("broken");  // already queued
  auto_promoter.Request("a");       // being built, not queued: built again (a newer profile)
  builds.Open();
  auto_promoter.WaitIdle();
  CHECK(builds.Built() == std::vector<std::string>{"a", "broken", "b", "a"});
  absl::MutexLock lock(&builds.mu);
  CHECK(builds.max_running == 1);
}

TEST_CASE("AutoPromoter: Stop lets the build under way finish and drops the queue", "[hbcsa][hot]") {
  FakeBuilds builds;
  AutoPromoter auto_promoter(builds.Fn(), /*idle_io=*/false);
  auto_promoter.Request("a");
  builds.first_started.WaitForNotification();
  auto_promoter.Request("b");
  absl::Notification stopped;
  std::thread stopper([&] {
    auto_promoter.Stop();
    stopped.Notify();
  });
  // Only Stop can empty the queue while "a" blocks the worker.
  while (auto_promoter.queued() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK_FALSE(stopped.HasBeenNotified());  // it waits for the build under way
  builds.Open();
  stopper.join();
  CHECK(stopped.HasBeenNotified());
  CHECK(builds.Built() == std::vector<std::string>{"a"});
  auto_promoter.Request("c");  // after Stop: ignored
  auto_promoter.Stop();        // idempotent
  CHECK(builds.Built() == std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace ndocker::hbcsa
