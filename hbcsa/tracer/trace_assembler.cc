#include "hbcsa/tracer/trace_assembler.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/match.h"

namespace ndocker::hbcsa {

const char* TraceEndName(TraceEnd end) {
  switch (end) {
    case TraceEnd::kQuiet: return "quiet";
    case TraceEnd::kLimit: return "limit";
    case TraceEnd::kExit: return "exit";
    case TraceEnd::kNeverStarted: return "never-started";
    case TraceEnd::kShutdown: return "shutdown";
  }
  return "unknown";
}

void TraceAssembler::Watch(const std::string& container, absl::Time now) {
  if (traces_.count(container)) return;
  Open& open = traces_[container];
  open.trace.container = container;
  open.trace.start = now;
  open.watched = now;
}

void TraceAssembler::Add(const TraceEvent& event) {
  if (lookup_->IsHostMount(event.mnt_id)) {
    ++stats_.host_dropped;
    return;
  }
  if (event.path.empty() || event.path[0] != '/' || absl::EndsWith(event.path, " (deleted)")) {
    ++stats_.deleted;
    return;
  }
  Attribute(event, next_seq_++);
}

void TraceAssembler::Attribute(const TraceEvent& event, uint64_t seq) {
  std::string container;
  std::string path = event.path;
  if (auto host = lookup_->ContainerOfHostPath(event.path)) {
    // An open from the host through the rootfs mount (a hook, containerd).
    container = host->first;
    path.erase(0, host->second.size());
  } else if (auto it = owners_.find(event.mnt_id); it != owners_.end()) {
    container = it->second.container;
    if (container.empty()) {
      ++stats_.unattributed;
      return;
    }
  } else if (auto by_pid = lookup_->ContainerOfPid(event.pid); by_pid && traces_.count(*by_pid)) {
    container = *by_pid;
  } else if (std::vector<std::string> serving = lookup_->ContainersServing(event);
             serving.size() == 1) {
    // The inode is in one watched container's chain only: its overlay.
    container = serving.front();
  } else {
    std::vector<Held>& held = held_[event.mnt_id];
    if (held.size() >= options_.pending_per_mount) {
      // Nothing ties this overlay to a watched container: stop holding.
      held.push_back(Held{event, seq, std::move(serving)});
      DropHeld(held);
      held_.erase(event.mnt_id);
      owners_[event.mnt_id] = MountOwner{};
      return;
    }
    held.push_back(Held{event, seq, std::move(serving)});
    return;
  }
  const bool new_owner = owners_.find(event.mnt_id) == owners_.end();
  if (new_owner) owners_[event.mnt_id] = MountOwner{container};

  if (auto it = traces_.find(container); it != traces_.end()) {
    Record(it->second, event, seq, path);
  } else {
    ++stats_.after_end;
  }
  if (new_owner) {
    // Replay what this mount held, in arrival order.
    if (auto h = held_.find(event.mnt_id); h != held_.end()) {
      std::vector<Held> held = std::move(h->second);
      held_.erase(h);
      for (const Held& e : held) Attribute(e.event, e.seq);
    }
  }
}

void TraceAssembler::Record(Open& open, const TraceEvent& event, uint64_t seq,
                            const std::string& path) {
  if (open.started && (event.time - open.trace.start >= options_.limit ||
                       event.time - open.last_new >= options_.quiet)) {
    // The trace is over (Tick has not run yet): same result whatever the tick.
    ++stats_.after_end;
    return;
  }
  if (!open.started) {
    open.started = true;
    open.trace.start = event.time;
    open.last_new = event.time;
  }
  ++open.trace.events;
  ++open.events_since_charge;
  auto [it, inserted] = open.index.emplace(path, open.trace.files.size());
  if (!inserted) {
    TraceFile& f = open.trace.files[it->second];
    f.mask |= event.mask;
    if (seq < open.seq[it->second]) {  // a held event that came first
      open.seq[it->second] = seq;
      open.first[it->second] = event.time;
    }
    return;
  }
  if (open.trace.files.size() >= options_.max_files) {
    open.index.erase(it);
    open.trace.complete = false;
    return;
  }
  TraceFile f;
  f.path = path;
  f.dev = event.dev;
  f.ino = event.ino;
  f.size = event.size;
  f.mask = event.mask;
  if (event.time < open.trace.start) open.trace.start = event.time;  // held, replayed
  open.trace.files.push_back(std::move(f));
  open.seq.push_back(seq);
  open.first.push_back(event.time);
  open.last_new = std::max(open.last_new, event.time);
}

void TraceAssembler::Overflow() {
  ++stats_.overflows;
  for (auto& [key, open] : traces_) open.trace.complete = false;
}

void TraceAssembler::ChargeCpu(absl::Duration cpu) {
  uint64_t total = 0;
  for (auto& [key, open] : traces_) total += open.events_since_charge;
  if (total == 0) return;
  for (auto& [key, open] : traces_) {
    if (open.events_since_charge == 0) continue;
    open.trace.cpu += cpu * static_cast<double>(open.events_since_charge) / static_cast<double>(total);
    open.events_since_charge = 0;
  }
}

Trace TraceAssembler::Finish(Open& open, TraceEnd why, absl::Time now) {
  Trace t = std::move(open.trace);
  t.end = now;
  t.end_reason = why;
  // First-access order: held events replay late, so order by arrival seq.
  std::vector<size_t> order(t.files.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return open.seq[a] < open.seq[b]; });
  std::vector<TraceFile> files;
  files.reserve(order.size());
  for (size_t i : order) {
    files.push_back(std::move(t.files[i]));
    files.back().first_access = std::max(absl::ZeroDuration(), open.first[i] - t.start);
  }
  t.files = std::move(files);
  return t;
}

