// ndocker-test-throttle: a TCP proxy that limits the bandwidth of the
// server->client direction like a shared link, for pulls from a local test
// registry that must take a predictable time.
//
//   ndocker-test-throttle --listen 127.0.0.1:0 --to 127.0.0.1:5000 --rate 4194304 [--port-file F]
//
// - ONE token bucket shared by every connection limits the bytes read from the
//   upstream server (so TCP backpressure holds the rest back at the server);
//   client->server data is not limited.
// - The bucket holds at most --burst bytes (default rate/50, at least 4 KiB).
//   A connection reads at most one quantum (default 8 KiB, capped by the
//   tokens) per turn, and the turns rotate, so concurrent downloads share the
//   rate roughly equally, as TCP flows on one bottleneck link would.
// - Single thread, poll(); half-close is passed on (EOF from one side becomes
//   shutdown(SHUT_WR) on the other once the buffered bytes are written).
// - Prints "listening on HOST:PORT" on stdout (PORT chosen by the kernel for
//   port 0) and writes PORT to --port-file (atomically) once it listens.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;

bool ParseHostPort(const std::string& s, sockaddr_in* out) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  if (host.empty()) host = "127.0.0.1";
  *out = {};
  out->sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &out->sin_addr) != 1) return false;
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(p));
  return true;
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// One direction of a connection: bytes read from `from`, not yet written to `to`.
struct Pipe {
  std::vector<char> buf;
  size_t start = 0, end = 0;
  bool eof = false;       // `from` reached EOF
  bool shut = false;      // shutdown(to, SHUT_WR) done
  uint64_t total = 0;     // bytes passed
  size_t pending() const { return end - start; }
  size_t space() const { return buf.size() - end; }
  void Compact() {
    if (start == end) start = end = 0;
    else if (start > buf.size() / 2) {
      std::memmove(buf.data(), buf.data() + start, end - start);
      end -= start;
      start = 0;
    }
  }
};

struct Conn {
  int id = 0;
  int client = -1, server = -1;
  bool connecting = true;  // non-blocking connect to the server in progress
  Pipe up, down;           // up: client->server, down: server->client (throttled)
  bool dead = false;
  Clock::time_point started = Clock::now();
};

struct Options {
  std::string listen = "127.0.0.1:0", to, port_file;
  double rate = 0;
  double burst = 0;
  size_t quantum = 8192;
  size_t buffer = 64 * 1024;
  bool verbose = false;
};

class Proxy {
 public:
  explicit Proxy(const Options& o) : o_(o) {
    tokens_ = o_.burst;
    last_ = Clock::now();
  }

