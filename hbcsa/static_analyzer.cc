#include "hbcsa/static_analyzer.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace ndocker::hbcsa {
namespace {

constexpr int kMaxSymlinkHops = 40;  // as the kernel's MAXSYMLINKS
constexpr int kMaxArgvSteps = 8;     // wrappers and shells peeled off an argv
constexpr size_t kMaxSamples = 3;    // paths named per kind of evidence
constexpr size_t kMaxInstruction = 200;

// ---------------------------------------------------------------- names

bool AllVersionChars(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
}

// `name` is `stem` followed by an optional version ("python3.11", "ruby3.2").
bool StemWithVersion(absl::string_view name, absl::string_view stem) {
  if (!absl::ConsumePrefix(&name, stem)) return false;
  absl::ConsumeSuffix(&name, "m");  // python3.7m
  return AllVersionChars(name);
}

// libpython3.11.so, libpython3.11.so.1.0, libruby.so.3.1, libnode.so.108
bool SharedLib(absl::string_view name, absl::string_view stem, bool versioned_stem) {
  if (!absl::ConsumePrefix(&name, stem)) return false;
  const size_t so = name.find(".so");
  if (so == absl::string_view::npos) return false;
  absl::string_view version = name.substr(0, so);
  absl::string_view after = name.substr(so + 3);
  if (!after.empty() && (after[0] != '.' || !AllVersionChars(after))) return false;
  if (!versioned_stem) return version.empty();
  absl::ConsumeSuffix(&version, "m");
  absl::ConsumePrefix(&version, "-");
  return AllVersionChars(version);
}

std::string EngineOfLibrary(absl::string_view base) {
  if (SharedLib(base, "libpython", true)) return "python";
  if (base == "libjvm.so") return "java";
  if (SharedLib(base, "libnode", false)) return "node";
  if (SharedLib(base, "libruby", true)) return "ruby";
  if (SharedLib(base, "libphp", true)) return "php";
  if (base == "libcoreclr.so" || base == "libhostfxr.so" || base == "libclrjit.so") return "dotnet";
  if (SharedLib(base, "libperl", false)) return "perl";
  return "";
}

// A runtime's own tree: the directory that groups its files for the evidence
// ("usr/lib/jvm/java-17-openjdk-amd64"), or nullopt.
struct RuntimeDir {
  const char* prefix;  // ends with '/' or is a stem followed by a version
  const char* engine;
  bool versioned;  // prefix + version + '/'
};
constexpr RuntimeDir kRuntimeDirs[] = {
    {"usr/lib/jvm/", "java", false},
    {"opt/java/", "java", false},
    {"usr/java/", "java", false},
    {"usr/lib/python", "python", true},
    {"usr/local/lib/python", "python", true},
    {"usr/lib/node_modules/", "node", false},
    {"usr/local/lib/node_modules/", "node", false},
    {"usr/lib/ruby/", "ruby", false},
    {"usr/local/lib/ruby/", "ruby", false},
    {"usr/lib/php/", "php", false},
    {"usr/local/lib/php/", "php", false},
    {"usr/share/dotnet/", "dotnet", false},
    {"usr/lib/dotnet/", "dotnet", false},
    {"usr/lib/erlang/", "erlang", false},
    {"usr/local/lib/erlang/", "erlang", false},
    {"usr/share/perl/", "perl", false},
    {"usr/share/perl5/", "perl", false},
};

std::optional<std::pair<std::string, std::string>> RuntimeDirOf(absl::string_view path) {
  for (const RuntimeDir& d : kRuntimeDirs) {
    absl::string_view rest = path;
    if (!absl::ConsumePrefix(&rest, d.prefix)) continue;
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos || slash == 0) continue;  // the directory itself or a loose file
    if (d.versioned && !AllVersionChars(rest.substr(0, slash))) continue;
    return std::make_pair(std::string(d.engine), std::string(path.substr(0, path.size() - rest.size() + slash)));
  }
  // Debian's perl: usr/lib/x86_64-linux-gnu/perl/5.36, perl5, perl-base.
  if (absl::StartsWith(path, "usr/lib/")) {
    std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
    if (parts.size() > 4 && absl::StartsWith(parts[3], "perl")) {
      return std::make_pair(std::string("perl"), absl::StrJoin(parts.begin(), parts.begin() + 4, "/"));
    }
  }
  return std::nullopt;
}

absl::string_view Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

absl::string_view Dirname(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? absl::string_view() : path.substr(0, slash);
}

bool InBinDir(absl::string_view path) {
  absl::string_view dir = Basename(Dirname(path));
  return dir == "bin" || dir == "sbin";
}

bool IsShell(absl::string_view name) {
  return name == "sh" || name == "bash" || name == "dash" || name == "ash" || name == "zsh" ||
         name == "ksh" || name == "mksh";
}

