// Parsing image index / manifest / config JSON, platform selection, chain IDs.
#include "lass/image_json.h"

#include <catch2/catch.hpp>
#include <string>

#include "lass/digest.h"
#include "lass/ingest_ref.h"

namespace ndocker::lass {
namespace {

// diff IDs = sha256 of "layer0", "layer1", "layer2"; chain IDs computed with
// `printf 'sha256:<c0> sha256:<d1>' | sha256sum`, independent of this code.
const char* kDiff0 = "sha256:4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e";
const char* kDiff1 = "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2";
const char* kDiff2 = "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06";
const char* kChain1 = "sha256:ef232af0eb422cdfd7917631657cd8ed2bfd5b9461b37c427aa0d3e0a19adf79";
const char* kChain2 = "sha256:7ad3896338947cc04ee0b35b50d400ff32538d63f42f85ec87feac78bf71a54d";

const char* kDockerManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 1470,
    "digest": "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 2479,
      "digest": "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54"
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 31357311,
      "digest": "sha256:a2abf6c4d29d43a4bf9fbb769f524d0fb36a2edab49819c1bf3e76f409f953ea"
    }
  ]
})";

const char* kOciIndex = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1000,
     "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1001,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1002,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 566,
     "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
     "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ]
})";

TEST_CASE("Docker schema2 manifest keeps config and layers in order", "[lass]") {
  REQUIRE(DetectImageJsonKind(kDockerManifest) == ImageJsonKind::kManifest);
  auto m = ParseImageManifest(kDockerManifest);
  REQUIRE(m.ok());
  CHECK(m->config.digest == "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412");
  CHECK(m->config.size == 1470);
  REQUIRE(m->layers.size() == 2);
  CHECK(m->layers[0].digest == "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54");
  CHECK(m->layers[1].size == 31357311);
  CHECK(m->layers[1].media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip");
}

TEST_CASE("OCI manifest without mediaType is recognised by shape", "[lass]") {
  const char* oci = R"({"schemaVersion":2,
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":7,
      "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","size":9,
      "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]})";
  REQUIRE(DetectImageJsonKind(oci) == ImageJsonKind::kManifest);
  auto m = ParseImageManifest(oci);
  REQUIRE(m.ok());
  REQUIRE(m->layers.size() == 1);
  CHECK(m->layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
}

TEST_CASE("Manifest with a bad digest or size is rejected", "[lass]") {
  CHECK_FALSE(ParseImageManifest(R"({"config":{"size":1,"digest":"sha256:../../etc"},"layers":[]})").ok());
  CHECK_FALSE(ParseImageManifest(
                  R"({"config":{"size":-1,"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"layers":[]})")
                  .ok());
  CHECK_FALSE(ParseImageManifest(
                  R"({"config":{"size":1,"digest":"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"layers":[]})")
                  .ok());
  CHECK_FALSE(ParseImageManifest("{not json").ok());
  CHECK_FALSE(ParseImageManifest(kOciIndex).ok());
}

TEST_CASE("Index picks the host platform's manifest", "[lass]") {
  REQUIRE(DetectImageJsonKind(kOciIndex) == ImageJsonKind::kIndex);
  auto index = ParseImageIndex(kOciIndex);
  REQUIRE(index.ok());
  REQUIRE(index->manifests.size() == 4);
  auto amd64 = SelectManifest(*index, PlatformFromMachine("x86_64"));
  REQUIRE(amd64);
  CHECK(amd64->digest == "sha256:2222222222222222222222222222222222222222222222222222222222222222");
  // arm64 host: the "v8" variant entry still matches a variant-less host.
  auto arm64 = SelectManifest(*index, PlatformFromMachine("aarch64"));
  REQUIRE(arm64);
  CHECK(arm64->digest == "sha256:3333333333333333333333333333333333333333333333333333333333333333");
  auto armv7 = SelectManifest(*index, PlatformFromMachine("armv7l"));
  REQUIRE(armv7);
  CHECK(armv7->digest == "sha256:1111111111111111111111111111111111111111111111111111111111111111");
  CHECK_FALSE(SelectManifest(*index, PlatformFromMachine("s390x")));
}

