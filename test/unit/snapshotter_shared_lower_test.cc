// The core's side of shared lowers (HBCSA hot layers): which snapshots ask,
// what their mounts become, what is recorded and reported. A fake provider:
// no mounts.
#include <algorithm>
#include <catch2/catch.hpp>
#include <tuple>
#include <map>
#include <string>
#include <vector>

#include "snapshotter/snapshotter.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

struct FakeProvider : SharedLowerProvider {
  std::map<uint64_t, SharedLower> by_parent;  // what ForParent answers
  bool path_fails = false;
  std::vector<uint64_t> asked;                // ForParent's parent ids
  std::map<uint64_t, int> pending;            // handed out, not settled
  std::vector<std::tuple<uint64_t, Kind, uint64_t>> removed;

  std::optional<SharedLower> ForParent(uint64_t parent_id) override {
    asked.push_back(parent_id);
    auto it = by_parent.find(parent_id);
    if (it == by_parent.end()) return std::nullopt;
    ++pending[it->second.id];
    return it->second;
  }
  void Settled(uint64_t id) override { --pending[id]; }
  absl::StatusOr<std::string> Path(uint64_t id) override {
    if (path_fails) return absl::UnavailableError("not mounted");
    return "/stacks/" + std::to_string(id);
  }
  void Removed(uint64_t snapshot_id, Kind kind, uint64_t shared_lower) override {
    removed.emplace_back(snapshot_id, kind, shared_lower);
  }
};

std::string Option(const Mount& m, const std::string& name) {
  for (const std::string& o : m.options) {
    if (o.rfind(name + "=", 0) == 0) return o.substr(name.size() + 1);
  }
  return "";
}

TEST_CASE("shared lower: a container rootfs or view on the image top mounts the stack, unpacks do not",
          "[snapshotter]") {
  testing::TempDir dir;
  auto provider = std::make_shared<FakeProvider>();
  SnapshotterOptions o;
  o.root = dir / "root";
  o.shared_lowers = provider;
  auto opened = Snapshotter::Open(o);
  REQUIRE(opened.ok());
  Snapshotter& s = **opened;
  REQUIRE(s.Prepare("ns/1/extract-1 sha256:l1", "", {}).ok());
  REQUIRE(s.Commit("ns/2/sha256:l1", "ns/1/extract-1 sha256:l1", {}).ok());
  REQUIRE(s.Prepare("ns/3/extract-2 sha256:l2", "ns/2/sha256:l1", {}).ok());
  REQUIRE(s.Commit("ns/4/sha256:l2", "ns/3/extract-2 sha256:l2", {}).ok());
  CHECK(provider->asked.empty());  // unpacks never ask
  auto top = s.Stat("ns/4/sha256:l2");
  REQUIRE(top.ok());
  absl::StatusOr<std::vector<SnapshotEntry>> entries = s.Entries();
  REQUIRE(entries.ok());
  uint64_t top_id = 0;
  for (const SnapshotEntry& e : *entries) {
    if (e.key == "ns/4/sha256:l2") top_id = e.record.id;
  }
  REQUIRE(top_id != 0);
  provider->by_parent[top_id] = SharedLower{7, "/stacks/7"};

  auto m = s.Prepare("ns/5/c1", "ns/4/sha256:l2", {});
  REQUIRE(m.ok());
  REQUIRE(m->size() == 1);
  CHECK((*m)[0].type == "overlay");
  CHECK(Option((*m)[0], "lowerdir") == "/stacks/7");
  CHECK_FALSE(Option((*m)[0], "upperdir").empty());
  for (const std::string& opt : (*m)[0].options) {
    CHECK(opt.find("metacopy") == std::string::npos);  // the container's own overlay stays plain
  }
  CHECK(provider->pending[7] == 0);  // settled once the record committed
  // Mounts gives the same, through Path.
  auto again = s.Mounts("ns/5/c1");
  REQUIRE(again.ok());
  CHECK(*again == *m);
  // The stack unavailable: the chain (same merged view).
  provider->path_fails = true;
  auto chain = s.Mounts("ns/5/c1");
  REQUIRE(chain.ok());
  CHECK(Option((*chain)[0], "lowerdir").find("/l/") != std::string::npos);
  CHECK(Option((*chain)[0], "lowerdir").find(':') != std::string::npos);  // both layers
  CHECK(Option((*chain)[0], "upperdir") == Option((*m)[0], "upperdir"));
  provider->path_fails = false;

  // A view with one parent: a read-only bind of the stack.
  auto v = s.View("ns/6/v1", "ns/4/sha256:l2", {});
  REQUIRE(v.ok());
  REQUIRE(v->size() == 1);
  CHECK((*v)[0].type == "bind");
  CHECK((*v)[0].source == "/stacks/7");
  CHECK((*v)[0].options == std::vector<std::string>{"ro", "rbind"});

  // A parent that is not the top: nothing handed out, the chain.
  auto below = s.Prepare("ns/7/c2", "ns/2/sha256:l1", {});
  REQUIRE(below.ok());
  CHECK((*below)[0].type == "overlay");
  CHECK(Option((*below)[0], "lowerdir").find("/stacks/") == std::string::npos);
  // A failed Prepare settles what it was handed.
  CHECK(absl::IsAlreadyExists(s.Prepare("ns/5/c1", "ns/4/sha256:l2", {}).status()));
  CHECK(provider->pending[7] == 0);

  // Committed, the container's upper is an ordinary layer over its chain.
  REQUIRE(s.Commit("ns/8/committed", "ns/5/c1", {}).ok());
  auto child = s.Prepare("ns/9/c3", "ns/8/committed", {});
  REQUIRE(child.ok());
  const std::string lower = Option((*child)[0], "lowerdir");
  CHECK(std::count(lower.begin(), lower.end(), ':') == 2);  // committed + l2 + l1
  CHECK(lower.find("/stacks/") == std::string::npos);
  // Removes report the removed snapshot's shared lower.
  REQUIRE(s.Remove("ns/6/v1").ok());
  REQUIRE(!provider->removed.empty());
  CHECK(std::get<1>(provider->removed.back()) == Kind::kView);
  CHECK(std::get<2>(provider->removed.back()) == 7);
}

