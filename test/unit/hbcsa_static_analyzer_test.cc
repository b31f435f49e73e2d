// Static analysis of images made of hand-written file lists (pure), and of
// real blobs in a content store (AnalyzeStoredImage): layer classes and the
// evidence for them.
#include "hbcsa/static_analyzer.h"

#include <catch2/catch.hpp>

#include "hbcsa/image_reader.h"
#include "hbcsa_blobs.h"
#include "temp_dir.h"

namespace ndocker::hbcsa {
namespace {

FileEntry F(std::string path, int64_t size = 10) { return {std::move(path), "", size, 0644, FileType::kRegular}; }
FileEntry X(std::string path, int64_t size = 100) { return {std::move(path), "", size, 0755, FileType::kRegular}; }
FileEntry D(std::string path) { return {std::move(path), "", 0, 0755, FileType::kDirectory}; }
FileEntry S(std::string path, std::string target) { return {std::move(path), std::move(target), 0, 0777, FileType::kSymlink}; }
FileEntry H(std::string path, std::string target) { return {std::move(path), std::move(target), 0, 0755, FileType::kHardlink}; }
FileEntry W(std::string path) { return {std::move(path), "", 0, 0, FileType::kWhiteout}; }
FileEntry O(std::string path) { return {std::move(path), "", 0, 0, FileType::kOpaqueDir}; }

LayerFileList List(std::vector<FileEntry> entries) {
  LayerFileList l;
  for (const FileEntry& e : entries) l.regular_bytes += e.type == FileType::kRegular ? e.size : 0;
  l.entries = std::move(entries);
  return l;
}

// A small Debian-like base: shells, coreutils, libc, dpkg's database, perl-base.
LayerFileList Base() {
  return List({D("bin"), X("bin/bash"), S("bin/sh", "dash"), X("bin/dash"), X("bin/ls"), X("bin/cat"),
               D("etc"), F("etc/passwd"), F("etc/os-release"), D("lib"), D("lib/x86_64-linux-gnu"),
               X("lib/x86_64-linux-gnu/libc.so.6"), D("lib64"), S("lib64/ld-linux-x86-64.so.2",
               "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), D("usr"), D("usr/bin"), X("usr/bin/env"),
               X("usr/bin/perl"), X("usr/bin/perl5.36.0"), F("usr/lib/x86_64-linux-gnu/perl-base/strict.pm"),
               D("var/lib/dpkg"), F("var/lib/dpkg/status"), D("root"), F("root/.bashrc"), D("tmp")});
}

std::vector<LayerInput> Inputs(const std::vector<const LayerFileList*>& lists) {
  std::vector<LayerInput> in;
  for (size_t i = 0; i < lists.size(); ++i) {
    LayerInput l;
    l.digest = "sha256:" + std::string(64, static_cast<char>('a' + i));
    l.chain_id = "sha256:" + std::string(64, static_cast<char>('0' + i));
    if (lists[i] != nullptr) {
      l.state = FileListState::kRead;
      l.files = lists[i];
    }
    in.push_back(std::move(l));
  }
  return in;
}

ImageConfigFacts Facts(std::vector<std::string> entrypoint, std::vector<std::string> cmd, std::string workdir,
                       std::vector<std::string> history = {}) {
  ImageConfigFacts f;
  f.entrypoint = std::move(entrypoint);
  f.cmd = std::move(cmd);
  f.working_dir = std::move(workdir);
  f.layer_created_by = std::move(history);
  return f;
}

bool HasEvidence(const LayerAnalysis& la, LayerClass supports, const std::string& text) {
  for (const Evidence& e : la.evidence) {
    if (e.supports == supports && e.text == text) return true;
  }
  return false;
}

std::string Dump(const ImageAnalysis& a) {
  std::string s;
  for (const std::string& n : a.notes) s += "note: " + n + "\n";
  for (size_t i = 0; i < a.layers.size(); ++i) {
    s += "layer " + std::to_string(i) + ": " + LayerClassName(a.layers[i].layer_class) + "\n";
    for (const Evidence& e : a.layers[i].evidence) {
      s += std::string("  [") + LayerClassName(e.supports) + "] " + e.text + "\n";
    }
  }
  return s;
}

TEST_CASE("hbcsa: created_by lines from the classic builder, BuildKit and others", "[hbcsa]") {
  BuildStep s = ParseCreatedBy("/bin/sh -c #(nop) COPY file:0a1b2c in /app/ ");
  CHECK(s.kind == BuildStep::Kind::kCopy);
  CHECK(s.instruction == "COPY file:0a1b2c in /app/");
  CHECK(s.destination == "/app/");
  CHECK(s.sources == std::vector<std::string>{"file:0a1b2c"});
  CHECK_FALSE(s.IsRootfs(false));

  s = ParseCreatedBy("/bin/sh -c #(nop) ADD file:e2bd6de32ab8 in / ");
  CHECK(s.kind == BuildStep::Kind::kAdd);
  CHECK(s.IsRootfs(false));

  s = ParseCreatedBy("COPY app.py /app/ # buildkit");
  CHECK(s.kind == BuildStep::Kind::kCopy);
  CHECK(s.instruction == "COPY app.py /app/");
  CHECK(s.destination == "/app/");

  s = ParseCreatedBy("COPY --from=build --chown=1000:1000 /out/server /usr/local/bin/ # buildkit");
  CHECK(s.kind == BuildStep::Kind::kCopy);
  CHECK(s.sources == std::vector<std::string>{"/out/server"});
  CHECK(s.destination == "/usr/local/bin/");

  s = ParseCreatedBy("ADD alpine-minirootfs-3.19.0-x86_64.tar.gz / # buildkit");
  CHECK(s.kind == BuildStep::Kind::kAdd);
  CHECK(s.IsRootfs(false));

  s = ParseCreatedBy("COPY [\"run.sh\", \"/usr/local/bin/\"] # buildkit");
  CHECK(s.kind == BuildStep::Kind::kCopy);
  CHECK(s.sources == std::vector<std::string>{"run.sh"});
  CHECK(s.destination == "/usr/local/bin/");

  // Another builder's note after the instruction (the corpus's base layer).
  s = ParseCreatedBy("ADD rootfs.tar / # debootstrap --variant=minbase bookworm http://deb.debian.org/debian/");
  CHECK(s.kind == BuildStep::Kind::kAdd);
  CHECK(s.sources == std::vector<std::string>{"rootfs.tar"});
  CHECK(s.destination == "/");
  CHECK(s.IsRootfs(false));
  s = ParseCreatedBy("COPY [\"a # b.txt\", \"/app/\"] # buildkit");
  CHECK(s.sources == std::vector<std::string>{"a # b.txt"});
  CHECK(s.destination == "/app/");

  s = ParseCreatedBy("COPY . / # buildkit");
  CHECK_FALSE(s.IsRootfs(false));
  CHECK(s.IsRootfs(true));

  CHECK(ParseCreatedBy("/bin/sh -c apt-get update && apt-get install -y python3").kind == BuildStep::Kind::kOther);
  CHECK(ParseCreatedBy("RUN /bin/sh -c pip install flask # buildkit").kind == BuildStep::Kind::kOther);
  CHECK(ParseCreatedBy("/bin/sh -c #(nop)  CMD [\"python3\"]").kind == BuildStep::Kind::kOther);
  CHECK(ParseCreatedBy("").kind == BuildStep::Kind::kOther);
}

TEST_CASE("hbcsa: RUN steps that install an engine", "[hbcsa]") {
  using P = std::pair<std::string, std::string>;
  CHECK(EngineOfBuildStep("RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends "
                          "openjdk-17-jre-headless && rm -rf /var/lib/apt/lists/* # buildkit") ==
        P{"java", "openjdk-17-jre-headless"});
  CHECK(EngineOfBuildStep("/bin/sh -c apt-get install -y python3 python3-pip") == P{"python", "python3"});
  CHECK(EngineOfBuildStep("RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt # buildkit") ==
        P{"python", "pip install"});
  CHECK(EngineOfBuildStep("RUN /bin/sh -c npm ci --omit=dev # buildkit") == P{"node", "npm ci"});
  CHECK(EngineOfBuildStep("/bin/sh -c set -ex && curl -fsSLO https://nodejs.org/dist/v20.11.0/node-v20.11.0-linux-x64.tar.xz")
            .first == "node");
  CHECK(EngineOfBuildStep("/bin/sh -c apk add --no-cache ruby ruby-dev && gem install bundler").first == "ruby");
  CHECK(EngineOfBuildStep("/bin/sh -c docker-php-ext-install pdo_mysql").first == "php");
  CHECK(EngineOfBuildStep("RUN /bin/sh -c apt-get install -y dotnet-runtime-8.0").first == "dotnet");
  CHECK(EngineOfBuildStep("/bin/sh -c apt-get install -y nginx curl ca-certificates").first.empty());
  CHECK(EngineOfBuildStep("/bin/sh -c groupadd -r redis && useradd -r -g redis redis").first.empty());
  CHECK(EngineOfBuildStep("").first.empty());
}

TEST_CASE("hbcsa: engine executables by name", "[hbcsa]") {
  CHECK(EngineOfExecutable("python3.11") == "python");
  CHECK(EngineOfExecutable("python3") == "python");
  CHECK(EngineOfExecutable("python3.7m") == "python");
  CHECK(EngineOfExecutable("python3-config") == "");
  CHECK(EngineOfExecutable("node") == "node");
  CHECK(EngineOfExecutable("java") == "java");
  CHECK(EngineOfExecutable("javac") == "");
  CHECK(EngineOfExecutable("ruby3.1") == "ruby");
  CHECK(EngineOfExecutable("php-fpm8.2") == "php");
  CHECK(EngineOfExecutable("perl") == "perl");
  CHECK(EngineOfExecutable("beam.smp") == "erlang");
  CHECK(EngineOfExecutable("dotnet") == "dotnet");
  CHECK(EngineOfExecutable("bash") == "");
}

TEST_CASE("hbcsa: a python app: base, interpreter, COPY'd app, pip packages", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList python = List({D("usr/local/bin"), X("usr/local/bin/python3.11"),
                                     S("usr/local/bin/python3", "python3.11"),
                                     X("usr/local/lib/libpython3.11.so.1.0"),
                                     F("usr/local/lib/python3.11/os.py"), F("usr/local/lib/python3.11/json/__init__.py")});
  const LayerFileList app = List({D("app"), F("app/app.py"), F("app/templates/index.html")});
  const LayerFileList pip = List({F("usr/local/lib/python3.11/site-packages/flask/__init__.py")});
  ImageConfigFacts facts = Facts({}, {"python3", "app.py"}, "/app",
                                 {"/bin/sh -c #(nop) ADD file:e2bd6de32ab8 in / ",
                                  "RUN /bin/sh -c set -eux; ./configure && make install # buildkit",
                                  "COPY app.py templates /app/ # buildkit",
                                  "RUN /bin/sh -c pip install flask # buildkit"});
  facts.path = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin";
  const ImageAnalysis a = AnalyzeImage(facts, Inputs({&base, &python, &app, &pip}));
  INFO(Dump(a));
  REQUIRE(a.layers.size() == 4);
  CHECK(a.complete);

  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK_FALSE(a.layers[0].keep_fast);
  CHECK(HasEvidence(a.layers[0], LayerClass::kBase, "history: ADD file:e2bd6de32ab8 in / (a root filesystem)"));
  // perl is in the base system, but it does not run the entrypoint.
  for (const Evidence& e : a.layers[0].evidence) CHECK(e.supports == LayerClass::kBase);

  CHECK(a.layers[1].layer_class == LayerClass::kEngine);
  CHECK(a.layers[1].keep_fast);
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine,
                    "cmd python3 resolves to /usr/local/bin/python3.11 in this layer: the python interpreter"));
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine, "python interpreter usr/local/bin/python3.11"));
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine, "python runtime library usr/local/lib/libpython3.11.so.1.0"));
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine,
                    "2 python runtime files under /usr/local/lib/python3.11 (e.g. usr/local/lib/python3.11/os.py)"));

  CHECK(a.layers[2].layer_class == LayerClass::kApplication);
  CHECK(a.layers[2].keep_fast);
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "history: COPY app.py templates /app/"));
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "cmd script app.py resolves to /app/app.py in this layer"));
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "2 files under WorkingDir /app (e.g. app/app.py)"));
  CHECK(a.layers[2].created_by == "COPY app.py templates /app/ # buildkit");

  CHECK(a.layers[3].layer_class == LayerClass::kEngine);
}

