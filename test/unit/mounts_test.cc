// BuildMounts against containerd's overlay snapshotter (facts §2.2) and the
// lowerdir compaction that lets 128-layer images mount on any tier mix
// (DESIGN §4).
#include "snapshotter/mounts.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "snapshotter/layout.h"
#include "snapshotter/mount_linux.h"

namespace ndocker {
namespace {

using Options = std::vector<std::string>;

MountSpec Spec(Kind kind, std::vector<std::string> parent_fs, std::vector<std::string> links,
               bool index_off = false) {
  MountSpec s;
  s.kind = kind;
  s.fs = "/fast/snapshots/9/fs";
  s.work = "/fast/snapshots/9/work";
  s.parent_fs = std::move(parent_fs);
  s.parent_links = std::move(links);
  s.index_off = index_off;
  return s;
}

std::string Joined(const Options& o) { return absl::StrJoin(o, ","); }

}  // namespace

TEST_CASE("active with no parent is a rw rbind of its own fs", "[mounts]") {
  for (bool index_off : {false, true}) {
    auto m = BuildMounts(Spec(Kind::kActive, {}, {}, index_off));
    REQUIRE(m.size() == 1);
    CHECK(m[0] == Mount{"bind", "/fast/snapshots/9/fs", {"rw", "rbind"}});
  }
}

TEST_CASE("view with no parent is a ro rbind of its own fs", "[mounts]") {
  for (bool index_off : {false, true}) {
    auto m = BuildMounts(Spec(Kind::kView, {}, {}, index_off));
    REQUIRE(m.size() == 1);
    CHECK(m[0] == Mount{"bind", "/fast/snapshots/9/fs", {"ro", "rbind"}});
  }
}

TEST_CASE("view with one parent binds the parent's fs read-only", "[mounts]") {
  for (bool index_off : {false, true}) {
    auto m = BuildMounts(Spec(Kind::kView, {"/slow/snapshots/3/fs"}, {"/root/l/3"}, index_off));
    REQUIRE(m.size() == 1);
    // The parent's real fs dir, not its link and not the view's own fs.
    CHECK(m[0] == Mount{"bind", "/slow/snapshots/3/fs", {"ro", "rbind"}});
  }
}

TEST_CASE("active with one parent is an overlay", "[mounts]") {
  auto m = BuildMounts(Spec(Kind::kActive, {"/slow/snapshots/3/fs"}, {"/root/l/3"}));
  REQUIRE(m.size() == 1);
  CHECK(m[0] == Mount{"overlay", "overlay",
                      {"workdir=/fast/snapshots/9/work", "upperdir=/fast/snapshots/9/fs",
                       "lowerdir=/root/l/3"}});

  auto with_index = BuildMounts(Spec(Kind::kActive, {"/slow/snapshots/3/fs"}, {"/root/l/3"}, true));
  REQUIRE(with_index.size() == 1);
  CHECK(with_index[0] ==
        Mount{"overlay", "overlay",
              {"index=off", "workdir=/fast/snapshots/9/work", "upperdir=/fast/snapshots/9/fs",
               "lowerdir=/root/l/3"}});
}

TEST_CASE("N parents: overlay with lowerdir nearest parent first", "[mounts]") {
  const std::vector<std::string> fs = {"/fast/snapshots/5/fs", "/slow/snapshots/4/fs",
                                       "/fast/snapshots/2/fs"};
  const std::vector<std::string> links = {"/root/l/5", "/root/l/4", "/root/l/2"};

  auto active = BuildMounts(Spec(Kind::kActive, fs, links));
  REQUIRE(active.size() == 1);
  CHECK(active[0] == Mount{"overlay", "overlay",
                           {"workdir=/fast/snapshots/9/work", "upperdir=/fast/snapshots/9/fs",
                            "lowerdir=/root/l/5:/root/l/4:/root/l/2"}});

  auto active_idx = BuildMounts(Spec(Kind::kActive, fs, links, true));
  REQUIRE(active_idx.size() == 1);
  CHECK(active_idx[0].options ==
        Options{"index=off", "workdir=/fast/snapshots/9/work", "upperdir=/fast/snapshots/9/fs",
                "lowerdir=/root/l/5:/root/l/4:/root/l/2"});

  // A view has neither workdir nor upperdir: read-only overlay of its parents.
  auto view = BuildMounts(Spec(Kind::kView, fs, links));
  REQUIRE(view.size() == 1);
  CHECK(view[0] == Mount{"overlay", "overlay", {"lowerdir=/root/l/5:/root/l/4:/root/l/2"}});

  auto view_idx = BuildMounts(Spec(Kind::kView, fs, links, true));
  REQUIRE(view_idx.size() == 1);
  CHECK(view_idx[0] ==
        Mount{"overlay", "overlay", {"index=off", "lowerdir=/root/l/5:/root/l/4:/root/l/2"}});

  // Two parents is already N for a view.
  auto view2 = BuildMounts(Spec(Kind::kView, {fs[0], fs[1]}, {links[0], links[1]}));
  REQUIRE(view2.size() == 1);
  CHECK(view2[0] == Mount{"overlay", "overlay", {"lowerdir=/root/l/5:/root/l/4"}});
}

TEST_CASE("128 layers on mixed tiers mount through short links within a page", "[mounts]") {
  const std::string root = "/var/lib/ndocker-snapshotter-with-a-long-name";
  const std::string fast = "/mnt/nvme0n1-fast-tier/ndocker-snapshotter/data";
  const std::string slow = "/srv/spinning-disks/raid6-volume/ndocker-slow-tier";
  const Layout layout(root, fast, slow);

  // Parent ids 1..128; the nearest parent (128) comes first. Real fs dirs
  // alternate between the two tiers, which share no path prefix.
  std::vector<std::string> parent_fs, links, short_ids;
  for (uint64_t id = 128; id >= 1; --id) {
    const Tier t = id % 2 == 0 ? Tier::kFast : Tier::kSlow;
    parent_fs.push_back(layout.FsDir(t, id));
    links.push_back(layout.LinkPath(id));
    short_ids.push_back(Layout::ShortId(id));
  }
  REQUIRE(links.size() == 128);
  CHECK(links.front() == root + "/l/3k");  // 128 in base 36
  CHECK(links.back() == root + "/l/1");

  for (Kind kind : {Kind::kActive, Kind::kView}) {
    for (bool index_off : {false, true}) {
      INFO("kind " << KindName(kind) << " index_off " << index_off);
      MountSpec spec;
      spec.kind = kind;
      spec.fs = layout.FsDir(Tier::kFast, 129);
      spec.work = layout.WorkDir(Tier::kFast, 129);
      spec.parent_fs = parent_fs;
      spec.parent_links = links;
      spec.index_off = index_off;
      auto m = BuildMounts(spec);
      REQUIRE(m.size() == 1);
      CHECK(m[0].type == "overlay");
      CHECK(m[0].source == "overlay");

      // The lowerdir option lists the 128 links in order, never a tier path.
      const std::string lower = m[0].options.back();
      CHECK(lower == "lowerdir=" + absl::StrJoin(links, ":"));
      CHECK(lower.find(fast) == std::string::npos);
      CHECK(lower.find(slow) == std::string::npos);
      // Absolute, the options do not fit in a page.
      CHECK(Joined(m[0].options).size() >= 4096);

      CompactedOptions c = CompactLowerdirs(m[0].options, 4096);
      CHECK(c.dir == root + "/l");
      CHECK(Joined(c.options).size() < 4096);
      REQUIRE(c.options.size() == m[0].options.size());
      // Only lowerdir changes; it lists the same links, relative to dir.
      for (size_t i = 0; i + 1 < c.options.size(); ++i) CHECK(c.options[i] == m[0].options[i]);
      CHECK(c.options.back() == "lowerdir=" + absl::StrJoin(short_ids, ":"));
      if (kind == Kind::kActive) {
        CHECK(c.options[index_off ? 1 : 0] == "workdir=" + spec.work);
        CHECK(c.options[index_off ? 2 : 1] == "upperdir=" + spec.fs);
      }
      if (index_off) CHECK(c.options.front() == "index=off");
    }
  }
}

TEST_CASE("absolute lowerdirs on two tiers cannot be compacted", "[mounts]") {
  // Why the links exist: the tier roots share no prefix beyond "/".
  std::vector<std::string> dirs;
  for (int id = 128; id >= 1; --id) {
    dirs.push_back((id % 2 ? "/srv/slow-tier-volume/ndocker/snapshots/"
                           : "/mnt/fast-tier-nvme/ndocker/snapshots/") +
                   std::to_string(id) + "/fs");
  }
  const Options options = {"lowerdir=" + absl::StrJoin(dirs, ":")};
  REQUIRE(Joined(options).size() >= 4096);
  CompactedOptions c = CompactLowerdirs(options, 4096);
  CHECK(c.dir.empty());
  CHECK(c.options == options);
}

TEST_CASE("short option lists are left unchanged", "[mounts]") {
  const Options overlay = {"index=off", "workdir=/var/lib/nd/fast/snapshots/9/work",
                           "upperdir=/var/lib/nd/fast/snapshots/9/fs",
                           "lowerdir=/var/lib/nd/l/5:/var/lib/nd/l/4:/var/lib/nd/l/2"};
  CompactedOptions c = CompactLowerdirs(overlay, 4096);
  CHECK(c.dir.empty());
  CHECK(c.options == overlay);

  const Options bind = {"ro", "rbind"};
  CompactedOptions b = CompactLowerdirs(bind, 4096);
  CHECK(b.dir.empty());
  CHECK(b.options == bind);

  CompactedOptions none = CompactLowerdirs({}, 4096);
  CHECK(none.dir.empty());
  CHECK(none.options.empty());
}

}  // namespace ndocker
