// Benchmark prototype (issue 9, test/bench/tracer-race.sh), not product
// code: the "per-container mark" alternative to the daemon's tracer. It
// watches /proc/self/mountinfo with poll(POLLPRI) and, for each NEW overlay
// mount whose upperdir is under --root (ndocker's root, tiers included),
// places a FAN_MARK_FILESYSTEM mark for FAN_OPEN | FAN_OPEN_EXEC on that
// mount point (the overlay's own superblock) in its own fanotify group. It
// records, per overlay, the time from the poll wake-up that showed the mount
// to the mark being in place, and the events the mark reported.
//
//   permount_tracer --root DIR --out FILE.jsonl [--mode fd|dfid] [--ready FILE]
//
//   --mode fd    (default) classic fd events: path by readlink of the event
//                fd (rootfs-relative for a container's own processes). Each
//                event fd holds the overlay mount until it is closed, and
//                its open opens the backing layer file, which tier-level
//                groups (the daemon's) see as an open by this tool.
//   --mode dfid  FAN_REPORT_DFID_NAME, as the daemon's group: kernel 6.18
//                refuses FID-reporting FAN_MARK_FILESYSTEM (and mount) marks
//                on overlayfs with EOPNOTSUPP, so every record then carries
//                that mark_error and no event.
//   --ready FILE written once the group exists and the baseline mountinfo
//                has been read (the script waits for it).
//
// An event is tied to an overlay by the fsid of its file (fstatfs of the
// event fd): with uuid=on (the default here) an overlay's fsid comes from its
// upperdir, so the newest live mark with that fsid wins. st_dev is no key
// (overlay reports the real file's st_dev for non-directories when its
// layers are on different filesystems). Mounts are known by id + mount point
// + upperdir: ids are reused at once. The mount point is opened and checked
// to be an overlay (f_type) and the mark placed through that fd: a
// short-lived mount (ctr's temporary rootfs mount under /tmp) can be gone by
// then, and marking its path would mark the filesystem underneath.
//
// One JSON object per overlay is appended to --out when the overlay is gone
// from mountinfo for 2 s (events queued before the unmount are read first),
// and for every overlay still tracked at SIGTERM/SIGINT:
//   {"mnt_id", "mount_point", "upperdir", "fsid", "wake_to_mark_us",
//    "mark_error", "fsid_shared", "dropped", "events": [{"us", "pid", "mask", "name"}]}
// "us" is when the tool read the event, relative to the mark. Build:
//   g++ -std=c++20 -O2 -Wall -Wextra -Werror -o permount_tracer permount_tracer.cc
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && isdigit(s[i + 1]) &&
        isdigit(s[i + 2]) && isdigit(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (c < 0x20) {
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

struct Mount {
  int id = 0;
  std::string point;
  std::string fstype;
  std::string upperdir;
};

// The mounts of /proc/self/mountinfo (fd kept open for POLLPRI).
std::vector<Mount> ReadMountinfo(int fd) {
  std::string text;
  char buf[65536];
  if (lseek(fd, 0, SEEK_SET) < 0) return {};
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  std::vector<Mount> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    // id parent maj:min root point opts [optional...] - fstype source superopts
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 1 >= f.size()) continue;
    Mount m;
    m.id = atoi(f[0].c_str());
    m.point = Unescape(f[4]);
    m.fstype = f[dash + 1];
    if (m.fstype == "overlay" && dash + 3 < f.size()) {
      std::string opts = f[dash + 3];
      std::istringstream os(opts);
      std::string o;
      while (std::getline(os, o, ',')) {
        if (o.rfind("upperdir=", 0) == 0) m.upperdir = Unescape(o.substr(9));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

struct Event {
  int64_t us = 0;  // read time relative to the mark
  int32_t pid = 0;
  uint64_t mask = 0;
  std::string name;
};

struct Overlay {
  int mnt_id = 0;
  std::string point, upperdir;
  uint64_t fsid = 0;
  int64_t wake_us = 0, mark_us = 0, gone_us = 0;
  std::string mark_error;
  bool marked = false;
  bool fsid_shared = false;
  std::vector<Event> events;
  uint64_t dropped = 0;
};

std::string MaskName(uint64_t m) {
  std::string s;
  auto add = [&](uint64_t bit, const char* n) {
    if (m & bit) s += (s.empty() ? "" : "|") + std::string(n);
  };
  add(FAN_OPEN, "OPEN");
  add(FAN_OPEN_EXEC, "OPEN_EXEC");
  add(FAN_ACCESS, "ACCESS");
  add(FAN_Q_OVERFLOW, "OVERFLOW");
  return s;
}

void Emit(FILE* out, const Overlay& o) {
  fprintf(out,
          "{\"mnt_id\":%d,\"mount_point\":\"%s\",\"upperdir\":\"%s\",\"fsid\":\"%016llx\","
          "\"wake_to_mark_us\":%lld,\"mark_error\":\"%s\",\"fsid_shared\":%s,"
          "\"dropped\":%llu,\"events\":[",
          o.mnt_id, JsonEscape(o.point).c_str(), JsonEscape(o.upperdir).c_str(),
          static_cast<unsigned long long>(o.fsid),
          static_cast<long long>(o.marked ? o.mark_us - o.wake_us : -1), JsonEscape(o.mark_error).c_str(),
          o.fsid_shared ? "true" : "false", static_cast<unsigned long long>(o.dropped));
  for (size_t i = 0; i < o.events.size(); ++i) {
    const Event& e = o.events[i];
    fprintf(out, "%s{\"us\":%lld,\"pid\":%d,\"mask\":\"%s\",\"name\":\"%s\"}", i ? "," : "",
            static_cast<long long>(e.us), e.pid, MaskName(e.mask).c_str(), JsonEscape(e.name).c_str());
  }
  fprintf(out, "]}\n");
  fflush(out);
}

constexpr long kOverlayMagic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC

uint64_t FsidOf(const struct statfs& st) {
  static_assert(sizeof(st.f_fsid) == 8);
  uint32_t v[2];
  memcpy(v, &st.f_fsid, 8);
  return (static_cast<uint64_t>(v[0]) << 32) | v[1];
}

uint64_t FsidFromKernel(const __kernel_fsid_t& f) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(f.val[0])) << 32) | static_cast<uint32_t>(f.val[1]);
}

bool UnderRoot(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

}  // namespace

int main(int argc, char** argv) {
  std::string root, out_path, ready, mode = "fd";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "permount_tracer: %s needs a value\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--root") root = next();
    else if (a == "--out") out_path = next();
    else if (a == "--ready") ready = next();
    else if (a == "--mode") mode = next();
    else {
      fprintf(stderr, "permount_tracer: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (root.empty() || out_path.empty() || (mode != "dfid" && mode != "fd")) {
    fprintf(stderr, "usage: permount_tracer --root DIR --out FILE [--mode dfid|fd] [--ready FILE]\n");
    return 2;
  }
  char rbuf[PATH_MAX];
  if (!realpath(root.c_str(), rbuf)) {
    perror("realpath --root");
    return 1;
  }
  root = rbuf;
  FILE* out = fopen(out_path.c_str(), "a");
  if (!out) {
    perror("open --out");
    return 1;
  }
  const bool dfid = mode == "dfid";

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);

  unsigned init_flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | (dfid ? FAN_REPORT_DFID_NAME : 0);
  int fan = fanotify_init(init_flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fan < 0) {
    perror("fanotify_init");
    return 1;
  }
  int mi = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (mi < 0) {
    perror("open mountinfo");
    return 1;
  }
  // Mount ids are reused as soon as a mount is gone (ctr's temporary mount of
  // the rootfs and the task's rootfs mount often get the same id), so a
  // mount is known by its id, mount point and upperdir together.
  auto key_of = [](const Mount& m) { return std::to_string(m.id) + '\0' + m.point + '\0' + m.upperdir; };
  std::set<std::string> seen;
  for (const Mount& m : ReadMountinfo(mi)) seen.insert(key_of(m));
  std::map<std::string, Overlay> live;  // by key_of
  std::vector<Overlay> gone;     // waiting 2 s for queued events
  uint64_t unmatched = 0, overflows = 0, wakes = 0;
  if (!ready.empty()) {
    FILE* r = fopen(ready.c_str(), "w");
    if (r) {
      fprintf(r, "baseline %zu mounts, mode %s\n", seen.size(), mode.c_str());
      fclose(r);
    }
  }
  fprintf(stderr, "permount_tracer: root %s, mode %s, %zu mounts at start\n", root.c_str(), mode.c_str(),
          seen.size());

  auto find_overlay = [&](uint64_t fsid) -> Overlay* {
    // Newest mark first (live ones), then recently gone ones.
    Overlay* best = nullptr;
    for (auto& [key, o] : live) {
      if (o.marked && o.fsid == fsid && (!best || o.mark_us > best->mark_us)) best = &o;
    }
    if (best) return best;
    for (auto it = gone.rbegin(); it != gone.rend(); ++it) {
      if (it->marked && it->fsid == fsid) return &*it;
    }
    return nullptr;
  };

  std::vector<char> buf(256 * 1024);
  auto drain = [&]() {
    for (;;) {
      ssize_t len = read(fan, buf.data(), buf.size());
      if (len < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN
      }
      if (len == 0) return;
      int64_t now = NowUs();
      auto* md = reinterpret_cast<fanotify_event_metadata*>(buf.data());
      for (; FAN_EVENT_OK(md, len); md = FAN_EVENT_NEXT(md, len)) {
        if (md->mask & FAN_Q_OVERFLOW) {
          ++overflows;
          continue;
        }
        Overlay* o = nullptr;
        std::string name;
        if (dfid) {
          auto* info = reinterpret_cast<fanotify_event_info_fid*>(md + 1);
          if (info->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
            auto* fh = reinterpret_cast<file_handle*>(info->handle);
            name = reinterpret_cast<const char*>(fh->f_handle + fh->handle_bytes);
            o = find_overlay(FsidFromKernel(info->fsid));
          }
        } else if (md->fd >= 0) {
          struct statfs st;
          if (fstatfs(md->fd, &st) == 0) o = find_overlay(FsidOf(st));
          char p[PATH_MAX];
          std::string link = "/proc/self/fd/" + std::to_string(md->fd);
          ssize_t n = readlink(link.c_str(), p, sizeof p - 1);
          if (n > 0) name.assign(p, static_cast<size_t>(n));
          close(md->fd);
        }
        if (!o) {
          ++unmatched;
          continue;
        }
        if (o->events.size() >= 20000) {
          ++o->dropped;
          continue;
        }
        o->events.push_back(Event{now - o->mark_us, md->pid, md->mask, name});
      }
    }
  };

  auto rescan = [&](int64_t wake) {
    std::vector<Mount> mounts = ReadMountinfo(mi);
    std::set<std::string> now_keys;
    for (const Mount& m : mounts) now_keys.insert(key_of(m));
    for (const Mount& m : mounts) {
      std::string key = key_of(m);
      if (seen.count(key)) continue;
      if (m.fstype != "overlay" || !UnderRoot(m.upperdir, root)) continue;
      Overlay o;
      o.mnt_id = m.id;
      o.point = m.point;
      o.upperdir = m.upperdir;
      o.wake_us = wake;
      uint64_t mask = FAN_OPEN | FAN_OPEN_EXEC;
      int dfd = open(m.point.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      struct statfs st;
      if (dfd < 0) {
        o.mark_error = std::string("open: ") + strerror(errno);
      } else if (fstatfs(dfd, &st) != 0 || st.f_type != kOverlayMagic) {
        o.mark_error = "gone (not an overlay any more)";
      } else if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, dfd, nullptr) == 0) {
        o.mark_us = NowUs();
        o.marked = true;
        o.fsid = FsidOf(st);
      } else {
        o.mark_error = strerror(errno);
        o.fsid = FsidOf(st);
      }
      if (dfd >= 0) close(dfd);
      for (auto& [k, other] : live) {
        if (o.marked && other.marked && other.fsid == o.fsid) other.fsid_shared = o.fsid_shared = true;
      }
      live.emplace(key, std::move(o));
    }
    seen = now_keys;
    int64_t t = NowUs();
    for (auto it = live.begin(); it != live.end();) {
      if (!now_keys.count(it->first)) {
        it->second.gone_us = t;
        gone.push_back(std::move(it->second));
        it = live.erase(it);
      } else {
        ++it;
      }
    }
  };

  bool stop = false;
  while (!stop) {
    pollfd pfd[3] = {{mi, POLLPRI | POLLERR, 0}, {fan, POLLIN, 0}, {sfd, POLLIN, 0}};
    int n = poll(pfd, 3, 200);
    if (n < 0 && errno != EINTR) {
      perror("poll");
      break;
    }
    int64_t wake = NowUs();
    if (n > 0 && (pfd[0].revents & (POLLPRI | POLLERR))) {
      ++wakes;
      rescan(wake);
    }
    drain();
    if (pfd[2].revents & POLLIN) stop = true;
    int64_t t = NowUs();
    while (!gone.empty() && t - gone.front().gone_us > 2000000) {
      Emit(out, gone.front());
      gone.erase(gone.begin());
    }
  }
  drain();
  for (const Overlay& o : gone) Emit(out, o);
  for (const auto& [id, o] : live) Emit(out, o);
  fprintf(stderr, "permount_tracer: %llu mountinfo wake-ups, %llu events tied to no overlay, %llu overflows\n",
          static_cast<unsigned long long>(wakes), static_cast<unsigned long long>(unmatched),
          static_cast<unsigned long long>(overflows));
  fclose(out);
  return 0;
}
