// Bad requests over the wire: each must fail with exactly the gRPC code that
// containerd's overlay snapshotter gives (facts §2.4; containerd maps any
// other code to ErrUnknown) and must leave the root dir and the List result
// exactly as they were.
#include <catch2/catch.hpp>

#include "absl/strings/ascii.h"
#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {
namespace {

// base (committed, holds /hello)
//  +- mid           (committed)
//  +- child-active  (active, label containerd.io/snapshot/x=1)
//  +- view          (view)
class Seeded {
 public:
  Seeded() {
    SnapshotsClient& c = d.client();
    google::protobuf::RepeatedPtrField<PbMount> m;
    REQUIRE_OK(c.Prepare("base-active", "", {}, &m));
    REQUIRE(m.size() == 1);
    WriteFile(m[0].source() + "/hello", "hello\n");
    REQUIRE_OK(c.Commit("base", "base-active"));
    REQUIRE_OK(c.Prepare("mid-active", "base"));
    REQUIRE_OK(c.Commit("mid", "mid-active"));
    REQUIRE_OK(c.Prepare("child-active", "base", {{"containerd.io/snapshot/x", "1"}}));
    REQUIRE_OK(c.View("view", "base"));
  }

 protected:
  DaemonProcess d;
  SnapshotsClient& c() { return d.client(); }
};

pb::Info InfoFor(const std::string& name, const LabelMap& labels = {}) {
  pb::Info info;
  info.set_name(name);
  info.set_kind(pb::COMMITTED);
  // What containerd 1.6 sends: the Go zero time.
  info.mutable_created_at()->set_seconds(-62135596800);
  info.mutable_updated_at()->set_seconds(-62135596800);
  info.mutable_labels()->insert(labels.begin(), labels.end());
  return info;
}

// A label whose key and value together are `total` bytes.
LabelMap LabelOfSize(size_t total) {
  const std::string key = "containerd.io/snapshot/big";
  return {{key, std::string(total - key.size(), 'v')}};
}

TEST_CASE_METHOD(Seeded, "unknown keys are NOT_FOUND and change nothing", "[daemon][bad-input]") {
  pb::Info info;
  google::protobuf::RepeatedPtrField<PbMount> mounts;
  pb::UsageResponse usage;
  EXPECT_REJECTED(d, NOT_FOUND, c().Stat("missing", &info));
  EXPECT_REJECTED(d, NOT_FOUND, c().Mounts("missing", &mounts));
  EXPECT_REJECTED(d, NOT_FOUND, c().Usage("missing", &usage));
  EXPECT_REJECTED(d, NOT_FOUND, c().Remove("missing"));
  EXPECT_REJECTED(d, NOT_FOUND, c().Update(InfoFor("missing", {{"a", "1"}}), {"labels.a"}));
  EXPECT_REJECTED(d, NOT_FOUND, c().Update(InfoFor("missing", {{"a", "1"}}), {}));
  EXPECT_REJECTED(d, NOT_FOUND, c().Commit("new-name", "missing"));
  // overlay looks the key up before it checks the name.
  EXPECT_REJECTED(d, NOT_FOUND, c().Commit("mid", "missing"));
  // A key that was the active side of a commit is gone afterwards.
  EXPECT_REJECTED(d, NOT_FOUND, c().Stat("base-active", &info));
  EXPECT_REJECTED(d, NOT_FOUND, c().Commit("again", "base-active"));
  // Keys are exact: no prefix or case folding.
  EXPECT_REJECTED(d, NOT_FOUND, c().Stat("bas", &info));
  EXPECT_REJECTED(d, NOT_FOUND, c().Stat("BASE", &info));
}

TEST_CASE_METHOD(Seeded, "malformed List filters are INVALID_ARGUMENT", "[daemon][bad-input]") {
  for (const std::string& bad : {std::string("name=="), std::string("kind==active,"),
                                 std::string("labels.\"unterminated")}) {
    INFO("filter: " << bad);
    std::vector<pb::Info> infos;
    EXPECT_REJECTED(d, INVALID_ARGUMENT, c().List({bad}, &infos));
    CHECK(infos.empty());
    // One bad filter spoils the request even when ORed with a good one.
    EXPECT_REJECTED(d, INVALID_ARGUMENT, c().List({"kind==committed", bad}));
  }
  // The well-formed neighbours work (so the rejections above are about syntax).
  std::vector<pb::Info> infos;
  REQUIRE_OK(c().List({"kind==active"}, &infos));
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].name() == "child-active");
  infos.clear();
  REQUIRE_OK(c().List({"labels.\"containerd.io/snapshot/x\"==1"}, &infos));
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].name() == "child-active");
}

