#include "hbcsa/tracer/trace_assembler.h"

#include <algorithm>


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

void TraceAssembler::Watch(const std::string& container, RootfsChain chain, absl::Time now) {
  if (traces_.count(container)) return;
  Open& open = traces_[container];
  open.trace.container = container;
  open.trace.start = now;
  open.chain = std::move(chain);
  open.watched = now;
}

const LayerDir* TraceAssembler::LowerOf(const Open& open, const std::string& dir) {
  for (const LayerDir& l : open.chain.lowers) {
    if (l.dir == dir) return &l;
  }
  return nullptr;
}

void TraceAssembler::Add(const TraceEvent& event) {
  Open* open = nullptr;
  bool own = true;
  if (std::optional<std::string> by_pid = lookup_->ContainerOfPid(event.pid)) {
    if (auto it = traces_.find(*by_pid); it != traces_.end()) open = &it->second;
  }
  if (open == nullptr) {
    // No watched container's process: a hook or the runtime on the host
    // reading through the rootfs mount, or a process that exited before its
    // cgroup was read. The layer says whose it can be.
    std::vector<Open*> holders;
    for (auto& [key, o] : traces_) {
      if (o.chain.upper_dir == event.layer_dir || LowerOf(o, event.layer_dir) != nullptr) {
        holders.push_back(&o);
      }
    }
    if (holders.empty()) {
      ++stats_.unattributed;
      return;
    }
    auto top = [](const Open* o) { return o->chain.lowers.empty() ? std::string() : o->chain.lowers.front().id; };
    const bool one_image = std::all_of(holders.begin(), holders.end(),
                                       [&](const Open* o) { return top(o) == top(holders.front()); });
    if (!one_image) {
      ++stats_.ambiguous;
      for (Open* o : holders) o->trace.complete = false;
      return;
    }
    ++stats_.by_layer;
    open = holders.front();
    own = false;
  }
  if (event.layer_dir == open->chain.upper_dir) {
    ++open->trace.dropped_upper;
    return;
  }
  const LayerDir* layer = LowerOf(*open, event.layer_dir);
  if (layer == nullptr) {
    ++stats_.outside_chain;
    return;
  }
  Record(*open, event, layer->id, own);
}

void TraceAssembler::Record(Open& open, const TraceEvent& event, const std::string& layer, bool own) {
  if (open.started && (event.time - open.trace.start >= options_.limit ||
                       event.time - open.last_new >= options_.quiet)) {
    // The trace is over (Tick has not run yet): same result whatever the tick.
    ++stats_.after_end;
    return;
  }
  // Host reads before the container's first own open (CRI's CreateContainer
  // reads /etc/passwd and /etc/group through a temporary mount; hooks) are
  // its files, but its start is its own first open: StartContainer may come
  // long after CreateContainer.
  if (!open.started && own) {
    open.started = true;
    open.trace.start = event.time;
    open.last_new = event.time;
  }
  ++open.trace.events;
  ++open.events_since_charge;
  auto [it, inserted] = open.index.emplace(event.path, open.trace.files.size());
  if (!inserted) {
    open.trace.files[it->second].mask |= event.mask;
    return;
  }
  if (open.trace.files.size() >= options_.max_files) {
    open.index.erase(it);
    open.trace.complete = false;
    return;
  }
  TraceFile f;
  f.path = event.path;
  f.layer = layer;
  f.layer_dir = event.layer_dir;
  f.mask = event.mask;
  f.first_access = open.started ? std::max(absl::ZeroDuration(), event.time - open.trace.start)
                                 : absl::ZeroDuration();
  open.trace.files.push_back(std::move(f));
  if (open.started) open.last_new = std::max(open.last_new, event.time);
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
  return t;
}

std::vector<Trace> TraceAssembler::Tick(absl::Time now) {
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

void FillSizes(const SizeFn& size_of, Trace* trace) {
  std::vector<TraceFile> kept;
  kept.reserve(trace->files.size());
  for (TraceFile& f : trace->files) {
    std::optional<int64_t> size = size_of(f.layer_dir, f.path.size() > 1 ? f.path.substr(1) : "");
    if (!size) {
      ++trace->dropped_unresolved;
      continue;
    }
    f.size = *size;
    kept.push_back(std::move(f));
  }
  trace->files = std::move(kept);
}

}  // namespace ndocker::hbcsa