// Programs that run their arguments as the real command.
bool IsWrapper(absl::string_view name) {
  return name == "tini" || name == "tini-static" || name == "dumb-init" || name == "catatonit" ||
         name == "env" || name == "gosu" || name == "su-exec" || name == "nohup" || name == "exec" ||
         name == "setpriv" || name == "chroot";
}

bool IsShellBuiltin(absl::string_view w) {
  static const std::set<absl::string_view> kBuiltins = {
      "cd", "set", "export", "echo", "printf", "true", "false", ":", "[", "test", "umask",
      "ulimit", "source", ".", "trap", "wait", "sleep", "unset", "shift", "if", "then", "fi",
      "for", "do", "done", "while", "else", "mkdir", "chmod", "chown", "rm", "cp", "mv", "ln"};
  return kBuiltins.count(w) > 0;
}

// Words of a simple shell command (quotes removed; no expansions).
std::vector<std::string> ShellWords(absl::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

bool IsAssignment(absl::string_view w) {
  const size_t eq = w.find('=');
  if (eq == absl::string_view::npos || eq == 0) return false;
  return std::all_of(w.begin(), w.begin() + eq,
                     [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// The first real command of a `sh -c` string: segments split at ; & | and
// newlines; assignments, `exec` and builtins (cd, set, export...) skipped.
std::vector<std::string> FirstCommand(absl::string_view script) {
  int segments = 0;
  for (absl::string_view seg : absl::StrSplit(script, absl::ByAnyChar(";&|\n"), absl::SkipWhitespace())) {
    if (++segments > 16) break;
    std::vector<std::string> words = ShellWords(seg);
    size_t i = 0;
    while (i < words.size() && (IsAssignment(words[i]) || words[i] == "exec" || words[i] == "(" || words[i] == "{")) {
      ++i;
    }
    if (i >= words.size() || IsShellBuiltin(words[i])) continue;
    return std::vector<std::string>(words.begin() + i, words.end());
  }
  return {};
}

// ---------------------------------------------------------------- merged view

struct Ref {
  size_t layer = 0;
  const FileEntry* entry = nullptr;
};

// The merged (overlay) view of the layers read so far: upper layers win,
// whiteouts and opaque directories hide what is below them.
class MergedView {
 public:
  void AddLayer(size_t index, const LayerFileList& files) {
    for (const FileEntry& e : files.entries) {
      if (e.type == FileType::kOpaqueDir) EraseBelow(e.path);
    }
    for (const FileEntry& e : files.entries) {
      if (e.type == FileType::kWhiteout) {
        map_.erase(absl::string_view(e.path));
        EraseBelow(e.path);
      }
    }
    for (const FileEntry& e : files.entries) {
      if (e.type == FileType::kWhiteout || e.type == FileType::kOpaqueDir) continue;
      // A non-directory replaces a lower directory and everything in it.
      if (e.type != FileType::kDirectory) EraseBelow(e.path);
      map_[absl::string_view(e.path)] = Ref{index, &e};
    }
  }

  const Ref* Find(absl::string_view path) const {
    auto it = map_.find(path);
    return it == map_.end() ? nullptr : &it->second;
  }

  // Something exists below `dir`: a directory even if no layer has an entry
  // for it (tar streams need not list parents).
  bool HasBelow(absl::string_view dir) const {
    const std::string prefix = absl::StrCat(dir, "/");
    auto it = map_.lower_bound(absl::string_view(prefix));
    return it != map_.end() && absl::StartsWith(it->first, prefix);
  }

 private:
  void EraseBelow(const std::string& dir) {
    if (dir.empty()) {
      map_.clear();
      return;
    }
    const std::string prefix = dir + "/";
    auto it = map_.lower_bound(absl::string_view(prefix));
    while (it != map_.end() && absl::StartsWith(it->first, prefix)) it = map_.erase(it);
  }

  std::map<absl::string_view, Ref, std::less<>> map_;
};

struct Hop {
  Ref link;
  std::string path;  // the symlink's path
};

struct Resolved {
  Ref ref;
  std::string path;  // where it resolved to (normalised, relative)
  std::vector<Hop> hops;
};

// Path resolution in the merged view, component by component, following
// symlinks (relative and absolute, the image root as "/"), as the kernel
// would inside the container.
std::optional<Resolved> Resolve(const MergedView& view, absl::string_view path) {
  std::vector<std::string> todo;  // components, reversed (back = next)
  auto push_path = [&todo](absl::string_view p) {
    std::vector<std::string> parts = absl::StrSplit(p, '/', absl::SkipEmpty());
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(std::move(*it));
  };
  push_path(path);
  Resolved out;
  std::string cur;
  int hops = 0;
  const Ref* last = nullptr;
  while (!todo.empty()) {
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c == ".") continue;
    if (c == "..") {
      cur = std::string(Dirname(cur));
      last = nullptr;
      continue;
    }
    std::string cand = cur.empty() ? c : absl::StrCat(cur, "/", c);
    const Ref* ref = view.Find(cand);
    if (ref == nullptr) {
      if (todo.empty() || !view.HasBelow(cand)) return std::nullopt;
      cur = std::move(cand);  // an implied directory
      last = nullptr;
      continue;
    }
    if (ref->entry->type == FileType::kSymlink) {
      if (++hops > kMaxSymlinkHops) return std::nullopt;
      out.hops.push_back(Hop{*ref, cand});
      const std::string& target = ref->entry->link_target;
      if (absl::StartsWith(target, "/")) cur.clear();
      push_path(target);
      last = nullptr;
      continue;
    }
    if (!todo.empty() && ref->entry->type != FileType::kDirectory) return std::nullopt;
    cur = std::move(cand);
    last = ref;
  }
  if (last == nullptr) return std::nullopt;  // resolved to the root or through ".."
  out.ref = *last;
  out.path = std::move(cur);
  return out;
}

bool IsFile(const Ref& r) {
  return r.entry->type == FileType::kRegular || r.entry->type == FileType::kHardlink;
}

// ---------------------------------------------------------------- per-layer scan

struct EngineHits {
  std::vector<std::string> strong;       // interpreters, runtime libraries (text per hit)
  size_t strong_count = 0;
  std::map<std::string, size_t> dirs;    // runtime tree -> files in it
  std::map<std::string, std::string> dir_sample;
};

struct LayerScan {
  std::map<std::string, EngineHits> engines;  // by engine name
};

LayerScan ScanLayer(const LayerFileList& files) {
  LayerScan scan;
  for (const FileEntry& e : files.entries) {
    if (e.type != FileType::kRegular && e.type != FileType::kHardlink) continue;
    const absl::string_view base = Basename(e.path);
    std::string engine;
    std::string what;
    if (InBinDir(e.path) && e.executable()) {
      engine = EngineOfExecutable(base);
      if (!engine.empty()) what = absl::StrCat(engine, " interpreter ", e.path);
    }
    if (engine.empty()) {
      engine = EngineOfLibrary(base);
      if (!engine.empty()) what = absl::StrCat(engine, " runtime library ", e.path);
    }
    if (!engine.empty()) {
      EngineHits& h = scan.engines[engine];
      if (h.strong.size() < kMaxSamples) h.strong.push_back(std::move(what));
      ++h.strong_count;
      continue;
    }
    if (auto dir = RuntimeDirOf(e.path)) {
      EngineHits& h = scan.engines[dir->first];
      if (++h.dirs[dir->second] == 1) h.dir_sample[dir->second] = e.path;
    }
  }
  return scan;
}

void AddEngineEvidence(const std::string& engine, const EngineHits& h, std::vector<Evidence>* out) {
  for (const std::string& s : h.strong) out->push_back({LayerClass::kEngine, s});
  if (h.strong_count > h.strong.size()) {
    out->push_back({LayerClass::kEngine,
                    absl::StrCat("and ", h.strong_count - h.strong.size(), " more ", engine,
                                 " interpreters or runtime libraries")});
  }
  // The biggest runtime trees first.
  std::vector<std::pair<size_t, std::string>> dirs;
  for (const auto& [dir, n] : h.dirs) dirs.emplace_back(n, dir);
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < dirs.size() && i < 2; ++i) {
    const auto& [n, dir] = dirs[i];
    out->push_back({LayerClass::kEngine, absl::StrCat(n, " ", engine, " runtime files under /", dir, " (e.g. ",
                                                      h.dir_sample.at(dir), ")")});
  }
  if (dirs.size() > 2) {
    out->push_back({LayerClass::kEngine,
                    absl::StrCat("and ", dirs.size() - 2, " more ", engine, " runtime directories")});
  }
}

// Files (not directories) below `dir` in a layer: count and a sample.
std::pair<size_t, std::string> FilesBelow(const LayerFileList& files, const std::string& dir) {
  const std::string prefix = dir + "/";
  size_t n = 0;
  std::string sample;
  for (const FileEntry& e : files.entries) {
    if (e.type == FileType::kDirectory || e.type == FileType::kWhiteout || e.type == FileType::kOpaqueDir) continue;
    if (!absl::StartsWith(e.path, prefix)) continue;
    if (n++ == 0) sample = e.path;
  }
  return {n, sample};
}

// WorkingDir values that name a system directory say nothing about the app.
bool IsSystemDir(absl::string_view dir) {
  static const std::set<absl::string_view> kSystem = {
      "",    "usr", "etc", "bin",  "sbin", "lib",  "lib32", "lib64", "libx32", "var", "opt",
      "tmp", "root", "home", "run", "dev", "proc", "sys",  "mnt",   "media",  "srv", "usr/local",
      "usr/bin", "usr/lib", "usr/share", "usr/local/bin"};
  return kSystem.count(dir) > 0;
}

constexpr const char* kAppDirs[] = {"app", "usr/src/app", "usr/app", "opt/app", "home/app",
                                    "srv/app", "workspace", "code", "application"};

// ---------------------------------------------------------------- argv

class ArgvWalker {
 public:
  // `rootfs[i]`: layer i is the image's root filesystem (the bottom layer,
  // or an ADD of a rootfs archive to "/").
  ArgvWalker(const ImageConfigFacts& facts, const MergedView& view, std::vector<bool> rootfs,
             std::vector<std::vector<Evidence>>* evidence, std::vector<std::string>* notes)
      : facts_(facts), view_(view), rootfs_(std::move(rootfs)), evidence_(evidence), notes_(notes),
        workdir_(NormalizePath(facts.working_dir)) {}

  const std::set<std::string>& interpreters() const { return interpreters_; }

  // `quiet`: say nothing when the program is not found (Cmd as the
  // arguments of an entrypoint script).
  void Walk(std::vector<std::string> argv, const std::string& label, bool quiet) {
    bool script_mode = false;
    for (int step = 0; step < kMaxArgvSteps && !argv.empty(); ++step) {
      const std::string prog = argv[0];
      if (prog.empty() || absl::StartsWith(prog, "-")) return;
      std::optional<Resolved> found = script_mode ? FindScript(prog) : FindProgram(prog);
      if (!found) {
        if (!quiet) notes_->push_back(absl::StrCat(label, " ", prog, " is not found in the layers read"));
        return;
      }
      AddHops(*found, label, prog);
      std::string name(Basename(prog));
      const std::string real(Basename(found->path));
      const size_t layer = found->ref.layer;
      std::string where = absl::StrCat(label, " ", prog, " resolves to /", found->path, " in this layer");
      if (real == "busybox" && name == "busybox") {  // `busybox APPLET ...`: the applet is the program
        if (argv.size() < 2) {
          Add(layer, LayerClass::kBase, absl::StrCat(where, " (busybox without an applet)"));
          return;
        }
        argv.erase(argv.begin());
        name = argv[0];
        where = absl::StrCat(label, " ", prog, " ", name, " resolves to /", found->path, " in this layer");
      }
      if (IsWrapper(name) || IsWrapper(real)) {
        Add(layer, LayerClass::kBase, absl::StrCat(where, " (a wrapper; the command follows)"));
        argv = PeelWrapper(IsWrapper(name) ? name : real, std::move(argv));
        script_mode = false;
        continue;
      }
      if (IsShell(name) || IsShell(real)) {
        size_t i = 1;
        bool dash_c = false;
        while (i < argv.size() && absl::StartsWith(argv[i], "-") && argv[i] != "--" && !dash_c) {
          dash_c = argv[i].find('c') != std::string::npos && !absl::StartsWith(argv[i], "--");
          ++i;
        }
        if (i < argv.size() && argv[i] == "--") ++i;
        if (dash_c && i < argv.size()) {
          Add(layer, LayerClass::kBase, absl::StrCat(where, " (a shell running \"", Shorten(argv[i]), "\")"));
          argv = FirstCommand(argv[i]);
          script_mode = false;
          continue;
        }
        if (!dash_c && i < argv.size()) {
          Add(layer, LayerClass::kBase, absl::StrCat(where, " (a shell running the script ", argv[i], ")"));
          argv.erase(argv.begin(), argv.begin() + static_cast<std::ptrdiff_t>(i));
          script_mode = true;
          continue;
        }
        Add(layer, LayerClass::kBase, absl::StrCat(where, " (a shell: base system)"));
        return;
      }
      std::string engine = EngineOfExecutable(real);
      if (engine.empty()) engine = EngineOfExecutable(name);
      if (!engine.empty()) {
        interpreters_.insert(engine);
        Add(layer, LayerClass::kEngine, absl::StrCat(where, ": the ", engine, " interpreter"));
        std::optional<std::string> script = ScriptArg(engine, argv);
        if (!script) return;
        std::optional<Resolved> s = FindScript(*script);
        if (!s) {
          if (!quiet) notes_->push_back(absl::StrCat(label, " script ", *script, " is not found in the layers read"));
          return;
        }
        AddHops(*s, label, *script);
        Add(s->ref.layer, LayerClass::kApplication,
            absl::StrCat(label, " script ", *script, " resolves to /", s->path, " in this layer"));
        return;
      }
      // `cat`, `sleep` or busybox from the root filesystem: the start reads
      // one binary of a big shared layer; the trace will find it, the layer
      // itself goes by LASS.
      if (layer < rootfs_.size() && rootfs_[layer] && InBinDir(found->path)) {
        Add(layer, LayerClass::kBase, absl::StrCat(where, " (a base-system tool of the root filesystem)"));
        return;
      }
      Add(layer, LayerClass::kApplication, where);
      return;
    }
  }

 private:
  static std::string Shorten(const std::string& s) {
    return s.size() <= 80 ? s : absl::StrCat(s.substr(0, 77), "...");
  }

  void Add(size_t layer, LayerClass c, std::string text) {
    if (layer < evidence_->size()) (*evidence_)[layer].push_back({c, std::move(text)});
  }

  void AddHops(const Resolved& r, const std::string& label, const std::string& what) {
    for (const Hop& h : r.hops) {
      Add(h.link.layer, LayerClass::kBase,
          absl::StrCat(label, " ", what, ": /", h.path, " is a symlink to ", h.link.entry->link_target,
                       " in this layer"));
    }
  }

  std::optional<Resolved> FindFile(const std::string& path) const {
    auto r = Resolve(view_, path);
    if (!r || !IsFile(r->ref)) return std::nullopt;
    return r;
  }

  // execvp: a name with a slash is a path (relative to WorkingDir), else the
  // first executable file of that name in PATH.
  std::optional<Resolved> FindProgram(const std::string& prog) const {
    if (prog.find('/') != std::string::npos) {
      return FindFile(absl::StartsWith(prog, "/") ? NormalizePath(prog) : NormalizePath(workdir_ + "/" + prog));
    }
    std::optional<Resolved> not_executable;
    for (absl::string_view dir : absl::StrSplit(facts_.path, ':', absl::SkipEmpty())) {
      if (!absl::StartsWith(dir, "/")) continue;
      auto r = FindFile(NormalizePath(absl::StrCat(dir, "/", prog)));
      if (!r) continue;
      if (r->ref.entry->executable()) return r;
      if (!not_executable) not_executable = std::move(r);
    }
    return not_executable;
  }

  // A script given to an interpreter: relative to WorkingDir, else (a bare
  // name, as bash does) through PATH.
  std::optional<Resolved> FindScript(const std::string& script) const {
    if (absl::StartsWith(script, "/")) return FindFile(NormalizePath(script));
    if (auto r = FindFile(NormalizePath(workdir_ + "/" + script))) return r;
    if (script.find('/') == std::string::npos) return FindProgram(script);
    return std::nullopt;
  }

  static std::vector<std::string> PeelWrapper(const std::string& wrapper, std::vector<std::string> argv) {
    size_t i = 1;
    if (wrapper == "gosu" || wrapper == "su-exec") {
      i = 2;  // the user
    } else if (wrapper == "chroot") {
      i = 2;  // the new root: we cannot follow it
      return {};
    } else {
      while (i < argv.size() &&
             (absl::StartsWith(argv[i], "-") || (wrapper == "env" && IsAssignment(argv[i])))) {
        if (argv[i] == "--") {
          ++i;
          break;
        }
        ++i;
      }
    }
    if (i >= argv.size()) return {};
    argv.erase(argv.begin(), argv.begin() + static_cast<std::ptrdiff_t>(i));
    return argv;
  }

  // The file an interpreter runs, if the argv names one.
  static std::optional<std::string> ScriptArg(const std::string& engine, const std::vector<std::string>& argv) {
    for (size_t i = 1; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (engine == "python") {
        if (a == "-m" || a == "-c") return std::nullopt;
        if (a == "-W" || a == "-X") {
          ++i;
          continue;
        }
      } else if (engine == "java") {
        if (a == "-jar") return i + 1 < argv.size() ? std::optional<std::string>(argv[i + 1]) : std::nullopt;
        if (a == "-cp" || a == "-classpath" || a == "--class-path" || a == "-p" || a == "--module-path") {
          ++i;
          continue;
        }
        if (!absl::StartsWith(a, "-")) return std::nullopt;  // a main class, not a file
      } else if (engine == "node" || engine == "deno" || engine == "bun") {
        if (a == "run") continue;
        if (a == "-r" || a == "--require" || a == "-e" || a == "--eval") {
          if (a == "-e" || a == "--eval") return std::nullopt;
          ++i;
          continue;
        }
      } else if (engine == "dotnet") {
        if (absl::EndsWith(a, ".dll")) return a;
        continue;
      } else if (engine == "erlang") {
        return std::nullopt;
      }
      if (absl::StartsWith(a, "-")) continue;
      return a;
    }
    return std::nullopt;
  }

  const ImageConfigFacts& facts_;
  const MergedView& view_;
  const std::vector<bool> rootfs_;
  std::vector<std::vector<Evidence>>* evidence_;
  std::vector<std::string>* notes_;
  const std::string workdir_;
  std::set<std::string> interpreters_;
};

// Why a layer with nothing else to show is base system: what it holds.
std::string BaseSummary(const LayerFileList& files) {
  if (files.entries.empty()) return "empty layer";
  std::set<std::string> top;
  for (const FileEntry& e : files.entries) {
    if (e.type == FileType::kWhiteout || e.type == FileType::kOpaqueDir) continue;
    top.insert(std::string(absl::string_view(e.path).substr(0, e.path.find('/'))));
  }
  std::vector<std::string> names(top.begin(), top.end());
  std::string list = absl::StrJoin(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(names.size(), 8)), ", ");
  if (names.size() > 8) absl::StrAppend(&list, ", ...");
  if (names.empty()) list = "whiteouts only";
  return absl::StrCat("no engine or application files among ", files.entries.size(), " entries (top level: ", list, ")");
}

std::string QuoteArgv(const std::vector<std::string>& argv) {
  return nlohmann::json(argv).dump();
}

}  // namespace

