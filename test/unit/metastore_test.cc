// The LMDB metadata store: records, id index, parent/child edges, id
// allocation and transactions.
#include "snapshotter/metastore.h"

#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;

std::unique_ptr<MetaStore> OpenStore(const std::string& dir) {
  auto s = MetaStore::Open(dir);
  REQUIRE(s.ok());
  return *std::move(s);
}

SnapshotRecord Rec(uint64_t id, Kind kind = Kind::kCommitted, std::string parent = "") {
  SnapshotRecord r;
  r.id = id;
  r.kind = kind;
  r.parent = std::move(parent);
  r.created = absl::FromUnixSeconds(1700000000);
  r.updated = absl::FromUnixSeconds(1700000001);
  return r;
}

void CheckSame(const SnapshotRecord& a, const SnapshotRecord& b) {
  CHECK(a.id == b.id);
  CHECK(a.kind == b.kind);
  CHECK(a.parent == b.parent);
  CHECK(a.created == b.created);
  CHECK(a.updated == b.updated);
  CHECK(a.labels == b.labels);
  CHECK(a.tier == b.tier);
  CHECK(a.size == b.size);
  CHECK(a.inodes == b.inodes);
}

void Put(MetaStore& s, const std::string& key, const SnapshotRecord& r) {
  absl::Status st = s.Update([&](MetaTxn& t) { return t.Put(key, r); });
  INFO(st.ToString());
  REQUIRE(st.ok());
}

std::optional<SnapshotRecord> Get(const MetaStore& s, const std::string& key) {
  std::optional<SnapshotRecord> out;
  REQUIRE(s.View([&](const MetaTxn& t) -> absl::Status {
               auto r = t.Get(key);
               if (!r.ok()) return r.status();
               out = *r;
               return absl::OkStatus();
             }).ok());
  return out;
}

std::optional<std::string> KeyOf(const MetaStore& s, uint64_t id) {
  std::optional<std::string> out;
  REQUIRE(s.View([&](const MetaTxn& t) -> absl::Status {
               auto r = t.KeyOfId(id);
               if (!r.ok()) return r.status();
               out = *r;
               return absl::OkStatus();
             }).ok());
  return out;
}

bool HasChildren(const MetaStore& s, uint64_t id) {
  bool out = false;
  REQUIRE(s.View([&](const MetaTxn& t) -> absl::Status {
               auto r = t.HasChildren(id);
               if (!r.ok()) return r.status();
               out = *r;
               return absl::OkStatus();
             }).ok());
  return out;
}

// Takes the stored next id and raises it past itself, as the core's id
// allocator does when it persists the ids it handed out.
absl::StatusOr<uint64_t> TakeId(MetaTxn& t) {
  auto r = t.StoredNextId();
  if (!r.ok()) return r.status();
  if (absl::Status st = t.RaiseNextId(*r + 1); !st.ok()) return st;
  return *r;
}

uint64_t NextId(MetaStore& s) {
  uint64_t id = 0;
  REQUIRE(s.Update([&](MetaTxn& t) -> absl::Status {
               auto r = TakeId(t);
               if (!r.ok()) return r.status();
               id = *r;
               return absl::OkStatus();
             }).ok());
  return id;
}

std::vector<std::string> Keys(const MetaStore& s) {
  std::vector<std::string> keys;
  REQUIRE(s.View([&](const MetaTxn& t) {
               return t.ForEach([&](absl::string_view k, const SnapshotRecord&) {
                 keys.emplace_back(k);
                 return true;
               });
             }).ok());
  return keys;
}

const absl::Time kGoZero = absl::FromUnixSeconds(-62135596800);

}  // namespace