TEST_CASE_METHOD(Seeded, "labels over 4096 bytes are INVALID_ARGUMENT", "[daemon][bad-input]") {
  const LabelMap big = LabelOfSize(4097);
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "", big));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "base", big));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().View("new", "base", big));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Commit("new", "child-active", big));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Update(InfoFor("mid", big), {}));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Update(InfoFor("mid", big), {"labels.containerd.io/snapshot/big"}));
}

TEST_CASE("a label of exactly 4096 bytes is accepted", "[daemon][bad-input]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  const LabelMap exact = LabelOfSize(4096);
  REQUIRE(exact.begin()->first.size() + exact.begin()->second.size() == 4096);
  REQUIRE_OK(c.Prepare("k", "", exact));
  pb::Info info;
  REQUIRE_OK(c.Stat("k", &info));
  CHECK(LabelMap(info.labels().begin(), info.labels().end()) == exact);
  REQUIRE_OK(c.Commit("n", "k", exact));
  REQUIRE_OK(c.Stat("n", &info));
  CHECK(LabelMap(info.labels().begin(), info.labels().end()) == exact);
  REQUIRE_OK(c.Update(InfoFor("n", exact), {}, &info));
  CHECK(LabelMap(info.labels().begin(), info.labels().end()) == exact);
}

TEST_CASE_METHOD(Seeded, "Prepare and View: parent and key errors", "[daemon][bad-input]") {
  // Parent that is not committed.
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "child-active"));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "view"));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().View("new", "child-active"));
  // Missing parent.
  EXPECT_REJECTED(d, NOT_FOUND, c().Prepare("new", "missing"));
  EXPECT_REJECTED(d, NOT_FOUND, c().View("new", "missing"));
  // Existing key, whatever its kind.
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Prepare("child-active", "base"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Prepare("child-active", ""));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Prepare("base", ""));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Prepare("view", "mid"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().View("view", "base"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().View("mid", ""));
  // The parent is checked before the key (overlay order).
  EXPECT_REJECTED(d, NOT_FOUND, c().Prepare("child-active", "missing"));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("child-active", "view"));
}

TEST_CASE_METHOD(Seeded, "Commit errors", "[daemon][bad-input]") {
  // Only actives can be committed.
  EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Commit("new", "view"));
  EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Commit("new", "base"));
  // Name taken, by any kind; checked before the key's kind.
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Commit("mid", "child-active"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Commit("view", "child-active"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Commit("child-active", "child-active"));
  EXPECT_REJECTED(d, ALREADY_EXISTS, c().Commit("mid", "view"));
  // containerd 2.2's parallel-unpack rebase (CommitSnapshotRequest.parent).
  EXPECT_REJECTED(d, UNIMPLEMENTED, c().Commit("new", "child-active", {}, "base"));
  EXPECT_REJECTED(d, UNIMPLEMENTED, c().Commit("new", "child-active", {}, "mid"));
}

TEST_CASE_METHOD(Seeded, "Remove of a snapshot with children is FAILED_PRECONDITION",
                 "[daemon][bad-input]") {
  grpc::Status st = EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Remove("base"));
  CHECK_THAT(absl::AsciiStrToLower(st.error_message()), Catch::Contains("remove"));
  // A view alone counts as a child too.
  REQUIRE_OK(c().View("mid-view", "mid"));
  st = EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Remove("mid"));
  CHECK_THAT(absl::AsciiStrToLower(st.error_message()), Catch::Contains("remove"));
}