// ---------------------------------------------------------------- public

const char* LayerClassName(LayerClass c) {
  switch (c) {
    case LayerClass::kUnknown: return "unknown";
    case LayerClass::kBase: return "base";
    case LayerClass::kEngine: return "engine";
    case LayerClass::kApplication: return "application";
  }
  return "unknown";
}

const char* FileListStateName(FileListState s) {
  switch (s) {
    case FileListState::kPending: return "pending";
    case FileListState::kRead: return "read";
    case FileListState::kUnreadable: return "unreadable";
  }
  return "pending";
}

std::string EngineOfExecutable(absl::string_view b) {
  if (StemWithVersion(b, "python") || StemWithVersion(b, "pypy")) return "python";
  if (b == "node" || b == "nodejs") return "node";
  if (b == "deno") return "deno";
  if (b == "bun") return "bun";
  if (b == "java") return "java";
  if (StemWithVersion(b, "ruby")) return "ruby";
  if (StemWithVersion(b, "perl")) return "perl";
  if (StemWithVersion(b, "php") || StemWithVersion(b, "php-fpm") || b == "php-cgi") return "php";
  if (b == "dotnet") return "dotnet";
  if (b == "erl" || b == "erlexec" || b == "beam.smp" || b == "beam") return "erlang";
  return "";
}