TEST_CASE("hbcsa: the entrypoint is resolved through PATH and symlinks across layers", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList tool = List({D("opt/tool/bin"), X("opt/tool/bin/tool"), F("opt/tool/share/data")});
  const LayerFileList link = List({D("usr/local/bin"), S("usr/local/bin/tool", "../../../opt/tool/bin/tool")});

  SECTION("upper symlink into a lower layer") {
    const ImageAnalysis a = AnalyzeImage(Facts({"tool"}, {"--serve"}, ""), Inputs({&base, &tool, &link}));
    INFO(Dump(a));
    CHECK(a.layers[0].layer_class == LayerClass::kBase);
    CHECK(a.layers[1].layer_class == LayerClass::kApplication);
    CHECK(HasEvidence(a.layers[1], LayerClass::kApplication,
                      "entrypoint tool resolves to /opt/tool/bin/tool in this layer"));
    CHECK(a.layers[2].layer_class == LayerClass::kBase);
    CHECK(HasEvidence(a.layers[2], LayerClass::kBase,
                      "entrypoint tool: /usr/local/bin/tool is a symlink to ../../../opt/tool/bin/tool in this layer"));
  }
  SECTION("an upper layer replacing the target wins") {
    const LayerFileList patched = List({X("opt/tool/bin/tool", 200)});
    const ImageAnalysis a = AnalyzeImage(Facts({"tool"}, {}, ""), Inputs({&base, &tool, &link, &patched}));
    INFO(Dump(a));
    CHECK(a.layers[1].layer_class == LayerClass::kBase);
    CHECK(a.layers[3].layer_class == LayerClass::kApplication);
  }
  SECTION("a whiteout hides the link: PATH goes on to /usr/bin") {
    const LayerFileList other = List({X("usr/bin/tool")});
    const LayerFileList wh = List({W("usr/local/bin/tool")});
    const ImageAnalysis a = AnalyzeImage(Facts({"tool"}, {}, ""), Inputs({&base, &tool, &link, &other, &wh}));
    INFO(Dump(a));
    CHECK(a.layers[1].layer_class == LayerClass::kBase);
    CHECK(a.layers[3].layer_class == LayerClass::kApplication);
    CHECK(HasEvidence(a.layers[3], LayerClass::kApplication, "entrypoint tool resolves to /usr/bin/tool in this layer"));
  }
  SECTION("an opaque directory hides the lower target") {
    const LayerFileList opaque = List({D("opt/tool"), O("opt/tool")});
    const ImageAnalysis a = AnalyzeImage(Facts({"tool"}, {}, ""), Inputs({&base, &tool, &link, &opaque}));
    INFO(Dump(a));
    CHECK(a.layers[1].layer_class == LayerClass::kBase);
    bool noted = false;
    for (const std::string& n : a.notes) noted = noted || n == "entrypoint tool is not found in the layers read";
    CHECK(noted);
  }
  SECTION("a symlink loop is not followed forever") {
    const LayerFileList loop = List({S("usr/local/bin/tool", "/usr/local/bin/tool2"),
                                     S("usr/local/bin/tool2", "tool")});
    const ImageAnalysis a = AnalyzeImage(Facts({"/usr/local/bin/tool"}, {}, ""), Inputs({&base, &loop}));
    CHECK(a.layers[1].layer_class == LayerClass::kBase);
  }
  SECTION("a hard link is served by its own layer") {
    const LayerFileList hl = List({H("usr/local/bin/tool", "opt/tool/bin/tool")});
    const ImageAnalysis a = AnalyzeImage(Facts({"tool"}, {}, ""), Inputs({&base, &tool, &hl}));
    CHECK(a.layers[2].layer_class == LayerClass::kApplication);
  }
}

