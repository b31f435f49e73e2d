// Static analysis of an image (the paper's HBCSA, first stage): from the
// image config (history, Entrypoint, Cmd, WorkingDir, PATH) and each layer's
// file list, the class of every layer, with the evidence for it.
//
//   base         base-system binaries and libraries only (placement: LASS)
//   engine       an interpreter, runtime or JVM, or its runtime libraries
//   application  the entrypoint's target, the script it runs, files under
//                WorkingDir or an /app-like directory, a COPY/ADD step
//   unknown      the file list could not be read (or is not read yet and the
//                history says nothing)
//
// A layer showing several classes takes the strongest (application > engine
// > base) and keeps all the evidence. Engine and application layers are the
// ones a cold start reads from: they stay on the fast tier until a trace of
// a real start exists (keep_fast).
//
// Pure: no I/O, no clock. Layers whose file list is not read yet are
// classified from the history alone (provisional) and the entrypoint is
// resolved through the layers that are read.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "hbcsa/image_config_facts.h"
#include "hbcsa/layer_files.h"

namespace ndocker::hbcsa {

// Ordered by strength, weakest first.
enum class LayerClass { kUnknown, kBase, kEngine, kApplication };
const char* LayerClassName(LayerClass c);  // "unknown", "base", "engine", "application"
inline bool KeepFast(LayerClass c) { return c == LayerClass::kEngine || c == LayerClass::kApplication; }

enum class FileListState { kPending, kRead, kUnreadable };
const char* FileListStateName(FileListState s);  // "pending", "read", "unreadable"

struct LayerInput {
  std::string digest;    // compressed blob (for people)
  std::string chain_id;  // (for people and callers' maps)
  FileListState state = FileListState::kPending;
  const LayerFileList* files = nullptr;  // set when state == kRead; must outlive the call
  std::string error;                     // why, when state == kUnreadable
};

struct Evidence {
  LayerClass supports = LayerClass::kBase;  // the class this observation argues for
  std::string text;
};

struct LayerAnalysis {
  LayerClass layer_class = LayerClass::kUnknown;
  bool keep_fast = false;
  FileListState files = FileListState::kPending;
  bool provisional = false;  // file list not read yet: history evidence only
  std::string created_by;    // the build step (when the history maps to layers)
  size_t entries = 0;
  int64_t regular_bytes = 0;
  int64_t disk_bytes = 0;  // LayerFileList::disk_bytes; 0 while not read
  std::vector<Evidence> evidence;  // strongest first, then in the order found
};

struct ImageAnalysis {
  std::vector<LayerAnalysis> layers;  // one per input, same order
  std::vector<std::string> notes;     // image-wide: argv, resolution, history mapping
  bool complete = false;              // every layer's file list was read (or failed)
};

ImageAnalysis AnalyzeImage(const ImageConfigFacts& facts, const std::vector<LayerInput>& layers);

// One history step as a build tool recorded it, for the COPY/ADD rule.
struct BuildStep {
  enum class Kind { kOther, kCopy, kAdd };
  Kind kind = Kind::kOther;
  std::string instruction;           // "COPY app.py /app/" (no "#(nop)", no "# buildkit")
  std::vector<std::string> sources;  // flags dropped
  std::string destination;           // as written
  // ADD/COPY of a root filesystem archive to "/" (how base images start:
  // "ADD file:<hex> in /", "ADD alpine-minirootfs.tar.gz /"), which is base
  // system, not application. `first_layer`: the step made the bottom layer.
  bool IsRootfs(bool first_layer) const;
};
BuildStep ParseCreatedBy(absl::string_view created_by);

// The engine a file name belongs to ("python", "java", "node", "ruby", "php",
// "dotnet", "erlang", "perl"), or "" for none. `basename` only.
std::string EngineOfExecutable(absl::string_view basename);

// The engine a RUN step installs, from its words ("apt-get install -y
// openjdk-17-jre-headless" -> java, "pip install flask" -> python, "npm ci"
// -> node), with the word that says so; {"", ""} for none. Used only for
// layers whose file list is not read yet (a big engine layer is often the
// last blob to arrive, so its unpack can come before its file list).
std::pair<std::string, std::string> EngineOfBuildStep(absl::string_view created_by);

}  // namespace ndocker::hbcsa
