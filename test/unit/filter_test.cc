// Expected outcomes and error messages were checked against containerd
// 1.6.20's filters package (Go), which this implementation must agree with.
#include "snapshotter/filter.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "snapshotter/types.h"

namespace ndocker {
namespace {

// What containerd's metadata.adaptSnapshot + checkMap answer: kind, name and
// parent are always present (an empty parent is present with value ""), an
// unknown kind is absent, and a label key is the rest of the field path
// joined with '.', so labels.a.b and labels."a.b" both name label "a.b".
FieldLookup SnapshotLookup(const SnapshotInfo& info) {
  return [&info](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    if (path[0] == "kind") {
      switch (info.kind) {
        case Kind::kActive: return "active";
        case Kind::kView: return "view";
        case Kind::kCommitted: return "committed";
        default: return std::nullopt;
      }
    }
    if (path[0] == "name") return info.name;
    if (path[0] == "parent") return info.parent;
    if (path[0] == "labels") {
      std::string key;
      for (size_t i = 1; i < path.size(); ++i) key += (i > 1 ? "." : "") + path[i];
      auto it = info.labels.find(key);
      if (it == info.labels.end()) return std::nullopt;
      return it->second;
    }
    return std::nullopt;
  };
}

SnapshotInfo Snap(std::string name, Kind kind, std::string parent = "", Labels labels = {}) {
  SnapshotInfo info;
  info.name = std::move(name);
  info.kind = kind;
  info.parent = std::move(parent);
  info.labels = std::move(labels);
  return info;
}

bool Matches(const std::vector<std::string>& filters, const SnapshotInfo& info) {
  absl::StatusOr<Filter> f = Filter::ParseAll(filters);
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  return f->Match(SnapshotLookup(info));
}

// Names of the snapshots that match, sorted, as a Walk would list them.
std::vector<std::string> Walk(const std::vector<SnapshotInfo>& all,
                              const std::vector<std::string>& filters) {
  absl::StatusOr<Filter> f = Filter::ParseAll(filters);
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  std::vector<std::string> names;
  for (const SnapshotInfo& info : all) {
    if (f->Match(SnapshotLookup(info))) names.push_back(info.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The message ParseAll gives; "" when the filters parse.
std::string ParseError(const std::vector<std::string>& filters) {
  absl::StatusOr<Filter> f = Filter::ParseAll(filters);
  if (f.ok()) return "";
  CHECK(f.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(f.status().message());
}

// The field paths a filter asks the lookup for, in order.
std::vector<std::vector<std::string>> FieldPaths(const std::string& filter) {
  absl::StatusOr<Filter> f = Filter::ParseAll({filter});
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  std::vector<std::vector<std::string>> seen;
  f->Match([&](const std::vector<std::string>& path) -> std::optional<std::string> {
    seen.push_back(path);
    return "x";
  });
  return seen;
}

using Names = std::vector<std::string>;

TEST_CASE("filter: the filters of containerd's snapshot conformance checkWalk", "[filter]") {
  const Labels root = {{"containerd.io/gc.root", "check-walk"}};
  auto with_l = [&](std::string l) {
    Labels labels = root;
    labels["l"] = std::move(l);
    return labels;
  };
  const std::vector<SnapshotInfo> all = {
      Snap("a-np", Kind::kActive, "", root),
      Snap("p", Kind::kCommitted, "", root),
      Snap("a", Kind::kActive, "p", root),
      Snap("v", Kind::kView, "p", root),
      Snap("p-wl", Kind::kCommitted, "", with_l("1")),
      Snap("a-wl", Kind::kActive, "p-wl", with_l("2")),
      Snap("v-wl", Kind::kView, "p-wl", with_l("3")),
      Snap("a-np-wl", Kind::kActive, "", with_l("2")),
  };

  CHECK(Walk(all, {R"(labels."containerd.io/gc.root"==check-walk)"}) ==
        Names{"a", "a-np", "a-np-wl", "a-wl", "p", "p-wl", "v", "v-wl"});
  CHECK(Walk(all, {R"(kind==active,labels."containerd.io/gc.root"==check-walk)"}) ==
        Names{"a", "a-np", "a-np-wl", "a-wl"});
  CHECK(Walk(all, {R"(kind==view,labels."containerd.io/gc.root"==check-walk)"}) ==
        Names{"v", "v-wl"});
  CHECK(Walk(all, {R"(kind==committed,labels."containerd.io/gc.root"==check-walk)"}) ==
        Names{"p", "p-wl"});
  CHECK(Walk(all, {"name==p", "name==a-np-wl"}) == Names{"a-np-wl", "p"});
  CHECK(Walk(all, {"name==a-wl,labels.l"}) == Names{"a-wl"});
  CHECK(Walk(all, {"parent==p"}) == Names{"a", "v"});
  CHECK(Walk(all, {R"(parent!="",labels."containerd.io/gc.root"==check-walk)"}) ==
        Names{"a", "a-wl", "v", "v-wl"});
  CHECK(Walk(all, {"labels.l"}) == Names{"a-np-wl", "a-wl", "p-wl", "v-wl"});
  CHECK(Walk(all, {"labels.l==2"}) == Names{"a-np-wl", "a-wl"});
}

TEST_CASE("filter: the remote snapshot filter", "[filter]") {
  const std::string filter =
      R"(labels."containerd.io/snapshot.ref"==sha256:abc,parent=="default/3/sha256:def")";
  const Labels ref = {{"containerd.io/snapshot.ref", "sha256:abc"}};
  CHECK(Matches({filter}, Snap("x", Kind::kCommitted, "default/3/sha256:def", ref)));
  CHECK_FALSE(Matches({filter}, Snap("x", Kind::kCommitted, "default/4/sha256:def", ref)));
  CHECK_FALSE(Matches({filter}, Snap("x", Kind::kCommitted, "default/3/sha256:def")));
  CHECK_FALSE(Matches({filter}, Snap("x", Kind::kCommitted, "default/3/sha256:def",
                                     {{"containerd.io/snapshot.ref", "sha256:abcd"}})));
  CHECK(FieldPaths(R"(labels."containerd.io/snapshot.ref"==x,parent=="default/3/sha256:def")") ==
        std::vector<std::vector<std::string>>{{"labels", "containerd.io/snapshot.ref"},
                                              {"parent"}});
}

TEST_CASE("filter: no filters or empty filter strings match everything", "[filter]") {
  const SnapshotInfo info = Snap("a", Kind::kActive);
  CHECK(Matches({}, info));
  CHECK(Matches({""}, info));
  CHECK(Matches({"", ""}, info));
  // An empty string is an alternative that always holds.
  CHECK(Matches({"", "name==zzz"}, info));
  // ...but every string is still parsed.
  CHECK(ParseError({"", "name=="}) == "filters: parse error: [name==]: expected value or quoted");
  // Whitespace alone is not empty.
  CHECK(ParseError({" "}) == "filters: parse error: [ ]: expected field or quoted");
}

TEST_CASE("filter: commas AND selectors, separate strings OR them", "[filter]") {
  const SnapshotInfo info = Snap("a", Kind::kActive, "p", {{"l", "1"}});
  CHECK(Matches({"name==a,parent==p,labels.l==1,kind==active"}, info));
  CHECK_FALSE(Matches({"name==a,parent==q"}, info));
  CHECK(Matches({"name==b", "parent==p"}, info));
  CHECK(Matches({"name==b,parent==p", "name==a,labels.l"}, info));
  CHECK_FALSE(Matches({"name==b", "parent==q", "labels.m"}, info));
}

TEST_CASE("filter: operators on absent and empty fields", "[filter]") {
  // No parent (present, value ""), an empty label "e", no label "x", and a
  // kind containerd does not name (absent).
  const SnapshotInfo info = Snap("n", Kind::kUnknown, "", {{"e", ""}});

  CHECK(Matches({"parent"}, info));
  CHECK(Matches({R"(parent=="")"}, info));
  CHECK_FALSE(Matches({R"(parent!="")"}, info));

  CHECK(Matches({"labels.e"}, info));
  CHECK(Matches({R"(labels.e=="")"}, info));

  CHECK_FALSE(Matches({"labels.x"}, info));
  CHECK_FALSE(Matches({R"(labels.x=="")"}, info));
  CHECK_FALSE(Matches({"kind==active"}, info));
  // != and ~= compare an absent field as "": so != holds for any non-empty
  // value and a regexp that accepts "" matches.
  CHECK(Matches({"labels.x!=foo"}, info));
  CHECK(Matches({"kind!=active"}, info));
  CHECK_FALSE(Matches({R"(labels.x!="")"}, info));
  CHECK(Matches({"labels.x~=^$"}, info));
  CHECK(Matches({"labels.x~=^.*"}, info));
  CHECK_FALSE(Matches({"labels.x~=/./"}, info));
  // Unknown top-level fields are absent too.
  CHECK_FALSE(Matches({"bogus"}, info));
  CHECK(Matches({"bogus!=1"}, info));
}

TEST_CASE("filter: field paths handed to the lookup", "[filter]") {
  using Paths = std::vector<std::vector<std::string>>;
  CHECK(FieldPaths("labels.a.b==x") == Paths{{"labels", "a", "b"}});
  CHECK(FieldPaths(R"(labels."a.b"==x)") == Paths{{"labels", "a.b"}});
  CHECK(FieldPaths(R"(labels."containerd.io/gc.root")") ==
        Paths{{"labels", "containerd.io/gc.root"}});
  CHECK(FieldPaths(R"("leading quote".postquote==value)") ==
        Paths{{"leading quote", "postquote"}});
  CHECK(FieldPaths(R"(labels."a\"b\\c")") == Paths{{"labels", "a\"b\\c"}});
  // Field names may start with a digit or underscore, unlike the grammar
  // containerd documents.
  CHECK(FieldPaths("labels.1._x") == Paths{{"labels", "1", "_x"}});
  CHECK(FieldPaths("name,parent==x") == Paths{{"name"}, {"parent"}});

  // Both spellings reach label "a.b" through the snapshot lookup.
  const SnapshotInfo info = Snap("n", Kind::kActive, "", {{"a.b", "x"}});
  CHECK(Matches({"labels.a.b==x"}, info));
  CHECK(Matches({R"(labels."a.b"==x)"}, info));
  CHECK_FALSE(Matches({"labels.a"}, info));
}

TEST_CASE("filter: quoted values and escapes", "[filter]") {
  auto named = [](std::string name) { return Snap(std::move(name), Kind::kActive); };
  CHECK(Matches({R"(name=="foo bar")"}, named("foo bar")));
  CHECK(Matches({R"(name=="a,b",kind==active)"}, named("a,b")));
  CHECK(Matches({R"(name=="say \"hi\"")"}, named("say \"hi\"")));
  CHECK(Matches({R"(name=="back\\slash")"}, named("back\\slash")));
  CHECK(Matches({R"(name=="\x41\101\u00e9\U0001F600\t\n")"},
                named("AA\xc3\xa9\xf0\x9f\x98\x80\t\n")));
  // \x and octal escapes give raw bytes, not code points.
  CHECK(Matches({R"(name=="\xff\377")"}, named("\xff\xff")));
  CHECK(Matches({"name==\"\xe7\x89\x9b\""}, named("\xe7\x89\x9b")));
  // Unquoted values run to ',' or whitespace and may hold any punctuation,
  // including quotes that are not at the start.
  CHECK(Matches({"name==a\"b/c|d=e"}, named("a\"b/c|d=e")));
  // Single quotes and backquotes are not quotes at all: they are part of
  // the value.
  CHECK(Matches({"name=='x'"}, named("'x'")));
  CHECK(Matches({"name==`x`"}, named("`x`")));
  CHECK_FALSE(Matches({"name=='x'"}, named("x")));
}

TEST_CASE("filter: regular expressions", "[filter]") {
  auto named = [](std::string name) { return Snap(std::move(name), Kind::kActive); };
  CHECK(Matches({"name~=^foo"}, named("foo")));
  CHECK(Matches({"name~=^foo"}, named("foobar")));
  CHECK_FALSE(Matches({"name~=^foo"}, named("afoo")));
  CHECK(Matches({"name~=/.*b/"}, named("ab")));
  // Unanchored, like Go's MatchString.
  CHECK(Matches({"name~=oo"}, named("afoob")));
  CHECK(Matches({"name~=[abc]+,kind==active"}, named("xbx")));
  CHECK(Matches({"name~=(?i)FOO"}, named("foo")));
  CHECK(Matches({"name~=\xe7\x89\x9b"}, named("a\xe7\x89\x9b")));
  // A regexp may be quoted with /, | or ". Inside quotes the scanner only
  // knows string escapes, so a regexp backslash must be doubled.
  CHECK(Matches({R"(name~=/^a\\.b$/)"}, named("a.b")));
  CHECK_FALSE(Matches({R"(name~=/^a\\.b$/)"}, named("axb")));
  CHECK(Matches({R"(name~="^a\\.b$")"}, named("a.b")));
  CHECK(Matches({"name~=|a/b|"}, named("a/b")));
  CHECK(Matches({R"(name~=/a\/b/)"}, named("a/b")));
  CHECK(Matches({"name~=/[abc]{1,2}/"}, named("zcz")));
  // Unquoted, the backslash reaches the regexp as is.
  CHECK(Matches({R"(name~=^a\.b$)"}, named("a.b")));
  CHECK_FALSE(Matches({R"(name~=^a\.b$)"}, named("axb")));
}

TEST_CASE("filter: a bad regexp parses but never matches, as in containerd", "[filter]") {
  // containerd compiles the regexp only when matching, logs the error and
  // answers false; ParseAll succeeds.
  auto named = [](std::string name) { return Snap(std::move(name), Kind::kActive); };
  CHECK(ParseError({"name~=["}) == "");
  CHECK_FALSE(Matches({"name~=["}, named("[")));
  CHECK_FALSE(Matches({"name~=a)"}, named("a)")));
  // RE2 would take \C, Go's regexp does not.
  CHECK_FALSE(Matches({R"(name~=\C)"}, named("x")));
  CHECK(Matches({R"(name~=\Q\C\E)"}, named("\\C")));
  // The rest of the filter still counts: a bad regexp only sinks its own
  // alternative.
  CHECK(Matches({"name~=[", "name==x"}, named("x")));
}

TEST_CASE("filter: whitespace", "[filter]") {
  const SnapshotInfo info = Snap("a", Kind::kActive, "p", {{"l", "1"}});
  // Skipped before any token...
  CHECK(Matches({"  name==a"}, info));
  CHECK(Matches({"\tname \t== a"}, info));
  CHECK(Matches({"name==a,  parent==p"}, info));
  CHECK(Matches({"labels. l"}, info));
  CHECK(Matches({"name==\"a\",\nparent==p"}, info));
  // ...but whatever follows a selector must be ',' or the end, so trailing
  // whitespace and whitespace before ',' are errors.
  CHECK(ParseError({"name==a "}) ==
        "filters: parse error: [name==a >| |< ]: unexpected input:  ");
  CHECK(ParseError({"name==a ,parent==p"}) ==
        "filters: parse error: [name==a >| |< ,parent==p]: unexpected input:  ");
  CHECK(ParseError({"name==a b"}) ==
        "filters: parse error: [name==a >| |< b]: unexpected input:  ");
  CHECK(ParseError({"labels.l "}) ==
        R"(filters: parse error: [labels.l ]: expected an operator ("=="|"!="|"~="))");
  CHECK(ParseError({"labels .l"}) ==
        R"(filters: parse error: [labels  >|.|< l]: expected an operator ("=="|"!="|"~="))");
}

TEST_CASE("filter: syntax errors are InvalidArgument with containerd's message", "[filter]") {
  CHECK(ParseError({"name=="}) == "filters: parse error: [name==]: expected value or quoted");
  CHECK(ParseError({"==x"}) == "filters: parse error: [ >|=|< =x]: expected field or quoted");
  CHECK(ParseError({"name=x"}) ==
        R"(filters: parse error: [name >|=|< x]: unsupported operator "=")");
  CHECK(ParseError({"name===a"}) ==
        R"(filters: parse error: [name >|=|< ==a]: unsupported operator "===")");
  CHECK(ParseError({"name!a"}) ==
        R"(filters: parse error: [name >|!|< a]: unsupported operator "!")");
  CHECK(ParseError({"name==x,"}) == "filters: parse error: [name==x,]: expected field or quoted");
  CHECK(ParseError({"name,"}) == "filters: parse error: [name,]: expected field or quoted");
  CHECK(ParseError({"name==a,,b"}) ==
        "filters: parse error: [name==a, >|,|< b]: expected field or quoted");
  CHECK(ParseError({"labels."}) == "filters: parse error: [labels.]: expected field or quoted");
  CHECK(ParseError({"labels..l"}) ==
        "filters: parse error: [labels. >|.|< l]: expected field or quoted");
  // A value cannot start with '.', which the scanner takes for a field
  // separator: unquoted regexps like .* must be written ^.* or quoted.
  CHECK(ParseError({"name==.x"}) ==
        "filters: parse error: [name== >|.|< x]: expected value or quoted");
  CHECK(ParseError({"name~=.*"}) ==
        "filters: parse error: [name~= >|.|< *]: expected value or quoted");
  CHECK(ParseError({R"(name=="a"b)"}) ==
        "filters: parse error: [name==\"a\" >|b|< ]: unexpected input: b");
  CHECK(ParseError({"'name'==a"}) ==
        "filters: parse error: [ >|'|< name'==a]: expected field or quoted");
}

TEST_CASE("filter: quoting errors", "[filter]") {
  CHECK(ParseError({R"(name=="abc)"}) ==
        R"(filters: parse error: [name== >|"|< abc]: quoted literal not terminated)");
  CHECK(ParseError({"labels.\"a\nb\"==x"}) ==
        "filters: parse error: [labels. >|\"|< a\nb\"==x]: quoted literal not terminated");
  // An unquoted '/' in a field path opens a quote.
  CHECK(ParseError({"labels.ns/key==value"}) ==
        "filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated");
  // / and | quote only regexp values.
  CHECK(ParseError({"labels.|foo|==x"}) ==
        "filters: parse error: [labels. >|||< foo|==x]: invalid quote encountered");
  CHECK(ParseError({"name==/x/"}) ==
        "filters: parse error: [name== >|/|< x/]: invalid quote encountered");
  CHECK(ParseError({R"(name=="\q")"}) ==
        R"(filters: parse error: [name== >|"|< \q"]: illegal escape sequence)");
  CHECK(ParseError({R"(name~=/a\.b/)"}) ==
        R"(filters: parse error: [name~= >|/|< a\.b/]: illegal escape sequence)");
  CHECK(ParseError({R"(name=="abc\)"}) ==
        R"(filters: parse error: [name== >|"|< abc\]: illegal escape sequence)");
  CHECK(ParseError({R"(name=="\xzz")"}) ==
        R"(filters: parse error: [name== >|"|< \xzz"]: illegal numeric escape sequence)");
  CHECK(ParseError({R"(name=="\400")"}) ==
        R"(filters: parse error: [name== >|"|< \400"]: unquoting failed: quote syntax error)");
  CHECK(ParseError({R"(name~="\U00110000")"}) ==
        R"(filters: parse error: [name~= >|"|< \U00110000"]: unquoting failed: quote syntax error)");
}

TEST_CASE("filter: bytes the scanner rejects", "[filter]") {
  CHECK(ParseError({std::string("name==a\0b", 9)}) ==
        std::string("filters: parse error: [name==a >|") + '\0' +
            "|< b]: unexpected input: \xef\xbf\xbd");
  CHECK(ParseError({"name==\xff"}) == "filters: parse error: [name== >|\xff|< ]: rune error");
  // Even a well-formed U+FFFD is refused; the marker cuts it mid-rune.
  CHECK(ParseError({"name==\xef\xbf\xbd"}) ==
        "filters: parse error: [name== >|\xef|< \xbf\xbd]: rune error");
  CHECK(ParseError({"name==a,\xc3"}) == "filters: parse error: [name==a, >|\xc3|< ]: rune error");
}

TEST_CASE("filter: an error in any string fails the whole list", "[filter]") {
  absl::StatusOr<Filter> f = Filter::ParseAll({"name==a", "name==", "name==b"});
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(f.status().message() == "filters: parse error: [name==]: expected value or quoted");
}

TEST_CASE("filter: a filter can be moved and reused", "[filter]") {
  absl::StatusOr<Filter> parsed = Filter::ParseAll({"name==a"});
  REQUIRE(parsed.ok());
  Filter f = *std::move(parsed);
  const SnapshotInfo a = Snap("a", Kind::kActive);
  const SnapshotInfo b = Snap("b", Kind::kActive);
  CHECK(f.Match(SnapshotLookup(a)));
  CHECK_FALSE(f.Match(SnapshotLookup(b)));
  CHECK(f.Match(SnapshotLookup(a)));
}

}  // namespace
}  // namespace ndocker