TEST_CASE("Docker manifest list is an index", "[lass]") {
  const char* list = R"({"schemaVersion":2,
    "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":525,
      "digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555",
      "platform":{"architecture":"amd64","os":"linux"}}]})";
  CHECK(DetectImageJsonKind(list) == ImageJsonKind::kIndex);
  auto index = ParseImageIndex(list);
  REQUIRE(index.ok());
  CHECK(index->manifests[0].platform->architecture == "amd64");
}

TEST_CASE("Image config gives diff_ids and history", "[lass]") {
  std::string config = std::string(R"({"architecture":"amd64","os":"linux",
    "config":{"Env":["PATH=/usr/bin"],"Cmd":["/hello"]},
    "history":[
      {"created":"2023-05-04T17:37:03Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},
      {"created":"2023-05-04T17:37:03Z","created_by":"/bin/sh -c #(nop)  CMD [\"/hello\"]","empty_layer":true},
      {"created":"2023-05-04T17:38:00Z","created_by":"RUN apt-get install -y curl"},
      {"created":"2023-05-04T17:38:01Z","created_by":"COPY app /app"}],
    "rootfs":{"type":"layers","diff_ids":[")") +
                       kDiff0 + "\",\"" + kDiff1 + "\",\"" + kDiff2 + "\"]}}";
  REQUIRE(DetectImageJsonKind(config) == ImageJsonKind::kConfig);
  auto c = ParseImageConfig(config);
  REQUIRE(c.ok());
  CHECK(c->platform.architecture == "amd64");
  REQUIRE(c->diff_ids.size() == 3);
  CHECK(c->diff_ids[2] == kDiff2);
  REQUIRE(c->history.size() == 4);
  CHECK(c->history[1].empty_layer);
  CHECK_FALSE(c->history[2].empty_layer);
  CHECK(c->history[2].created_by == "RUN apt-get install -y curl");
}

TEST_CASE("Unknown JSON is not mistaken for an image document", "[lass]") {
  CHECK(DetectImageJsonKind(R"({"schemaVersion":1,"fsLayers":[]})") == ImageJsonKind::kUnknown);
  CHECK(DetectImageJsonKind("[1,2]") == ImageJsonKind::kUnknown);
  CHECK(DetectImageJsonKind("") == ImageJsonKind::kUnknown);
}

TEST_CASE("ChainIds matches identity.ChainID", "[lass]") {
  auto chain = ChainIds({kDiff0, kDiff1, kDiff2});
  REQUIRE(chain.ok());
  REQUIRE(chain->size() == 3);
  CHECK((*chain)[0] == kDiff0);
  CHECK((*chain)[1] == kChain1);
  CHECK((*chain)[2] == kChain2);
  auto empty = ChainIds({});
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("Digest validation and sha256", "[lass]") {
  CHECK(IsSha256Digest(kDiff0));
  CHECK_FALSE(IsSha256Digest("sha256:a"));
  CHECK_FALSE(IsSha256Digest("sha512:4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e"));
  CHECK_FALSE(IsHex64("../4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d535547"));
  auto sum = Sha256Hex("layer0");
  REQUIRE(sum.ok());
  CHECK("sha256:" + *sum == kDiff0);
}

TEST_CASE("Ingest refs name their kind and digest", "[lass]") {
  const std::string hex = "0bfd8d4e2e6bd3c1cbb8fa4cf1b8d0b4d4bf5b8f8e5c5a1f8e4c0d2a6a3b9f11";
  auto layer = ParseIngestRef("default/1/layer-sha256:" + hex);
  REQUIRE(layer);
  CHECK(layer->ns == "default");
  CHECK(layer->kind == RefKind::kLayer);
  CHECK(layer->digest == "sha256:" + hex);
  auto manifest = ParseIngestRef("k8s.io/1/manifest-sha256:" + hex + "\n");
  REQUIRE(manifest);
  CHECK(manifest->ns == "k8s.io");
  CHECK(manifest->kind == RefKind::kManifest);
  auto named = ParseIngestRef("default/1/index-docker.io/library/nginx:latest@sha256:" + hex);
  REQUIRE(named);
  CHECK(named->kind == RefKind::kIndex);
  CHECK(named->digest == "sha256:" + hex);
  auto custom = ParseIngestRef("default/3/my-upload");
  REQUIRE(custom);
  CHECK(custom->kind == RefKind::kOther);
  CHECK(custom->digest.empty());
  CHECK_FALSE(ParseIngestRef(""));
  CHECK_FALSE(ParseIngestRef("default/1/layer\x01"));
}

}  // namespace
}  // namespace ndocker::lass
