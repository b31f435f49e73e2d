#include "hbcsa/tracer/process_events.h"

// clang-format off: connector.h needs the netlink types first
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
// clang-format on
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

namespace {
// Room for bursts while the tracer is busy; the default (~200 KiB, ~2,500
// messages) overflows during a parallel build on the host.
constexpr int kReceiveBuffer = 4 << 20;
}  // namespace

absl::StatusOr<ProcessEvents> ProcessEvents::Open() {
  UniqueFd fd(::socket(PF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  if (!fd.valid()) return LastErrnoStatus("socket(NETLINK_CONNECTOR)");
  // FORCE needs CAP_NET_ADMIN, which subscribing needs anyway; a smaller
  // buffer only means more chance of a lost fork, counted.
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) != 0 &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer) != 0) {
    return LastErrnoStatus("setsockopt(SO_RCVBUF, proc connector)");
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return LastErrnoStatus("bind(proc connector)");
  }
  ProcessEvents events(std::move(fd));
  if (absl::Status s = events.Subscribe(true); !s.ok()) return s;
  return events;
}

ProcessEvents::~ProcessEvents() {
  if (fd_.valid()) (void)Subscribe(false);  // the kernel counts listeners; best effort
}

absl::Status ProcessEvents::Subscribe(bool listen) {
  alignas(nlmsghdr) char buf[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))] = {};
  auto* header = reinterpret_cast<nlmsghdr*>(buf);
  header->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));
  header->nlmsg_type = NLMSG_DONE;
  auto* msg = static_cast<cn_msg*>(NLMSG_DATA(header));
  msg->id.idx = CN_IDX_PROC;
  msg->id.val = CN_VAL_PROC;
  msg->len = sizeof(proc_cn_mcast_op);
  const proc_cn_mcast_op op = listen ? PROC_CN_MCAST_LISTEN : PROC_CN_MCAST_IGNORE;
  std::memcpy(msg->data, &op, sizeof op);
  if (::send(fd_.get(), buf, header->nlmsg_len, 0) < 0) {
    return LastErrnoStatus(listen ? "send(PROC_CN_MCAST_LISTEN)" : "send(PROC_CN_MCAST_IGNORE)");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ProcessEvents::Drain(std::vector<Fork>* out) {
  alignas(nlmsghdr) char buf[16384];
  size_t appended = 0;
  for (;;) {
    const ssize_t len = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (len < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return appended;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // overflowed: what was queued after it still comes
        ++stats_.lost;
        continue;
      }
      return LastErrnoStatus("recv(proc connector)");
    }
    int remaining = static_cast<int>(len);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event))) continue;
      // The payload is not aligned for proc_event: copy it out.
      proc_event ev;
      std::memcpy(&ev, static_cast<const char*>(NLMSG_DATA(h)) + sizeof(cn_msg), sizeof ev);
      if (ev.what != proc_event::PROC_EVENT_FORK) continue;  // exec, exit, ...: not needed
      const auto& f = ev.event_data.fork;
      if (f.child_pid != f.child_tgid) continue;  // a new thread
      out->push_back(Fork{f.parent_tgid, f.child_tgid});
      ++stats_.forks;
      ++appended;
    }
  }
}

}  // namespace ndocker::hbcsa