std::pair<std::string, std::string> EngineOfBuildStep(absl::string_view created_by) {
  std::vector<absl::string_view> words =
      absl::StrSplit(created_by, absl::ByAnyChar(" \t\n;&|()'\"=,:/\\"), absl::SkipEmpty());
  auto installer = [&words](size_t i, absl::string_view tool, absl::string_view verb) {
    return words[i] == tool && i + 1 < words.size() && words[i + 1] == verb;
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const absl::string_view w = words[i];
    const std::string found(w);
    // Installers of a runtime's packages.
    if (installer(i, "pip", "install") || installer(i, "pip3", "install")) return {"python", "pip install"};
    if (installer(i, "npm", "install") || installer(i, "npm", "ci") || installer(i, "yarn", "install")) {
      return {"node", absl::StrCat("npm ", words[i + 1])};
    }
    if (installer(i, "gem", "install") || installer(i, "bundle", "install")) return {"ruby", absl::StrCat(w, " install")};
    if (installer(i, "composer", "install") || w == "docker-php-ext-install") return {"php", found};
    // Package and archive names.
    if (StemWithVersion(w, "python") || absl::StartsWith(w, "python3-") || absl::StartsWith(w, "libpython")) {
      return {"python", found};
    }
    if (absl::StartsWith(w, "openjdk") || absl::StartsWith(w, "default-jre") || absl::StartsWith(w, "default-jdk") ||
        absl::StartsWith(w, "temurin") || absl::StartsWith(w, "OpenJDK") || absl::StrContains(w, "-jre-") ||
        absl::EndsWith(w, "-jre") || absl::EndsWith(w, "-jdk") || absl::StrContains(w, "-jdk-")) {
      return {"java", found};
    }
    if (w == "nodejs" || absl::StartsWith(w, "node-v")) return {"node", found};
    if (StemWithVersion(w, "ruby") || (absl::StartsWith(w, "ruby") && absl::StrContains(w, "-dev"))) return {"ruby", found};
    if (StemWithVersion(w, "php") || absl::StartsWith(w, "php8") || absl::StartsWith(w, "php-fpm") ||
        absl::StartsWith(w, "libapache2-mod-php")) {
      return {"php", found};
    }
    if (absl::StartsWith(w, "dotnet-runtime") || absl::StartsWith(w, "aspnetcore-runtime") ||
        absl::StartsWith(w, "dotnet-sdk")) {
      return {"dotnet", found};
    }
    if (w == "erlang" || absl::StartsWith(w, "erlang-") || w == "elixir") return {"erlang", found};
  }
  return {"", ""};
}