TEST_CASE("hbcsa: a JVM layer and a jar", "[hbcsa]") {
  const LayerFileList base = Base();
  const std::string jdk = "usr/lib/jvm/java-17-openjdk-amd64";
  const LayerFileList jvm = List({X(jdk + "/bin/java"), F(jdk + "/lib/server/libjvm.so", 20 << 20),
                                  F(jdk + "/lib/modules", 100 << 20), S("etc/alternatives/java", "/" + jdk + "/bin/java"),
                                  S("usr/bin/java", "/etc/alternatives/java")});
  const LayerFileList app = List({F("srv/app.jar", 5 << 20)});
  const ImageAnalysis a = AnalyzeImage(Facts({"java", "-Xmx1g", "-jar", "/srv/app.jar"}, {}, "/",
                                             {"debootstrap", "RUN apt-get install -y openjdk-17-jre-headless",
                                              "/bin/sh -c #(nop) COPY file:77 in /srv/app.jar "}),
                                       Inputs({&base, &jvm, &app}));
  INFO(Dump(a));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(a.layers[1].layer_class == LayerClass::kEngine);
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine, "java runtime library " + jdk + "/lib/server/libjvm.so"));
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine,
                    "entrypoint java resolves to /" + jdk + "/bin/java in this layer: the java interpreter"));
  CHECK(a.layers[2].layer_class == LayerClass::kApplication);
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication,
                    "entrypoint script /srv/app.jar resolves to /srv/app.jar in this layer"));
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "history: COPY file:77 in /srv/app.jar"));
}