TEST_CASE("shared lower: recorded across a restart", "[snapshotter]") {
  testing::TempDir dir;
  auto provider = std::make_shared<FakeProvider>();
  SnapshotterOptions o;
  o.root = dir / "root";
  o.shared_lowers = provider;
  uint64_t top_id = 0;
  {
    auto opened = Snapshotter::Open(o);
    REQUIRE(opened.ok());
    REQUIRE((*opened)->Prepare("ns/1/extract-1 sha256:l1", "", {}).ok());
    REQUIRE((*opened)->Commit("ns/2/sha256:l1", "ns/1/extract-1 sha256:l1", {}).ok());
    absl::StatusOr<std::vector<SnapshotEntry>> entries = (*opened)->Entries();
    REQUIRE(entries.ok());
    for (const SnapshotEntry& e : *entries) top_id = e.record.id;
    provider->by_parent[top_id] = SharedLower{3, "/stacks/3"};
    REQUIRE((*opened)->Prepare("ns/3/c1", "ns/2/sha256:l1", {}).ok());
  }
  provider->by_parent.clear();  // no longer handed out: the record still says 3
  auto reopened = Snapshotter::Open(o);
  REQUIRE(reopened.ok());
  auto m = (*reopened)->Mounts("ns/3/c1");
  REQUIRE(m.ok());
  CHECK(Option((*m)[0], "lowerdir") == "/stacks/3");
  bool found = false;
  absl::StatusOr<std::vector<SnapshotEntry>> entries = (*reopened)->Entries();
  REQUIRE(entries.ok());
  for (const SnapshotEntry& e : *entries) {
    if (e.key == "ns/3/c1") found = e.record.shared_lower == 3;
  }
  CHECK(found);
}

}  // namespace
}  // namespace ndocker
