// The core's default placement and how it recognises an unpack Prepare.
#include "snapshotter/placement.h"

#include <catch2/catch.hpp>

#include "snapshotter/labels.h"

namespace ndocker {

TEST_CASE("UnpackChainId reads the snapshot.ref label first, then the extract key", "[placement]") {
  const std::string chain = "sha256:83cf4c1c2a0ac54fe45c8f6ee1e4b5c5ae0ff3d2a0d3ff4e3c9a3c2b1a0f9e8d";
  // CRI/nerdctl unpack: label present (key still carries the chainID too).
  CHECK(UnpackChainId("extract-676802756--a-a " + chain, {{kSnapshotRefLabel, chain}}) == chain);
  CHECK(UnpackChainId("anything", {{kSnapshotRefLabel, chain}}) == chain);
  // ctr's image.Unpack: no labels at all, the chainID after the last space.
  CHECK(UnpackChainId("extract-676802756--a-a " + chain, {}) == chain);
  CHECK(UnpackChainId("extract-1-ab_c x " + chain, {}) == chain);
  // Not an unpack: container rootfs keys, views, malformed extract keys.
  CHECK(UnpackChainId("default/3/mycontainer", {}).empty());
  CHECK(UnpackChainId("extract-123", {}).empty());
  CHECK(UnpackChainId("extract-123 ", {}).empty());
  // What containerd's metadata layer actually sends: "<ns>/<seq>/<client key>".
  CHECK(UnpackChainId("k8s.io/5/extract-676802756--a-a " + chain, {}) == chain);
  CHECK(UnpackChainId("default/12/extract-1-abcd " + chain, {}) == chain);
  CHECK(UnpackChainId("default/12/web", {}).empty());
  CHECK(UnpackChainId("default/extract-1 sha256:x", {}).empty());
  CHECK(UnpackChainId("a/b/c/extract-1 sha256:x", {}).empty());
  CHECK(UnpackChainId("x", {{kSnapshotRefLabel, ""}}).empty());
}

TEST_CASE("DefaultPlacement: layers and views on the default tier, rootfs on the container tier",
          "[placement]") {
  Labels none;
  auto request = [&](std::string key, std::string parent, Kind kind, std::string chain) {
    PlacementRequest r;
    r.key = std::move(key);
    r.parent = std::move(parent);
    r.labels = &none;
    r.kind = kind;
    r.unpack_chain_id = std::move(chain);
    return r;
  };
  const PlacementRequest unpack = request("extract-1-abcd sha256:aa", "", Kind::kActive, "sha256:aa");
  const PlacementRequest rootfs = request("default/1/web", "sha256:aa", Kind::kActive, "");
  const PlacementRequest view = request("view-1", "sha256:aa", Kind::kView, "");

  for (Tier default_tier : {Tier::kFast, Tier::kSlow}) {
    for (Tier container_tier : {Tier::kFast, Tier::kSlow}) {
      INFO(TierName(default_tier) << "/" << TierName(container_tier));
      const Placement u = DefaultPlacement(unpack, default_tier, container_tier);
      CHECK(u.tier == default_tier);
      CHECK(u.rule == rule::kDefault);
      const Placement r = DefaultPlacement(rootfs, default_tier, container_tier);
      CHECK(r.tier == container_tier);
      CHECK(r.rule == rule::kContainerRootfs);
      CHECK(r.reason.find(TierName(container_tier)) != std::string::npos);
      const Placement v = DefaultPlacement(view, default_tier, container_tier);
      CHECK(v.tier == default_tier);
      CHECK(v.rule == rule::kDefault);
    }
  }
}

}  // namespace ndocker