TEST_CASE("hbcsa: perl is an engine only when it runs the entrypoint", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList app = List({F("opt/site/index.pl")});
  ImageAnalysis a = AnalyzeImage(Facts({}, {"bash"}, ""), Inputs({&base, &app}));
  INFO(Dump(a));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(HasEvidence(a.layers[0], LayerClass::kBase, "cmd bash resolves to /bin/bash in this layer (a shell: base system)"));
  CHECK(a.layers[1].layer_class == LayerClass::kBase);

  a = AnalyzeImage(Facts({"perl", "-w", "/opt/site/index.pl"}, {}, ""), Inputs({&base, &app}));
  INFO(Dump(a));
  CHECK(a.layers[0].layer_class == LayerClass::kEngine);
  CHECK(HasEvidence(a.layers[0], LayerClass::kEngine, "perl interpreter usr/bin/perl"));
  CHECK(a.layers[1].layer_class == LayerClass::kApplication);
}

TEST_CASE("hbcsa: a tool of the root filesystem does not make the base layer an application", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList other = List({F("etc/motd")});
  ImageAnalysis a = AnalyzeImage(Facts({}, {"sleep", "infinity"}, ""), Inputs({&base, &other}));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  a = AnalyzeImage(Facts({}, {"cat", "/etc/motd"}, "", {"/bin/sh -c #(nop) ADD file:1 in / ", "COPY motd /etc/"}),
                   Inputs({&base, &other}));
  INFO(Dump(a));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(HasEvidence(a.layers[0], LayerClass::kBase,
                    "cmd cat resolves to /bin/cat in this layer (a base-system tool of the root filesystem)"));
  CHECK(a.layers[1].layer_class == LayerClass::kApplication);
  // FROM scratch + COPY: the bottom layer is the application.
  const LayerFileList go = List({X("server")});
  a = AnalyzeImage(Facts({"/server"}, {}, "", {"COPY server / # buildkit"}), Inputs({&go}));
  CHECK(a.layers[0].layer_class == LayerClass::kApplication);
  // A binary in a bin directory of a later layer is the application.
  const LayerFileList nginx = List({X("usr/sbin/nginx"), F("etc/nginx/nginx.conf")});
  a = AnalyzeImage(Facts({}, {"nginx", "-g", "daemon off;"}, "", {"ADD file:1 in /", "RUN apt-get install -y nginx"}),
                   Inputs({&base, &nginx}));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(a.layers[1].layer_class == LayerClass::kApplication);
  CHECK(HasEvidence(a.layers[1], LayerClass::kApplication, "cmd nginx resolves to /usr/sbin/nginx in this layer"));
}