TEST_CASE_METHOD(Seeded, "Update of fields other than labels is INVALID_ARGUMENT", "[daemon][bad-input]") {
  for (const char* path : {"parent", "name", "kind", "created_at", "updated_at", "label.a"}) {
    INFO("mask path: " << path);
    EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Update(InfoFor("mid", {{"a", "1"}}), {path}));
  }
  // No partial update when a good path comes before the bad one.
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Update(InfoFor("mid", {{"a", "1"}}), {"labels.a", "parent"}));
  EXPECT_REJECTED(d, INVALID_ARGUMENT,
                  c().Update(InfoFor("child-active", {{"a", "1"}}), {"labels", "parent"}));
}

TEST_CASE_METHOD(Seeded, "Mounts of a committed snapshot is FAILED_PRECONDITION", "[daemon][bad-input]") {
  google::protobuf::RepeatedPtrField<PbMount> mounts;
  EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Mounts("base", &mounts));
  EXPECT_REJECTED(d, FAILED_PRECONDITION, c().Mounts("mid", &mounts));
  CHECK(mounts.empty());
  // The others have mounts.
  REQUIRE_OK(c().Mounts("child-active", &mounts));
  CHECK(mounts.size() == 1);
  REQUIRE_OK(c().Mounts("view", &mounts));
  CHECK(mounts.size() == 1);
}

TEST_CASE_METHOD(Seeded, "an unknown tier label is INVALID_ARGUMENT", "[daemon][bad-input]") {
  const LabelMap warm = {{kTierLabelKey, "warm"}};
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "", warm));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("new", "base", warm));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().View("new", "base", warm));
}

TEST_CASE_METHOD(Seeded, "keys longer than 511 bytes are INVALID_ARGUMENT", "[daemon][bad-input]") {
  const std::string long_key(512, 'k');
  const std::string very_long_key(70000, 'k');
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare(long_key, ""));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare(long_key, "base"));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().View(long_key, "base"));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare(very_long_key, ""));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Commit(long_key, "child-active"));
  // Lookups of a key that can never exist find nothing, as in containerd.
  pb::Info info;
  EXPECT_REJECTED(d, NOT_FOUND, c().Stat(long_key, &info));
  EXPECT_REJECTED(d, NOT_FOUND, c().Remove(long_key));
  EXPECT_REJECTED(d, NOT_FOUND, c().Usage(long_key));
  EXPECT_REJECTED(d, NOT_FOUND, c().Mounts(long_key));
  EXPECT_REJECTED(d, NOT_FOUND, c().Prepare("new", long_key));
  // Neither is a key with a NUL byte, nor an empty key.
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare(std::string("nul\0key", 7), ""));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Prepare("", ""));
  EXPECT_REJECTED(d, INVALID_ARGUMENT, c().Commit("", "child-active"));
}

TEST_CASE("keys of exactly 511 bytes and containerd-style keys are accepted", "[daemon][bad-input]") {
  DaemonProcess d;
  SnapshotsClient& c = d.client();
  const std::string key511(511, 'a');
  const std::string name511(511, 'b');
  REQUIRE_OK(c.Prepare(key511, ""));
  REQUIRE_OK(c.Commit(name511, key511));
  // Backend keys as containerd builds them: namespace/seq/key, with ' ' and ':'.
  const std::string extract = "default/1/extract-676802756--a-a sha256:83cf0123";
  const std::string chain = "default/2/sha256:83cf0123";
  REQUIRE_OK(c.Prepare(extract, name511));
  REQUIRE_OK(c.Commit(chain, extract));
  pb::Info info;
  REQUIRE_OK(c.Stat(chain, &info));
  CHECK(info.name() == chain);
  CHECK(info.parent() == name511);
  CHECK(info.kind() == pb::COMMITTED);
}

}  // namespace
}  // namespace ndocker::daemon_test