TEST_CASE("every record field survives Put and Get", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  // The Go zero time really is 0001-01-01T00:00:00Z.
  REQUIRE(kGoZero == absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone()));

  Put(*s, "base", Rec(1));

  SnapshotRecord r;
  r.id = 0x0123456789abcdefull;
  r.kind = Kind::kActive;
  r.parent = "base";
  r.created = absl::FromUnixNanos(1700000000123456789);
  r.updated = absl::FromUnixNanos(1700000009000000001);
  r.labels = {{"containerd.io/snapshot.ref", "sha256:abc"},
              {"containerd.io/snapshot/ndocker.tier", "slow"},
              {"empty", ""},
              {"unicode ключ", "значение ✓"},
              {"big", std::string(4000, 'v')}};
  r.tier = Tier::kFast;
  r.size = std::numeric_limits<int64_t>::max();
  r.inodes = 123456789012;
  Put(*s, "default/7/some key:with/odd chars", r);
  auto got = Get(*s, "default/7/some key:with/odd chars");
  REQUIRE(got.has_value());
  CheckSame(*got, r);
  CHECK(absl::ToUnixNanos(got->created) == 1700000000123456789);
  CHECK(absl::ToUnixNanos(got->updated) == 1700000009000000001);

  SECTION("each kind and tier") {
    uint64_t id = 100;
    for (Kind k : {Kind::kUnknown, Kind::kView, Kind::kActive, Kind::kCommitted}) {
      for (Tier t : {Tier::kFast, Tier::kSlow}) {
        SnapshotRecord x = Rec(++id, k);
        x.tier = t;
        x.size = -1;
        x.inodes = 0;
        const std::string key = absl::StrCat("k", id);
        Put(*s, key, x);
        auto y = Get(*s, key);
        REQUIRE(y.has_value());
        CheckSame(*y, x);
      }
    }
  }

  SECTION("the Go zero time and times before 1970") {
    const absl::Time times[] = {
        kGoZero,
        kGoZero + absl::Nanoseconds(1),
        absl::FromUnixNanos(-1),  // 1969-12-31T23:59:59.999999999Z
        absl::FromUnixNanos(-999999999),
        absl::FromUnixNanos(-1000000000),
        absl::FromUnixNanos(-1000000001),
        absl::FromCivil(absl::CivilSecond(1900, 2, 28, 13, 14, 15), absl::UTCTimeZone()) +
            absl::Nanoseconds(987654321),
        absl::UnixEpoch(),
        absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
            absl::Nanoseconds(999999999),
    };
    int n = 0;
    for (absl::Time created : times) {
      for (absl::Time updated : {kGoZero, created}) {
        SnapshotRecord x = Rec(static_cast<uint64_t>(1000 + n));
        x.created = created;
        x.updated = updated;
        const std::string key = absl::StrCat("t", n++);
        Put(*s, key, x);
        auto y = Get(*s, key);
        REQUIRE(y.has_value());
        INFO("created " << absl::FormatTime(created) << " updated " << absl::FormatTime(updated));
        CHECK(y->created == created);
        CHECK(y->updated == updated);
      }
    }
  }

  SECTION("Put replaces a record") {
    SnapshotRecord r2 = r;
    r2.labels = {{"only", "one"}};
    r2.kind = Kind::kCommitted;
    r2.size = 42;
    Put(*s, "default/7/some key:with/odd chars", r2);
    auto y = Get(*s, "default/7/some key:with/odd chars");
    REQUIRE(y.has_value());
    CheckSame(*y, r2);
  }
}