TEST_CASE("hbcsa: shells, wrappers and entrypoint scripts", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList tini = List({X("usr/bin/tini")});
  const LayerFileList node = List({X("usr/local/bin/node"), F("usr/local/lib/node_modules/npm/index.js"),
                                   X("usr/local/bin/docker-entrypoint.sh")});
  const LayerFileList app = List({F("app/server.js"), X("app/server")});

  SECTION("sh -c with cd, assignments and exec") {
    const ImageAnalysis a = AnalyzeImage(
        Facts({}, {"/bin/sh", "-c", "cd /app && PORT=80 exec ./server --port 80"}, "/app"), Inputs({&base, &app}));
    INFO(Dump(a));
    CHECK(HasEvidence(a.layers[1], LayerClass::kApplication, "cmd ./server resolves to /app/server in this layer"));
    CHECK(a.layers[0].layer_class == LayerClass::kBase);
  }
  SECTION("tini -- then the command") {
    const ImageAnalysis a =
        AnalyzeImage(Facts({"/usr/bin/tini", "--"}, {"node", "server.js"}, "/app"), Inputs({&base, &tini, &node, &app}));
    INFO(Dump(a));
    CHECK(a.layers[1].layer_class == LayerClass::kBase);
    CHECK(a.layers[2].layer_class == LayerClass::kEngine);
    CHECK(HasEvidence(a.layers[3], LayerClass::kApplication,
                      "entrypoint script server.js resolves to /app/server.js in this layer"));
  }
  SECTION("an entrypoint script and Cmd naming the interpreter") {
    const ImageAnalysis a =
        AnalyzeImage(Facts({"docker-entrypoint.sh"}, {"node"}, ""), Inputs({&base, &node}));
    INFO(Dump(a));
    CHECK(a.layers[1].layer_class == LayerClass::kApplication);
    CHECK(HasEvidence(a.layers[1], LayerClass::kApplication,
                      "entrypoint docker-entrypoint.sh resolves to /usr/local/bin/docker-entrypoint.sh in this layer"));
    CHECK(HasEvidence(a.layers[1], LayerClass::kEngine,
                      "cmd node resolves to /usr/local/bin/node in this layer: the node interpreter"));
  }
  SECTION("a shell running a script") {
    const LayerFileList run = List({X("app/run.sh")});
    const ImageAnalysis a = AnalyzeImage(Facts({"bash", "run.sh"}, {}, "/app"), Inputs({&base, &app, &run}));
    INFO(Dump(a));
    CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "entrypoint run.sh resolves to /app/run.sh in this layer"));
  }
}