  int Run(int lfd) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Conn*, int>> owners;  // for fds[i]: conn and 0=client 1=server
    size_t rotate = 0;
    for (;;) {
      Refill();
      const size_t threshold = static_cast<size_t>(std::min<double>(o_.burst, 4096));
      const bool may_read_down = tokens_ >= static_cast<double>(threshold);
      fds.clear();
      owners.clear();
      fds.push_back({lfd, POLLIN, 0});
      owners.push_back({nullptr, 0});
      bool want_tokens = false;
      for (auto& c : conns_) {
        short cev = 0, sev = 0;
        if (c->connecting) {
          sev |= POLLOUT;
        } else {
          if (!c->up.eof && c->up.space() > 0) cev |= POLLIN;
          if (c->up.pending() > 0) sev |= POLLOUT;
          if (!c->down.eof && c->down.space() > 0) {
            if (may_read_down) sev |= POLLIN;
            else want_tokens = true;
          }
          if (c->down.pending() > 0) cev |= POLLOUT;
        }
        // poll() ignores negative fds: no busy loop on a POLLHUP nobody waits for.
        fds.push_back({cev ? c->client : -1, cev, 0});
        owners.push_back({c.get(), 0});
        fds.push_back({sev ? c->server : -1, sev, 0});
        owners.push_back({c.get(), 1});
      }
      int timeout = -1;
      if (want_tokens) {
        double need = static_cast<double>(threshold) - tokens_;
        timeout = std::max(1, static_cast<int>(std::ceil(need / o_.rate * 1000.0)));
      }
      int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("ndocker-test-throttle: poll");
        return 1;
      }
      if (fds[0].revents & POLLIN) Accept(lfd);
      // Server reads (the throttled side) in rotating order, for fairness.
      Refill();
      const size_t m = fds.size();
      if (m > 1) {
        size_t pairs = (m - 1) / 2;
        for (size_t k = 0; k < pairs; ++k) {
          size_t i = 1 + 2 * ((k + rotate) % pairs);
          Conn* c = owners[i].first;
          Service(c, fds[i].revents, fds[i + 1].revents);
        }
        rotate = pairs ? (rotate + 1) % pairs : 0;
      }
      Reap();
    }
  }

 private:
  void Refill() {
    auto now = Clock::now();
    double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(o_.burst, tokens_ + dt * o_.rate);
  }

  void Accept(int lfd) {
    for (;;) {
      int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) return;  // EAGAIN or a transient error: poll again
      int sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (sfd < 0) {
        close(cfd);
        continue;
      }
      int one = 1;
      setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->id = ++next_id_;
      c->client = cfd;
      c->server = sfd;
      c->up.buf.resize(o_.buffer);
      c->down.buf.resize(o_.buffer);
      int r = connect(sfd, reinterpret_cast<const sockaddr*>(&to_addr_), sizeof to_addr_);
      if (r == 0) c->connecting = false;
      else if (errno != EINPROGRESS) {
        Log(*c, std::string("connect failed: ") + std::strerror(errno));
        c->dead = true;
      }
      if (o_.verbose) Log(*c, "accepted");
      conns_.push_back(std::move(c));
    }
  }

 public:
  sockaddr_in to_addr_{};

 private:
  void Log(const Conn& c, const std::string& what) {
    if (!o_.verbose && what.rfind("connect failed", 0) != 0) return;
    double age = std::chrono::duration<double>(Clock::now() - c.started).count();
    std::fprintf(stderr, "throttle: conn %d: %s (down %llu B, up %llu B, %.3f s)\n", c.id, what.c_str(),
                 static_cast<unsigned long long>(c.down.total), static_cast<unsigned long long>(c.up.total),
                 age);
  }

  // Read from fd into p, at most `limit` bytes. Returns false on a hard error.
  static bool ReadInto(int fd, Pipe& p, size_t limit, size_t* got) {
    *got = 0;
    p.Compact();
    size_t want = std::min(limit, p.space());
    if (want == 0) return true;
    ssize_t r = recv(fd, p.buf.data() + p.end, want, 0);
    if (r > 0) {
      p.end += static_cast<size_t>(r);
      *got = static_cast<size_t>(r);
      return true;
    }
    if (r == 0) {
      p.eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }

  static bool WriteFrom(int fd, Pipe& p) {
    while (p.pending() > 0) {
      ssize_t w = send(fd, p.buf.data() + p.start, p.pending(), MSG_NOSIGNAL);
      if (w > 0) {
        p.start += static_cast<size_t>(w);
        p.total += static_cast<uint64_t>(w);
        continue;
      }
      return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
    return true;
  }

  void Service(Conn* c, short crev, short srev) {
    if (c->dead) return;
    if (c->connecting) {
      if (srev & (POLLOUT | POLLERR | POLLHUP)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->server, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Log(*c, std::string("connect failed: ") + std::strerror(err));
          c->dead = true;
          return;
        }
        c->connecting = false;
      }
      return;
    }
    size_t got = 0;
    // client -> server: unthrottled
    if (crev & (POLLIN | POLLHUP | POLLERR)) {
      if (!c->up.eof && !ReadInto(c->client, c->up, SIZE_MAX, &got)) return Kill(c, "client read error");
    }
    // server -> client: one quantum from the shared bucket
    if (srev & (POLLIN | POLLHUP | POLLERR)) {
      if (!c->down.eof) {
        size_t limit = std::min(o_.quantum, static_cast<size_t>(std::max(0.0, tokens_)));
        if (limit > 0 || (srev & (POLLHUP | POLLERR))) {
          if (!ReadInto(c->server, c->down, std::max<size_t>(limit, 1), &got)) return Kill(c, "server read error");
          tokens_ -= static_cast<double>(got);
        }
      }
    }
    if (!WriteFrom(c->server, c->up)) return Kill(c, "server write error");
    if (!WriteFrom(c->client, c->down)) return Kill(c, "client write error");
    // Half-close: pass an EOF on once everything before it is written.
    if (c->up.eof && c->up.pending() == 0 && !c->up.shut) {
      shutdown(c->server, SHUT_WR);
      c->up.shut = true;
    }
    if (c->down.eof && c->down.pending() == 0 && !c->down.shut) {
      shutdown(c->client, SHUT_WR);
      c->down.shut = true;
    }
    if (c->up.shut && c->down.shut) {
      Log(*c, "closed");
      c->dead = true;
    }
  }

  void Kill(Conn* c, const char* why) {
    Log(*c, why);
    c->dead = true;
  }

  void Reap() {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->dead) {
        close((*it)->client);
        close((*it)->server);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }

  Options o_;
  double tokens_ = 0;
  Clock::time_point last_;
  std::list<std::unique_ptr<Conn>> conns_;
  int next_id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ndocker-test-throttle: TCP proxy with one shared server->client rate limit"};
  Options o;
  app.add_option("--listen", o.listen, "HOST:PORT to listen on (PORT 0: any free port)")->capture_default_str();
  app.add_option("--to", o.to, "HOST:PORT of the upstream server")->required();
  app.add_option("--rate", o.rate, "server->client bytes per second, shared by all connections")
      ->required()
      ->check(CLI::PositiveNumber);
  app.add_option("--burst", o.burst, "token bucket size in bytes (default rate/50, at least 4096)");
  app.add_option("--quantum", o.quantum, "bytes one connection may read per turn")->capture_default_str();
  app.add_option("--port-file", o.port_file, "write the listening port here");
  app.add_flag("--verbose,-v", o.verbose, "log every connection to stderr");
  CLI11_PARSE(app, argc, argv);
  if (o.burst <= 0) o.burst = std::max(4096.0, o.rate / 50);
  if (o.quantum == 0) o.quantum = 1;

  ::signal(SIGPIPE, SIG_IGN);
  sockaddr_in la{}, ta{};
  if (!ParseHostPort(o.listen, &la)) {
    std::cerr << "ndocker-test-throttle: bad --listen " << o.listen << "\n";
    return 2;
  }
  if (!ParseHostPort(o.to, &ta)) {
    std::cerr << "ndocker-test-throttle: bad --to " << o.to << "\n";
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || listen(lfd, 128) != 0) {
    std::perror("ndocker-test-throttle: listen");
    return 1;
  }
  SetNonBlocking(lfd);
  socklen_t len = sizeof la;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&la), &len);
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &la.sin_addr, host, sizeof host);
  int port = ntohs(la.sin_port);
  if (!o.port_file.empty()) {
    std::string tmp = o.port_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << port << "\n";
      if (!f) {
        std::cerr << "ndocker-test-throttle: cannot write " << tmp << "\n";
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), o.port_file.c_str()) != 0) {
      std::perror("ndocker-test-throttle: rename port file");
      return 1;
    }
  }
  std::cout << "listening on " << host << ":" << port << " -> " << o.to << ", " << o.rate
            << " B/s server->client (burst " << o.burst << " B)" << std::endl;
  Proxy proxy(o);
  proxy.to_addr_ = ta;
  return proxy.Run(lfd);
}