bool BuildStep::IsRootfs(bool first_layer) const {
  if (kind == Kind::kOther || !NormalizePath(destination).empty()) return false;
  if (first_layer) return true;
  for (const std::string& s : sources) {
    if (absl::StartsWith(s, "file:")) return true;
    for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst"}) {
      if (absl::EndsWith(s, ext)) return true;
    }
  }
  return false;
}

BuildStep ParseCreatedBy(absl::string_view created_by) {
  BuildStep step;
  absl::string_view s = absl::StripAsciiWhitespace(created_by);
  // The classic builder: `/bin/sh -c #(nop) COPY file:<hex> in /app/ `;
  // BuildKit: `COPY app.py /app/ # buildkit`; buildah and kaniko similar.
  if (absl::ConsumePrefix(&s, "/bin/sh -c ")) {
    s = absl::StripLeadingAsciiWhitespace(s);
    if (!absl::ConsumePrefix(&s, "#(nop)")) return step;  // a RUN
    s = absl::StripAsciiWhitespace(s);
  }
  // A builder's note after the instruction ("# buildkit", "# debootstrap
  // ... <mirror>", buildah's "# <timestamp>"): a Dockerfile instruction
  // has no inline comments, so " # " starts one. The JSON form's strings
  // may hold " # ": only cut after its closing bracket.
  {
    const size_t json_end = s.rfind(']');
    const size_t from = json_end == absl::string_view::npos ? 0 : json_end;
    if (const size_t hash = s.find(" #", from); hash != absl::string_view::npos) {
      s = absl::StripAsciiWhitespace(s.substr(0, hash));
    }
  }
  std::vector<std::string> words = ShellWords(s);
  if (words.empty()) return step;
  if (words[0] == "COPY") {
    step.kind = BuildStep::Kind::kCopy;
  } else if (words[0] == "ADD") {
    step.kind = BuildStep::Kind::kAdd;
  } else {
    return step;
  }
  step.instruction = std::string(s.substr(0, kMaxInstruction));
  std::vector<std::string> args;
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(s.substr(words[0].size()));
  while (absl::StartsWith(rest, "--")) {  // --from=, --chown=, --chmod=, --link
    const size_t sp = rest.find(' ');
    rest = sp == absl::string_view::npos ? absl::string_view() : absl::StripLeadingAsciiWhitespace(rest.substr(sp));
  }
  if (absl::StartsWith(rest, "[")) {  // the JSON form
    nlohmann::json arr = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
    if (arr.is_array()) {
      for (const auto& v : arr) {
        if (v.is_string()) args.push_back(v.get<std::string>());
      }
    }
  } else {
    args = ShellWords(rest);
  }
  if (args.empty()) return step;
  step.destination = args.back();
  args.pop_back();
  if (!args.empty() && args.back() == "in") args.pop_back();  // "file:<hex> in /dest"
  step.sources = std::move(args);
  return step;
}