TEST_CASE("hbcsa: unreadable and pending layers", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList app = List({F("app/app.py")});
  std::vector<LayerInput> in = Inputs({&base, nullptr, nullptr, &app});
  in[1].state = FileListState::kUnreadable;
  in[1].error = "blob: read: truncated gzip input";
  // in[2] stays pending.
  const ImageAnalysis a = AnalyzeImage(
      Facts({}, {"python3", "/app/app.py"}, "", {"ADD file:1 in /", "RUN apt-get install -y python3", "COPY x /x # buildkit",
                                                 "COPY app.py /app/ # buildkit"}),
      in);
  INFO(Dump(a));
  CHECK_FALSE(a.complete);
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(a.layers[1].layer_class == LayerClass::kUnknown);
  CHECK_FALSE(a.layers[1].keep_fast);
  CHECK(a.layers[1].evidence.front().text == "file list unreadable: blob: read: truncated gzip input");
  CHECK(a.layers[2].layer_class == LayerClass::kApplication);
  CHECK(a.layers[2].provisional);
  CHECK(HasEvidence(a.layers[2], LayerClass::kApplication, "history: COPY x /x"));
  CHECK(a.layers[3].layer_class == LayerClass::kApplication);
  CHECK_FALSE(a.layers[3].provisional);

  // A RUN step installing an engine makes a pending layer a provisional
  // engine; once its files are read, they decide.
  std::vector<LayerInput> in2 = Inputs({&base, nullptr, nullptr});
  const ImageConfigFacts f2 = Facts({}, {}, "", {"ADD file:1 in /", "RUN apt-get install -y openjdk-17-jre-headless",
                                                 "RUN apt-get install -y curl"});
  const ImageAnalysis c = AnalyzeImage(f2, in2);
  INFO(Dump(c));
  CHECK(c.layers[1].layer_class == LayerClass::kEngine);
  CHECK(c.layers[1].provisional);
  CHECK(HasEvidence(c.layers[1], LayerClass::kEngine,
                    "history: RUN apt-get install -y openjdk-17-jre-headless (installs java: openjdk-17-jre-headless)"));
  CHECK(c.layers[2].layer_class == LayerClass::kUnknown);
  const LayerFileList empty_jre = List({F("usr/share/doc/openjdk-17-jre-headless/copyright")});
  in2 = Inputs({&base, &empty_jre, nullptr});
  CHECK(AnalyzeImage(f2, in2).layers[1].layer_class == LayerClass::kBase);

  // Without history a pending layer is unknown.
  const ImageAnalysis b = AnalyzeImage(Facts({}, {}, ""), Inputs({&base, nullptr}));
  CHECK(b.layers[1].layer_class == LayerClass::kUnknown);
  CHECK(b.layers[1].provisional);
}