TEST_CASE("Get and Delete of missing keys", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  CHECK_FALSE(Get(*s, "missing").has_value());
  CHECK_FALSE(Get(*s, "").has_value());
  absl::Status st = s->Update([](MetaTxn& t) { return t.Delete("missing"); });
  CHECK(st.code() == absl::StatusCode::kNotFound);

  Put(*s, "a", Rec(1));
  REQUIRE(s->Update([](MetaTxn& t) { return t.Delete("a"); }).ok());
  CHECK_FALSE(Get(*s, "a").has_value());
  CHECK(s->Update([](MetaTxn& t) { return t.Delete("a"); }).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("the ids index follows Put and Delete", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  CHECK_FALSE(KeyOf(*s, 1).has_value());
  Put(*s, "default/1/sha256:aaa", Rec(1));
  Put(*s, "default/2/b c", Rec(2, Kind::kActive, "default/1/sha256:aaa"));
  Put(*s, "x", Rec(std::numeric_limits<uint64_t>::max()));
  CHECK(KeyOf(*s, 1) == std::optional<std::string>("default/1/sha256:aaa"));
  CHECK(KeyOf(*s, 2) == std::optional<std::string>("default/2/b c"));
  CHECK(KeyOf(*s, std::numeric_limits<uint64_t>::max()) == std::optional<std::string>("x"));
  CHECK_FALSE(KeyOf(*s, 3).has_value());
  CHECK_FALSE(KeyOf(*s, 0).has_value());

  REQUIRE(s->Update([](MetaTxn& t) { return t.Delete("default/2/b c"); }).ok());
  CHECK_FALSE(KeyOf(*s, 2).has_value());
  CHECK(KeyOf(*s, 1) == std::optional<std::string>("default/1/sha256:aaa"));
}

TEST_CASE("children edges follow Put and Delete", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  Put(*s, "p1", Rec(1));
  Put(*s, "p2", Rec(2));
  Put(*s, "c3", Rec(3, Kind::kCommitted, "p2"));
  // Only p2 has a child; p1's edge range lies just before p2's.
  CHECK_FALSE(HasChildren(*s, 1));
  CHECK(HasChildren(*s, 2));
  CHECK_FALSE(HasChildren(*s, 3));
  CHECK_FALSE(HasChildren(*s, 4));
  CHECK_FALSE(HasChildren(*s, 0));

  Put(*s, "c4", Rec(4, Kind::kActive, "p2"));
  Put(*s, "g5", Rec(5, Kind::kView, "c3"));
  CHECK(HasChildren(*s, 2));
  CHECK(HasChildren(*s, 3));

  REQUIRE(s->Update([](MetaTxn& t) { return t.Delete("c4"); }).ok());
  CHECK(HasChildren(*s, 2));  // c3 remains
  REQUIRE(s->Update([](MetaTxn& t) { return t.Delete("g5"); }).ok());
  CHECK_FALSE(HasChildren(*s, 3));
  REQUIRE(s->Update([](MetaTxn& t) { return t.Delete("c3"); }).ok());
  CHECK_FALSE(HasChildren(*s, 2));

  SECTION("a commit-style rename keeps the edge (edges use ids)") {
    Put(*s, "active", Rec(6, Kind::kActive, "p1"));
    CHECK(HasChildren(*s, 1));
    REQUIRE(s->Update([](MetaTxn& t) -> absl::Status {
                 auto cur = t.Get("active");
                 if (!cur.ok()) return cur.status();
                 SnapshotRecord r = **cur;
                 if (absl::Status st = t.Delete("active"); !st.ok()) return st;
                 r.kind = Kind::kCommitted;
                 return t.Put("committed", r);
               }).ok());
    CHECK(HasChildren(*s, 1));
    CHECK(KeyOf(*s, 6) == std::optional<std::string>("committed"));
    CHECK_FALSE(Get(*s, "active").has_value());
  }

  SECTION("the largest id works as a parent") {
    const uint64_t big = std::numeric_limits<uint64_t>::max();
    Put(*s, "big", Rec(big));
    CHECK_FALSE(HasChildren(*s, big));
    Put(*s, "big-child", Rec(7, Kind::kActive, "big"));
    CHECK(HasChildren(*s, big));
    CHECK_FALSE(HasChildren(*s, big - 1));
  }
}

TEST_CASE("Put with a missing parent is NotFound and writes nothing", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  // Even when the caller ignores the error and commits the transaction.
  absl::Status put;
  REQUIRE(s->Update([&](MetaTxn& t) {
               put = t.Put("orphan", Rec(9, Kind::kActive, "no-such-parent"));
               return absl::OkStatus();
             }).ok());
  CHECK(put.code() == absl::StatusCode::kNotFound);
  CHECK_FALSE(Get(*s, "orphan").has_value());
  CHECK_FALSE(KeyOf(*s, 9).has_value());
}

TEST_CASE("the stored next id only grows and survives reopening", "[metastore]") {
  TempDir dir;
  std::vector<uint64_t> ids;
  {
    auto s = OpenStore(dir.path());
    for (int i = 0; i < 5; ++i) ids.push_back(NextId(*s));
    // Several in one transaction.
    REQUIRE(s->Update([&](MetaTxn& t) -> absl::Status {
                 for (int i = 0; i < 3; ++i) {
                   auto id = TakeId(t);
                   if (!id.ok()) return id.status();
                   ids.push_back(*id);
                 }
                 return absl::OkStatus();
               }).ok());
  }
  CHECK(ids == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
  {
    auto s = OpenStore(dir.path());
    CHECK(NextId(*s) == 9);
    CHECK(NextId(*s) == 10);
  }
  auto s = OpenStore(dir.path());
  CHECK(NextId(*s) == 11);
  // Raising to a smaller value changes nothing.
  REQUIRE(s->Update([](MetaTxn& t) { return t.RaiseNextId(3); }).ok());
  CHECK(NextId(*s) == 12);
}

TEST_CASE("store metadata values round-trip", "[metastore]") {
  TempDir dir;
  {
    auto s = OpenStore(dir.path());
    REQUIRE(s->View([](const MetaTxn& t) -> absl::Status {
                 auto v = t.GetMeta("instance");
                 if (!v.ok()) return v.status();
                 CHECK_FALSE(v->has_value());
                 return absl::OkStatus();
               }).ok());
    REQUIRE(s->Update([](MetaTxn& t) { return t.PutMeta("instance", "abc"); }).ok());
  }
  auto s = OpenStore(dir.path());
  REQUIRE(s->View([](const MetaTxn& t) -> absl::Status {
               auto v = t.GetMeta("instance");
               if (!v.ok()) return v.status();
               CHECK(*v == std::optional<std::string>("abc"));
               // Not visible as a next id or a snapshot.
               auto next = t.StoredNextId();
               if (!next.ok()) return next.status();
               CHECK(*next == 1);
               return absl::OkStatus();
             }).ok());
  CHECK(Keys(*s).empty());
}

TEST_CASE("generation and retired copies round-trip", "[metastore]") {
  TempDir dir;
  SnapshotRecord r = Rec(7, Kind::kCommitted);
  r.generation = 3;
  r.retired = {RetiredCopy{Tier::kFast, 0, 12}, RetiredCopy{Tier::kSlow, 2, 40}};
  {
    auto s = OpenStore(dir.path());
    Put(*s, "layer", r);
  }
  auto s = OpenStore(dir.path());
  auto got = Get(*s, "layer");
  REQUIRE(got.has_value());
  CHECK(got->generation == 3);
  CHECK(got->retired == r.retired);
}

TEST_CASE("records survive reopening", "[metastore]") {
  TempDir dir;
  SnapshotRecord r = Rec(1, Kind::kCommitted);
  r.labels = {{"a", "b"}};
  r.tier = Tier::kFast;
  r.size = 4096;
  r.inodes = 3;
  r.created = absl::FromUnixNanos(-5);
  r.updated = kGoZero;
  {
    auto s = OpenStore(dir.path());
    Put(*s, "layer", r);
    Put(*s, "child", Rec(2, Kind::kActive, "layer"));
  }
  auto s = OpenStore(dir.path());
  auto got = Get(*s, "layer");
  REQUIRE(got.has_value());
  CheckSame(*got, r);
  CHECK(KeyOf(*s, 2) == std::optional<std::string>("child"));
  CHECK(HasChildren(*s, 1));
}

TEST_CASE("a failing Update rolls back everything it wrote", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  Put(*s, "parent", Rec(1));
  Put(*s, "doomed", Rec(2, Kind::kActive, "parent"));
  CHECK(NextId(*s) == 1);

  absl::Status st = s->Update([](MetaTxn& t) -> absl::Status {
    auto id = TakeId(t);
    if (!id.ok()) return id.status();
    if (absl::Status p = t.Put("new", Rec(*id, Kind::kActive, "parent")); !p.ok()) return p;
    if (absl::Status p = t.Put("another", Rec(50)); !p.ok()) return p;
    if (absl::Status d = t.Delete("doomed"); !d.ok()) return d;
    SnapshotRecord changed = Rec(1);
    changed.labels = {{"changed", "yes"}};
    if (absl::Status p = t.Put("parent", changed); !p.ok()) return p;
    return absl::AbortedError("callback failed on purpose");
  });
  CHECK(st.code() == absl::StatusCode::kAborted);
  CHECK(st.message() == "callback failed on purpose");

  CHECK_FALSE(Get(*s, "new").has_value());
  CHECK_FALSE(Get(*s, "another").has_value());
  CHECK(KeyOf(*s, 2) == std::optional<std::string>("doomed"));  // doomed's id is back
  CHECK_FALSE(KeyOf(*s, 50).has_value());
  auto doomed = Get(*s, "doomed");
  REQUIRE(doomed.has_value());
  CHECK(doomed->id == 2);
  auto parent = Get(*s, "parent");
  REQUIRE(parent.has_value());
  CHECK(parent->labels.empty());
  CHECK(HasChildren(*s, 1));  // the edge to doomed is back
  CHECK(Keys(*s) == std::vector<std::string>{"doomed", "parent"});
  // The stored next id rolls back with the transaction; that is why the core
  // hands out ids from memory (IdAllocator) and never from the store alone.
  CHECK(NextId(*s) == 2);
}

TEST_CASE("View sees committed data only", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  Put(*s, "old", Rec(1));

  // A reader started before a write keeps its snapshot of the data; a reader
  // during the write does not see uncommitted changes.
  bool saw_new_inside = true, saw_old_inside = false;
  REQUIRE(s->Update([&](MetaTxn& t) -> absl::Status {
               if (absl::Status p = t.Put("new", Rec(2)); !p.ok()) return p;
               if (absl::Status d = t.Delete("old"); !d.ok()) return d;
               // The writer sees its own changes.
               auto mine = t.Get("new");
               if (!mine.ok() || !mine->has_value()) {
                 return absl::InternalError("writer lost its put");
               }
               return s->View([&](const MetaTxn& r) -> absl::Status {
                 auto n = r.Get("new");
                 if (!n.ok()) return n.status();
                 saw_new_inside = n->has_value();
                 auto o = r.Get("old");
                 if (!o.ok()) return o.status();
                 saw_old_inside = o->has_value();
                 return absl::OkStatus();
               });
             }).ok());
  CHECK_FALSE(saw_new_inside);
  CHECK(saw_old_inside);
  // After the commit.
  CHECK(Get(*s, "new").has_value());
  CHECK_FALSE(Get(*s, "old").has_value());

  // A View's callback status is returned as is.
  absl::Status st = s->View([](const MetaTxn&) { return absl::NotFoundError("from callback"); });
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK(st.message() == "from callback");
}

TEST_CASE("ForEach visits keys in byte order and stops early", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());
  const std::vector<std::string> inserted = {"default/2/b", "default/10/a", "Z", "a b",
                                             "default/1/c", "a:b", "a/b", "a"};
  uint64_t id = 0;
  for (const std::string& k : inserted) Put(*s, k, Rec(++id));
  const std::vector<std::string> sorted = {"Z",           "a",           "a b",         "a/b",
                                           "a:b",         "default/1/c", "default/10/a",
                                           "default/2/b"};
  CHECK(Keys(*s) == sorted);

  // The record passed matches the key.
  REQUIRE(s->View([&](const MetaTxn& t) {
               return t.ForEach([&](absl::string_view k, const SnapshotRecord& r) {
                 CHECK(inserted[r.id - 1] == k);
                 return true;
               });
             }).ok());

  std::vector<std::string> first3;
  REQUIRE(s->View([&](const MetaTxn& t) {
               return t.ForEach([&](absl::string_view k, const SnapshotRecord&) {
                 first3.emplace_back(k);
                 return first3.size() < 3;
               });
             }).ok());
  CHECK(first3 == std::vector<std::string>{"Z", "a", "a b"});

  int calls = 0;
  REQUIRE(s->View([&](const MetaTxn& t) {
               return t.ForEach([&](absl::string_view, const SnapshotRecord&) {
                 ++calls;
                 return false;
               });
             }).ok());
  CHECK(calls == 1);

  TempDir empty_dir;
  auto empty = OpenStore(empty_dir.path());
  CHECK(Keys(*empty).empty());
}

TEST_CASE("key length limits and odd characters", "[metastore]") {
  TempDir dir;
  auto s = OpenStore(dir.path());

  const std::string longest(kMaxKeyBytes, 'k');
  Put(*s, longest, Rec(1));
  auto got = Get(*s, longest);
  REQUIRE(got.has_value());
  CHECK(got->id == 1);
  CHECK(KeyOf(*s, 1) == std::optional<std::string>(longest));
  // A child can name the longest key as parent.
  Put(*s, "child", Rec(2, Kind::kActive, longest));
  CHECK(HasChildren(*s, 1));
  CHECK(Keys(*s) == std::vector<std::string>{"child", longest});

  const std::string too_long(kMaxKeyBytes + 1, 'k');
  absl::Status st = s->Update([&](MetaTxn& t) { return t.Put(too_long, Rec(3)); });
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(Get(*s, too_long).has_value());
  CHECK_FALSE(KeyOf(*s, 3).has_value());
  absl::Status empty = s->Update([&](MetaTxn& t) { return t.Put("", Rec(4)); });
  CHECK(empty.code() == absl::StatusCode::kInvalidArgument);

  // containerd's keys: <namespace>/<seq>/<client key>, with '/', ' ' and ':'.
  const std::vector<std::string> odd = {
      "default/12/extract-123456789-abcd sha256:0123456789abcdef",
      "k8s.io/3/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "/", " ", ":", "a b:c/d", "trailing/", "ünïcødé/ключ"};
  uint64_t id = 10;
  for (const std::string& k : odd) {
    INFO("key " << k);
    Put(*s, k, Rec(++id));
    auto r = Get(*s, k);
    REQUIRE(r.has_value());
    CHECK(r->id == id);
    CHECK(KeyOf(*s, id) == std::optional<std::string>(k));
  }
}

}  // namespace ndocker