void TraceAssembler::DropHeld(const std::vector<Held>& held) {
  for (const Held& h : held) {
    if (h.candidates.empty()) {
      ++stats_.unattributed;
      continue;
    }
    // Several watched containers could have opened it (same image, same
    // layers) and no pid told which: each candidate may be short.
    ++stats_.ambiguous;
    for (const std::string& c : h.candidates) {
      if (auto t = traces_.find(c); t != traces_.end()) t->second.trace.complete = false;
    }
  }
}

std::vector<Trace> TraceAssembler::Tick(absl::Time now) {
  // Held events that nothing claimed within a quiet period are dropped
  // (before the traces they could belong to end).
  for (auto it = held_.begin(); it != held_.end();) {
    if (!it->second.empty() && now - it->second.front().event.time >= options_.quiet) {
      DropHeld(it->second);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<Trace> done;
  for (auto it = traces_.begin(); it != traces_.end();) {
    Open& open = it->second;
    std::optional<TraceEnd> why;
    if (!open.started) {
      if (now - open.watched >= options_.start_timeout) why = TraceEnd::kNeverStarted;
    } else if (now - open.trace.start >= options_.limit) {
      why = TraceEnd::kLimit;
    } else if (now - open.last_new >= options_.quiet) {
      why = TraceEnd::kQuiet;
    }
    if (why) {
      done.push_back(Finish(open, *why, now));
      it = traces_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

std::optional<Trace> TraceAssembler::End(const std::string& container, absl::Time now) {
  // Later events of its mounts need no look-up to be dropped... but the
  // container is gone: forget its mounts.
  for (auto it = owners_.begin(); it != owners_.end();) {
    it = it->second.container == container ? owners_.erase(it) : std::next(it);
  }
  auto it = traces_.find(container);
  if (it == traces_.end()) return std::nullopt;
  Trace t = Finish(it->second, it->second.started ? TraceEnd::kExit : TraceEnd::kNeverStarted, now);
  traces_.erase(it);
  return t;
}

std::vector<Trace> TraceAssembler::EndAll(absl::Time now) {
  std::vector<Trace> done;
  for (auto& [key, open] : traces_) done.push_back(Finish(open, TraceEnd::kShutdown, now));
  traces_.clear();
  return done;
}

void AttributeLayers(const RootfsChain& chain, const IdentifyFn& identify, Trace* trace) {
  std::vector<TraceFile> kept;
  kept.reserve(trace->files.size());
  for (TraceFile& f : trace->files) {
    const std::string rel = f.path.size() > 1 ? f.path.substr(1) : std::string();
    const std::pair<uint64_t, uint64_t> want{f.dev, f.ino};
    if (!chain.upper_dir.empty() && identify(chain.upper_dir, rel) == want) {
      ++trace->dropped_upper;
      continue;
    }
    bool found = false;
    for (const LayerDir& layer : chain.lowers) {
      if (identify(layer.dir, rel) == want) {
        f.layer = layer.id;
        found = true;
        break;
      }
    }
    if (!found) {
      ++trace->dropped_unresolved;
      continue;
    }
    kept.push_back(std::move(f));
  }
  trace->files = std::move(kept);
}

}  // namespace ndocker::hbcsa