TEST_CASE("hbcsa: WorkingDir and /app-like directories", "[hbcsa]") {
  const LayerFileList base = Base();
  const LayerFileList src = List({D("usr/src/app"), F("usr/src/app/main.rb"), F("usr/src/app/Gemfile")});
  ImageAnalysis a = AnalyzeImage(Facts({}, {}, "/usr/src/app"), Inputs({&base, &src}));
  CHECK(a.layers[1].layer_class == LayerClass::kApplication);
  CHECK(HasEvidence(a.layers[1], LayerClass::kApplication,
                    "2 files under WorkingDir /usr/src/app (e.g. usr/src/app/main.rb)"));
  // A system directory as WorkingDir says nothing: /root holds the base's dotfiles.
  a = AnalyzeImage(Facts({}, {}, "/root"), Inputs({&base}));
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  // The /app-like rule needs no WorkingDir.
  a = AnalyzeImage(Facts({}, {}, ""), Inputs({&base, &src}));
  CHECK(HasEvidence(a.layers[1], LayerClass::kApplication, "2 files under /usr/src/app (e.g. usr/src/app/main.rb)"));
}

TEST_CASE("hbcsa: history that does not line up with the layers is not used", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  using namespace ndocker::hbcsa::testing;  // NOLINT
  BuiltLayer l0 = PutLayer(dir.path(), {Exe("bin/sh")});
  nlohmann::json doc = ConfigJson({l0}, {"ADD file:1 in /", "COPY a /a"}, nlohmann::json::object());
  auto facts = ParseImageConfigFacts(doc.dump());
  REQUIRE(facts.ok());
  CHECK(facts->layer_created_by.empty());
  CHECK(facts->history_note == "history has 2 entries with a layer for 1 layers: not mapped");
  doc["history"] = {{{"created_by", "ENV A=b"}, {"empty_layer", true}}, {{"created_by", "COPY a /a"}}};
  doc["config"] = {{"Entrypoint", {"/x"}}, {"Cmd", nullptr}, {"WorkingDir", "/w"},
                   {"Env", {"A=b", "PATH=/opt/bin:/bin"}}};
  facts = ParseImageConfigFacts(doc.dump());
  REQUIRE(facts.ok());
  CHECK(facts->layer_created_by == std::vector<std::string>{"COPY a /a"});
  CHECK(facts->entrypoint == std::vector<std::string>{"/x"});
  CHECK(facts->cmd.empty());
  CHECK(facts->working_dir == "/w");
  CHECK(facts->path == "/opt/bin:/bin");
  CHECK(facts->path_from_env);
  CHECK_FALSE(ParseImageConfigFacts("{\"config\":{}}").ok());
}