ImageAnalysis AnalyzeImage(const ImageConfigFacts& facts, const std::vector<LayerInput>& layers) {
  const size_t n = layers.size();
  ImageAnalysis out;
  out.layers.resize(n);
  std::vector<std::vector<Evidence>> evidence(n);

  out.notes.push_back(absl::StrCat("argv ", QuoteArgv(facts.Argv()), " (entrypoint ", QuoteArgv(facts.entrypoint),
                                   ", cmd ", QuoteArgv(facts.cmd), ")"));
  out.notes.push_back(absl::StrCat("WorkingDir \"", facts.working_dir, "\", PATH ", facts.path,
                                   facts.path_from_env ? "" : " (default)"));
  if (!facts.history_note.empty()) out.notes.push_back(facts.history_note);
  if (!facts.diff_ids.empty() && facts.diff_ids.size() != n) {
    out.notes.push_back(absl::StrCat("the config has ", facts.diff_ids.size(), " diff_ids for ", n, " layers"));
  }

  // History: COPY and ADD steps add the application's files.
  const bool history_mapped = facts.layer_created_by.size() == n;
  std::vector<bool> rootfs(n, false);
  if (n > 0) rootfs[0] = true;
  for (size_t i = 0; i < n && history_mapped; ++i) {
    out.layers[i].created_by = facts.layer_created_by[i];
    BuildStep step = ParseCreatedBy(facts.layer_created_by[i]);
    // The bottom layer is the root filesystem unless its step copied
    // something else (FROM scratch + COPY app /app).
    if (i == 0) rootfs[0] = step.kind == BuildStep::Kind::kOther || step.IsRootfs(true);
    if (step.kind == BuildStep::Kind::kOther) {
      if (layers[i].state == FileListState::kPending && !rootfs[i]) {
        const auto [engine, word] = EngineOfBuildStep(facts.layer_created_by[i]);
        if (!engine.empty()) {
          std::string cb = facts.layer_created_by[i];
          if (cb.size() > 120) cb = absl::StrCat(cb.substr(0, 117), "...");
          evidence[i].push_back({LayerClass::kEngine, absl::StrCat("history: ", cb, " (installs ", engine, ": ", word, ")")});
        }
      }
      continue;
    }
    rootfs[i] = rootfs[i] || step.IsRootfs(i == 0);
    if (step.IsRootfs(i == 0)) {
      evidence[i].push_back({LayerClass::kBase, absl::StrCat("history: ", step.instruction, " (a root filesystem)")});
    } else {
      evidence[i].push_back({LayerClass::kApplication, absl::StrCat("history: ", step.instruction)});
    }
  }

  // File lists: engines, WorkingDir, /app-like directories.
  const std::string workdir = NormalizePath(facts.working_dir);
  const bool use_workdir = !IsSystemDir(workdir);
  std::vector<LayerScan> scans(n);
  MergedView view;
  size_t not_read = 0;
  size_t pending = 0;
  for (size_t i = 0; i < n; ++i) {
    const LayerInput& in = layers[i];
    if (in.state != FileListState::kRead || in.files == nullptr) {
      ++not_read;
      pending += in.state == FileListState::kUnreadable ? 0 : 1;
      continue;
    }
    const LayerFileList& files = *in.files;
    out.layers[i].entries = files.entries.size();
    out.layers[i].regular_bytes = files.regular_bytes;
    out.layers[i].disk_bytes = files.disk_bytes;
    view.AddLayer(i, files);
    scans[i] = ScanLayer(files);
    if (use_workdir) {
      auto [count, sample] = FilesBelow(files, workdir);
      if (count > 0) {
        evidence[i].push_back({LayerClass::kApplication, absl::StrCat(count, " files under WorkingDir /", workdir,
                                                                     " (e.g. ", sample, ")")});
      }
    }
    for (const char* dir : kAppDirs) {
      if (use_workdir && workdir == dir) continue;
      auto [count, sample] = FilesBelow(files, dir);
      if (count > 0) {
        evidence[i].push_back(
            {LayerClass::kApplication, absl::StrCat(count, " files under /", dir, " (e.g. ", sample, ")")});
      }
    }
  }
  if (not_read > 0) {
    out.notes.push_back(absl::StrCat(not_read, " of ", n, " layers without a file list: paths are resolved through ",
                                     "the others"));
  }

  // The entrypoint, through PATH and symlinks across layers.
  std::vector<size_t> before_walk(n);
  for (size_t i = 0; i < n; ++i) before_walk[i] = evidence[i].size();
  ArgvWalker walker(facts, view, rootfs, &evidence, &out.notes);
  const std::vector<std::string> argv = facts.Argv();
  walker.Walk(argv, facts.entrypoint.empty() ? "cmd" : "entrypoint", /*quiet=*/false);
  // An entrypoint script usually ends with `exec "$@"`: Cmd is then a
  // command too.
  if (!facts.entrypoint.empty() && !facts.cmd.empty()) walker.Walk(facts.cmd, "cmd", /*quiet=*/true);
  // What the entrypoint runs is the strongest reason: it goes first.
  for (size_t i = 0; i < n; ++i) {
    std::rotate(evidence[i].begin(), evidence[i].begin() + static_cast<std::ptrdiff_t>(before_walk[i]),
                evidence[i].end());
  }

  for (size_t i = 0; i < n; ++i) {
    for (const auto& [engine, hits] : scans[i].engines) {
      // Debian's base system carries perl; it is an engine only when it runs
      // the entrypoint.
      if (engine == "perl" && walker.interpreters().count("perl") == 0) continue;
      AddEngineEvidence(engine, hits, &evidence[i]);
    }
  }

  out.complete = pending == 0;
  for (size_t i = 0; i < n; ++i) {
    LayerAnalysis& la = out.layers[i];
    const LayerInput& in = layers[i];
    la.files = in.files == nullptr && in.state == FileListState::kRead ? FileListState::kPending : in.state;
    std::vector<Evidence> ev;
    std::set<std::string> seen;
    for (Evidence& e : evidence[i]) {
      if (seen.insert(e.text).second) ev.push_back(std::move(e));
    }
    LayerClass strongest = LayerClass::kUnknown;
    for (const Evidence& e : ev) strongest = std::max(strongest, e.supports);
    std::stable_sort(ev.begin(), ev.end(), [](const Evidence& a, const Evidence& b) { return a.supports > b.supports; });
    switch (la.files) {
      case FileListState::kUnreadable:
        la.layer_class = LayerClass::kUnknown;
        ev.insert(ev.begin(), Evidence{LayerClass::kUnknown, absl::StrCat("file list unreadable: ", in.error)});
        break;
      case FileListState::kPending:
        la.provisional = true;
        la.layer_class = strongest;
        ev.push_back({LayerClass::kUnknown, "file list not read yet"});
        break;
      case FileListState::kRead:
        la.layer_class = std::max(strongest, LayerClass::kBase);
        if (strongest < LayerClass::kEngine) ev.push_back({LayerClass::kBase, BaseSummary(*in.files)});
        break;
    }
    la.evidence = std::move(ev);
    la.keep_fast = KeepFast(la.layer_class);
  }
  return out;
}

}  // namespace ndocker::hbcsa