TEST_CASE("hbcsa: analysis of real blobs: python, JVM, COPY'd app, a truncated and a corrupt layer", "[hbcsa]") {
  ndocker::testing::TempDir dir;
  using namespace ndocker::hbcsa::testing;  // NOLINT
  const std::string root = dir.path();
  std::vector<BuiltLayer> layers;
  // 0: base (plain tar)
  layers.push_back(PutLayer(root, {Dir("bin"), Exe("bin/busybox"), Symlink("bin/sh", "busybox"),
                                   File("etc/passwd", "root:x:0:0"), Dir("usr/local/bin")},
                            Compression::kNone));
  // 1: python interpreter (zstd)
  layers.push_back(PutLayer(root, {Exe("usr/bin/python3.11"), Hardlink("usr/bin/python3", "usr/bin/python3.11"),
                                   File("usr/lib/python3.11/os.py", "import sys")},
                            Compression::kZstd));
  // 2: a JVM (gzip)
  layers.push_back(PutLayer(root, {Exe("opt/java/openjdk/bin/java"),
                                   File("opt/java/openjdk/lib/server/libjvm.so", std::string(4096, 'j'))}));
  // 3: truncated gzip
  {
    const std::string whole = TarBytes({File("opt/x/big", std::string(200000, 'x'))}, Compression::kGzip);
    BuiltLayer l;
    l.diff_id = Sha256Digest("3");
    l.digest = PutBlob(root, whole.substr(0, whole.size() / 2), Sha256Digest(whole));
    l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    l.size = static_cast<int64_t>(whole.size());
    layers.push_back(l);
  }
  // 4: not a tar at all
  {
    BuiltLayer l;
    l.diff_id = Sha256Digest("4");
    l.digest = PutBlob(root, std::string(3000, '\x01'));
    l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    l.size = 3000;
    layers.push_back(l);
  }
  // 5: the app, with an entrypoint symlink into it from an upper layer
  layers.push_back(PutLayer(root, {Dir("app"), File("app/main.py", "print(1)"), Exe("app/run.sh", "#!/bin/sh")}));
  // 6: whiteout and an entrypoint symlink pointing into the app layer
  layers.push_back(PutLayer(root, {Symlink("usr/local/bin/run", "/app/run.sh"), Whiteout("etc", "passwd")}));

  nlohmann::json cfg = {{"Entrypoint", {"run"}}, {"Cmd", {"python3", "main.py"}}, {"WorkingDir", "/app"},
                        {"Env", {"PATH=/usr/local/bin:/usr/bin:/bin"}}};
  std::string config_digest;
  const std::string manifest = PutImage(
      root, layers,
      ConfigJson(layers,
                 {"/bin/sh -c #(nop) ADD file:aa in / ", "RUN apt-get install python3", "RUN install jdk",
                  "RUN make big", "RUN make other", "COPY . /app # buildkit", "RUN ln -s /app/run.sh /usr/local/bin/run"},
                 cfg),
      &config_digest);

  auto result = AnalyzeStoredImage(root, manifest);
  REQUIRE(result.ok());
  const ImageAnalysis& a = result->analysis;
  INFO(Dump(a));
  REQUIRE(a.layers.size() == 7);
  CHECK(result->image.chain_ids.size() == 7);
  CHECK(result->image.chain_ids[0] == layers[0].diff_id);
  CHECK(a.layers[0].layer_class == LayerClass::kBase);
  CHECK(a.layers[1].layer_class == LayerClass::kEngine);
  CHECK(HasEvidence(a.layers[1], LayerClass::kEngine,
                    "cmd python3 resolves to /usr/bin/python3 in this layer: the python interpreter"));
  CHECK(a.layers[2].layer_class == LayerClass::kEngine);
  CHECK(HasEvidence(a.layers[2], LayerClass::kEngine, "java runtime library opt/java/openjdk/lib/server/libjvm.so"));
  CHECK(a.layers[3].layer_class == LayerClass::kUnknown);
  CHECK(a.layers[3].files == FileListState::kUnreadable);
  CHECK(a.layers[4].layer_class == LayerClass::kUnknown);
  CHECK(a.layers[5].layer_class == LayerClass::kApplication);
  CHECK(HasEvidence(a.layers[5], LayerClass::kApplication, "entrypoint run resolves to /app/run.sh in this layer"));
  CHECK(HasEvidence(a.layers[5], LayerClass::kApplication, "cmd script main.py resolves to /app/main.py in this layer"));
  CHECK(HasEvidence(a.layers[5], LayerClass::kApplication, "history: COPY . /app"));
  CHECK(a.layers[6].layer_class == LayerClass::kBase);
  CHECK(HasEvidence(a.layers[6], LayerClass::kBase,
                    "entrypoint run: /usr/local/bin/run is a symlink to /app/run.sh in this layer"));
  CHECK(a.complete);
}

}  // namespace
}  // namespace ndocker::hbcsa
