// ndocker-snapshotter: the daemon containerd reaches through
// [proxy_plugins.ndocker] (type "snapshot").
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "hbcsa/composite_advisor.h"
#include "hbcsa/plan_annotations.h"
#include "hbcsa/profiles/profile_book.h"
#include "hbcsa/profiles/profile_store.h"
#include "hbcsa/promoter/auto_promoter.h"
#include "hbcsa/promoter/data_only_layers.h"
#include "hbcsa/promoter/demoter.h"
#include "hbcsa/promoter/hot_layer_book.h"
#include "hbcsa/promoter/hot_layer_store.h"
#include "hbcsa/promoter/hot_stacks.h"
#include "hbcsa/promoter/image_chain.h"
#include "hbcsa/promoter/promoter.h"
#include "hbcsa/recorder/cold_start_recorder.h"
#include "hbcsa/static_advisor.h"
#include "hbcsa/tracer/tracer.h"
#include "lass/advisor.h"
#include "lass/content_watcher.h"
#include "lass/watcher_source.h"
#include "snapshotter/admin_service.h"
#include "snapshotter/config.h"
#include "snapshotter/fast_pressure.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/labels.h"
#include "snapshotter/log.h"
#include "snapshotter/snapshots_service.h"
#include "snapshotter/status_macros.h"
#include "snapshotter/unique_fd.h"

namespace ndocker {
namespace {

constexpr char kVersion[] = "0.1.0";
constexpr int kMaxMessageBytes = 16 << 20;  // containerd's limit both ways

// True when some process accepts connections on the socket path.
bool SocketIsLive(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  path.copy(addr.sun_path, path.size());
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

absl::Status PrepareSocketPath(const std::string& address) {
  if (address.empty() || address[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("address must be an absolute socket path: ", address));
  }
  if (address.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", address));
  }
  const std::string dir = std::filesystem::path(address).parent_path();
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    // Only a directory we create is ours to make private.
    NDOCKER_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  } else if ((st.st_mode & 077) != 0) {
    spdlog::warn("msg=\"socket directory is accessible to other users\" dir={}", Q(dir));
  }
  if (::lstat(address.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(address, " exists and is not a socket"));
    }
    if (SocketIsLive(address)) {
      return absl::FailedPreconditionError(absl::StrCat("another daemon is serving ", address));
    }
    if (::unlink(address.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot remove stale socket ", address));
    }
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  CLI::App app{"ndocker-snapshotter: a two-tier (fast/slow) containerd snapshotter"};
  std::string config_path, root, address, log_level, fast_path, slow_path, budget, default_tier;
  std::string claim_tiers;
  app.add_option("--config", config_path,
                 absl::StrCat("TOML config file (default ", kDefaultConfigPath, " when present)"));
  app.add_option("--root", root, absl::StrCat("state directory (default ", kDefaultRoot, ")"));
  app.add_option("--address", address, absl::StrCat("unix socket to serve (default ", kDefaultAddress, ")"));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--fast-path", fast_path, "fast tier directory (default <root>/fast)");
  app.add_option("--slow-path", slow_path, "slow tier directory (default <root>/slow)");
  app.add_option("--fast-budget", budget, "fast tier byte budget, e.g. 8GiB (default unlimited)");
  app.add_option("--default-tier", default_tier, "tier of snapshots with no placement: fast or slow");
  app.add_option("--claim-tiers", claim_tiers,
                 "take tiers this root's metadata does not own: adopt (keep what no snapshot "
                 "knows in <tier>/lost+found) or wipe (delete it); default: refuse to start")
      ->check(CLI::IsMember({"adopt", "wipe", "refuse"}));
  app.set_version_flag("--version", kVersion);
  CLI11_PARSE(app, argc, argv);

  Config config;
  std::string chosen_config = config_path;
  if (chosen_config.empty() && std::filesystem::exists(kDefaultConfigPath)) chosen_config = kDefaultConfigPath;
  if (!chosen_config.empty()) {
    auto loaded = LoadConfig(chosen_config);
    if (!loaded.ok()) {
      std::cerr << "ndocker-snapshotter: " << loaded.status().message() << "\n";
      return 2;
    }
    config = *loaded;
  }
  if (!root.empty()) config.root = root;
  if (!address.empty()) config.address = address;
  if (!log_level.empty()) config.log_level = log_level;
  if (!fast_path.empty()) config.fast_path = fast_path;
  if (!slow_path.empty()) config.slow_path = slow_path;
  if (!budget.empty()) {
    auto bytes = ParseByteSize(budget);
    if (!bytes.ok()) {
      std::cerr << "ndocker-snapshotter: --fast-budget: " << bytes.status().message() << "\n";
      return 2;
    }
    config.fast_budget_bytes = *bytes;
  }
  if (!default_tier.empty()) {
    auto t = ParseTier(default_tier);
    if (!t.ok()) {
      std::cerr << "ndocker-snapshotter: --default-tier: " << t.status().message() << "\n";
      return 2;
    }
    config.default_tier = *t;
  }
  if (absl::Status st = InitLogging(config.log_level); !st.ok()) {
    std::cerr << "ndocker-snapshotter: " << st.message() << "\n";
    return 2;
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // LASS: the watcher follows containerd's content store; the advisor turns
  // what it sees into a tier per unpacked layer.
  std::shared_ptr<lass::SessionSource> sessions;
  const lass::ContentTracker* tracker = nullptr;  // owned by the watcher inside `sessions`
  const std::string content_root = config.lass.containerd_root + "/io.containerd.content.v1.content";
  if (config.lass.enabled) {
    lass::ContentWatcherOptions wo;
    wo.content_root = content_root;
    auto watcher = lass::ContentWatcher::Start(wo);
    if (!watcher.ok()) {
      spdlog::critical("msg=\"cannot start the content-fetch watcher\" path={} error={}",
                       Q(wo.content_root), Q(watcher.status().message()));
      return 1;
    }
    tracker = &(*watcher)->tracker();
    sessions = std::make_shared<lass::WatcherSource>(*std::move(watcher));
  }
  // HBCSA static analysis: engine and application layers go to the fast tier
  // (until a trace exists); it follows the same pull sessions as LASS.
  // The profile store lives in the core's metadata DB, opened later.
  auto profile_store = std::make_shared<std::atomic<hbcsa::ProfileStore*>>(nullptr);
  std::shared_ptr<hbcsa::StaticAdvisor> static_advisor;
  if (tracker != nullptr && config.hbcsa.enabled) {
    hbcsa::StaticAdvisorOptions so;
    so.content_root = content_root;
    so.sessions = [tracker, keep = sessions] { return tracker->Sessions(); };  // keeps the watcher alive
    so.has_trace = [profile_store](const std::string& manifest) {
      hbcsa::ProfileStore* store = profile_store->load();
      if (store == nullptr) return false;
      absl::StatusOr<bool> has = store->Has(manifest);
      return has.ok() && *has;
    };
    static_advisor = std::make_shared<hbcsa::StaticAdvisor>(std::move(so));
  }
  // The advisor asks the core for the slow tier's measured write-back rate;
  // the core exists only after the advisor, hence the indirection.
  auto core_for_rate = std::make_shared<std::atomic<Snapshotter*>>(nullptr);
  lass::AdvisorOptions ao;
  ao.policy = config.lass.policy == "predict" ? lass::Policy::kPredict : lass::Policy::kLdl;
  ao.default_tier = config.default_tier;
  ao.max_concurrent_downloads = config.lass.max_concurrent_downloads;
  ao.slow_store_rate = static_cast<double>(config.lass.slow_store_bytes_per_second);
  ao.measured_slow_rate = [core_for_rate] {
    Snapshotter* c = core_for_rate->load();
    return c != nullptr ? c->SlowFlushBytesPerSecond() : 0.0;
  };
  ao.slow_backlog_bytes = [core_for_rate] {
    Snapshotter* c = core_for_rate->load();
    return c != nullptr ? static_cast<double>(c->SlowFlushBacklogBytes()) : 0.0;
  };
  auto advisor = std::make_shared<lass::Advisor>(ao, sessions);
  // Decided once, here, so that the log says what the core was given.
  std::string flush_why;
  config.flush_slow_commits = ResolveFlush(config, &flush_why);
  SnapshotterOptions options = config.ToOptions();
  // Placement inputs in order: static analysis (it only ever says "fast"),
  // then LASS; the label and the budget stay the core's.
  if (static_advisor) {
    options.advisor = std::make_shared<hbcsa::CompositeAdvisor>(
        std::vector<std::shared_ptr<PlacementAdvisor>>{static_advisor, advisor});
  } else {
    options.advisor = advisor;
  }
  // HBCSA: the core tells the recorder about container rootfs snapshots; the
  // recorder has the tracer watch them and merges traces into profiles.
  std::shared_ptr<hbcsa::ColdStartRecorder> recorder;
  if (config.hbcsa.enabled) {
    recorder = std::make_shared<hbcsa::ColdStartRecorder>([sessions](const std::string& top) -> std::string {
      if (!sessions) return "";
      for (const lass::PullSession& s : sessions->SessionsWithChain(top)) {
        if (!s.layers.empty() && s.layers.back().chain_id == top) return s.manifest_digest;
      }
      return "";
    });
    options.observer = recorder;
  }
  // HBCSA part 2: containers on an image's top layer mount its hot layer
  // (attached once the core is open and the hot layer records recovered).
  std::shared_ptr<hbcsa::HotStacks> hot_stacks;
  if (config.hbcsa.enabled) {
    hbcsa::HotStacksOptions hso;
    hso.mount_dir = config.root + "/hot-mounts";
    hso.layer_path = [layout = Layout(config.root, "", "")](uint64_t id) { return layout.LinkPath(id); };
    hso.reap_interval = absl::Seconds(config.reap_interval_seconds);
    hot_stacks = std::make_shared<hbcsa::HotStacks>(std::move(hso));
    options.shared_lowers = hot_stacks;
  }
  if (absl::Status st = ParseClaimMode(claim_tiers, &options.claim_tiers); !st.ok()) {
    std::cerr << "ndocker-snapshotter: --claim-tiers: " << st.message() << "\n";
    return 2;
  }

  auto core = Snapshotter::Open(options);
  if (!core.ok()) {
    spdlog::critical("msg=\"cannot open snapshotter\" root={} error={}", Q(config.root),
                     Q(core.status().message()));
    // Also plainly on stderr: an operator starting it by hand must see why.
    std::cerr << "ndocker-snapshotter: cannot open snapshotter: " << core.status().message() << "\n";
    return 1;
  }
  if (absl::Status st = PrepareSocketPath(config.address); !st.ok()) {
    spdlog::critical("msg=\"cannot serve\" address={} error={}", Q(config.address), Q(st.message()));
    return 1;
  }

  core_for_rate->store(core->get());
  std::unique_ptr<hbcsa::ProfileStore> profiles;
  std::unique_ptr<hbcsa::Tracer> tracer;
  auto auto_promoter_slot = std::make_shared<std::atomic<hbcsa::AutoPromoter*>>(nullptr);
  if (recorder) {
    profiles = std::make_unique<hbcsa::ProfileStore>((*core)->store(), static_cast<size_t>(config.hbcsa.max_files));
    hbcsa::TracerOptions to;
    to.assembler.quiet = absl::Milliseconds(config.hbcsa.quiet_ms);
    to.assembler.limit = absl::Milliseconds(config.hbcsa.limit_ms);
    to.assembler.max_files = static_cast<size_t>(config.hbcsa.max_files);
    auto started = hbcsa::Tracer::Start({(*core)->layout().TierRoot(Tier::kFast),
                                         (*core)->layout().TierRoot(Tier::kSlow)},
                                        to, recorder.get());
    if (started.ok()) {
      tracer = *std::move(started);
      spdlog::info("msg=\"cold-start tracer running\" quiet_ms={} limit_ms={}", config.hbcsa.quiet_ms,
                   config.hbcsa.limit_ms);
    } else {
      // Tracing is an optimisation: never a reason not to serve.
      spdlog::warn("msg=\"cold-start tracer not running\" error={}", Q(started.status().message()));
    }
    // [hbcsa] promote = "after-trace": each recorded trace asks for the
    // image's hot layer (the builder exists only once the hot layer records
    // are recovered, below).
    recorder->OnProfileRecorded([slot = auto_promoter_slot](const std::string& image) {
      if (hbcsa::AutoPromoter* a = slot->load()) a->Request(image);
    });
    recorder->Attach(tracer.get(), profiles.get());
    profile_store->store(profiles.get());
  }
  SnapshotsService snapshots(core->get());
  std::unique_ptr<hbcsa::StoreProfileBook> profile_book;
  if (profiles) {
    profile_book = std::make_unique<hbcsa::StoreProfileBook>(*profiles, [sessions](const std::string& d) {
      return sessions ? sessions->ManifestForIndex(d).value_or("") : std::string();
    });
  }
  // Hot layers (HBCSA part 2): records kept in the metadata store, built on
  // demand. A crash's half-built version is gone before anything can use it.
  std::unique_ptr<hbcsa::HotLayerStore> hot_layers;
  std::unique_ptr<hbcsa::Promoter> promoter;
  std::unique_ptr<hbcsa::StoreHotLayerBook> hot_book;
  std::unique_ptr<hbcsa::AutoPromoter> auto_promoter;
  if (profile_book) {
    hot_layers = std::make_unique<hbcsa::HotLayerStore>(
        (*core)->store(), (*core)->layout().TierRoot(Tier::kFast) + "/hot");
    absl::StatusOr<hbcsa::HotRecovery> recovered = hot_layers->Recover();
    if (recovered.ok() &&
        (!recovered->building_dropped.empty() || !recovered->orphans_removed.empty())) {
      spdlog::warn("msg=\"hot layers: an interrupted build was removed\" versions={} leftovers={}",
                   recovered->building_dropped.size(), recovered->orphans_removed.size());
    }
    Snapshotter* core_ptr = core->get();
    if (recovered.ok()) core_ptr->AddFastBytes(recovered->kept_bytes);  // they count against the budget
    hbcsa::Promoter::FastBudget hot_budget;
    hot_budget.reserve = [core_ptr, limit = config.fast_budget_bytes](int64_t bytes) {
      if (core_ptr->ReserveFastBytes(bytes)) return absl::OkStatus();
      return absl::ResourceExhaustedError(absl::StrCat("the hot layer (", bytes,
                                                       " bytes) does not fit the fast budget: ",
                                                       core_ptr->FastBytesCounted(), " of ", limit,
                                                       " bytes are counted"));
    };
    hot_budget.release = [core_ptr](int64_t bytes) { core_ptr->ReleaseFastBytes(bytes); };
    promoter = std::make_unique<hbcsa::Promoter>(
        *hot_layers, [core_ptr](const std::string& top) { return hbcsa::ReadImageChain(*core_ptr, top); },
        hbcsa::BuildOptions{}, std::move(hot_budget));
    if (recovered.ok()) {
      // Hot layers are mounted only where the kernel follows metacopy stubs
      // into data-only lower layers (Linux >= 6.5); elsewhere containers use
      // their layer chain as before.
      absl::StatusOr<bool> data_only = hbcsa::DataOnlyLowerLayersSupported((*core)->layout().TierRoot(Tier::kFast));
      hbcsa::HotStackWiring wiring;
      wiring.store = hot_layers.get();
      wiring.in_use = [core_ptr]() -> absl::StatusOr<hbcsa::StackUse> {
        absl::StatusOr<std::vector<SnapshotEntry>> entries = core_ptr->Entries();
        if (!entries.ok()) return entries.status();
        hbcsa::StackUse use;
        for (const SnapshotEntry& e : *entries) {
          if (e.record.shared_lower != 0) use.versions.insert(e.record.shared_lower);
          if (!e.record.retired.empty()) use.layers_with_retired_copies.insert(e.record.id);
        }
        return use;
      };
      wiring.release_fast_bytes = [core_ptr](int64_t bytes) { core_ptr->ReleaseFastBytes(bytes); };
      wiring.stacks_dropped = [core_ptr] {
        if (absl::Status s = core_ptr->Cleanup(); !s.ok()) {
          spdlog::warn("msg=\"cleanup after dropping hot layers failed\" error={}", Q(s.message()));
        }
      };
      std::string why;
      if (!data_only.ok()) {
        why = std::string(data_only.status().message());
      } else if (!*data_only) {
        why = "the kernel has no data-only lower layers (Linux < 6.5): containers mount their layer chain";
      } else {
        why = "the kernel follows metacopy stubs into data-only lower layers";
        for (Tier t : {Tier::kFast, Tier::kSlow}) {
          absl::StatusOr<bool> nested = hbcsa::OnOverlayfs((*core)->layout().TierRoot(t));
          if (!nested.ok() || *nested) {
            why = absl::StrCat("the ", TierName(t), " tier is on an overlayfs (or unreadable): a container over a "
                               "hot layer would pass the kernel's overlay stacking limit");
            data_only = false;
          }
        }
      }
      wiring.mount_stacks = data_only.ok() && *data_only;
      spdlog::info("msg=\"hot layers\" mounted={} why={}", wiring.mount_stacks, Q(why));
      const bool can_mount = wiring.mount_stacks;
      // Demotion only where containers start from the hot layer: elsewhere
      // it would leave their reads on the slow tier.
      hbcsa::StoreHotLayerBook::Wiring book_wiring;
      if (!config.hbcsa.demote) {
        book_wiring.no_demotion_why = "demotion is off ([hbcsa] demote = false)";
      } else if (!can_mount) {
        book_wiring.no_demotion_why = absl::StrCat("hot layers are not mounted on this node: ", why);
      } else {
        book_wiring.demote = [core_ptr](const hbcsa::HotLayerVersion& v, bool wait) {
          return hbcsa::DemoteLayers(*core_ptr, v, wait);
        };
      }
      book_wiring.promoted = [stacks = hot_stacks] { stacks->ReapSoon(); };
      book_wiring.core = core_ptr;
      book_wiring.tracing_tops = [recorder] { return recorder->TracingTops(); };
      book_wiring.promoting = [slot = auto_promoter_slot](const std::string& image) {
        hbcsa::AutoPromoter* a = slot->load();
        return a != nullptr && a->Pending(image);
      };
      hot_book = std::make_unique<hbcsa::StoreHotLayerBook>(*hot_layers, *promoter, *profile_book,
                                                            std::move(book_wiring));
      hot_stacks->Attach(std::move(wiring));
      if (absl::StatusOr<hbcsa::HotReapReport> r = hot_stacks->Reconcile(); !r.ok()) {
        spdlog::warn("msg=\"hot layers not reconciled at start\" error={}", Q(r.status().message()));
      } else if (!r->dropped.empty()) {
        spdlog::info("msg=\"retired hot layers dropped at start\" count={}", r->dropped.size());
      }
      hot_stacks->StartReaper();
      // Built only where containers can use them: elsewhere a hot layer
      // would take fast-tier bytes for nothing (`ndockerctl promote` still can).
      if (config.hbcsa.promote == "after-trace" && can_mount) {
        auto_promoter = std::make_unique<hbcsa::AutoPromoter>(
            [book = hot_book.get()](const std::string& image) {
              // Waits for the demotion (this worker is in the background, idle
              // I/O): its end reaps, so the stack is remade over the new copies.
              return book->Promote(image, HotLayerBook::PromoteOptions{.keep_layers = false, .wait = true}).status();
            });
        auto_promoter_slot->store(auto_promoter.get());
      }
      spdlog::info("msg=\"hot layer builds\" promote={} after_traces={}", config.hbcsa.promote,
                   auto_promoter != nullptr);
    } else {
      // An optimisation: never a reason not to serve the snapshots.
      spdlog::error("msg=\"hot layers off: their records could not be recovered\" error={}",
                    Q(recovered.status().message()));
    }
  }
  AdminService admin(
      core->get(), kVersion,
      [advisor, static_advisor, profile_store](const std::string& digest) {
        absl::StatusOr<ndocker::admin::v1::GetPlanResponse> plan = advisor->Plan(digest);
        if (!plan.ok()) return plan;
        std::optional<hbcsa::Profile> profile;
        if (hbcsa::ProfileStore* store = profile_store->load()) {
          if (auto p = store->Get(plan->manifest()); p.ok()) profile = *std::move(p);
        }
        hbcsa::AnnotatePlan(static_advisor.get(), profile ? &*profile : nullptr, &*plan);
        return plan;
      },
      profile_book.get(), hot_book.get());
  // Demotion by pressure: the least recently used layers, then the oldest
  // hot layers, leave the fast tier when it passes its high watermark.
  FastPressure::Wiring pressure_wiring;
  pressure_wiring.core = core->get();
  pressure_wiring.marks = Watermarks{config.fast_high_watermark, config.fast_low_watermark};
  pressure_wiring.interval = absl::Seconds(config.pressure_check_seconds);
  if (hot_book) {
    pressure_wiring.shed = [store = hot_layers.get(), stacks = hot_stacks](int64_t excess) -> int64_t {
      absl::StatusOr<int64_t> freed = hbcsa::RetireOldestHotLayers(*store, excess);
      if (!freed.ok()) {
        spdlog::warn("msg=\"retiring hot layers under pressure failed\" error={}", Q(freed.status().message()));
        return 0;
      }
      stacks->ReapSoon();
      return *freed;
    };
    pressure_wiring.leaving = [store = hot_layers.get()]() -> int64_t {
      absl::StatusOr<std::vector<hbcsa::HotLayerRecord>> all = store->List();
      return all.ok() ? hbcsa::RetiredHotBytes(*all) : 0;
    };
  }
  FastPressure pressure(std::move(pressure_wiring));
  if (config.fast_budget_bytes > 0) {
    pressure.Start();
    spdlog::info("msg=\"fast-tier pressure demotion on\" budget={} high_watermark={:.2f} low_watermark={:.2f} "
                 "check_seconds={}",
                 config.fast_budget_bytes, config.fast_high_watermark, config.fast_low_watermark,
                 config.pressure_check_seconds);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", config.address), grpc::InsecureServerCredentials());
  builder.RegisterService(&snapshots);
  builder.RegisterService(&admin);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // The socket is created with mode 0600 (root only) from the start.
  mode_t old_umask = ::umask(0177);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ::umask(old_umask);
  if (!server) {
    spdlog::critical("msg=\"cannot listen\" address={}", Q(config.address));
    return 1;
  }
  if (::chmod(config.address.c_str(), 0600) != 0) {
    spdlog::critical("msg=\"cannot chmod socket\" address={}", Q(config.address));
    return 1;
  }
  spdlog::info("msg=\"serving\" address={} root={} fast={} slow={} fast_budget={} default_tier={} version={}",
               Q(config.address), Q(config.root), Q((*core)->layout().TierRoot(Tier::kFast)),
               Q((*core)->layout().TierRoot(Tier::kSlow)), config.fast_budget_bytes,
               TierName(config.default_tier), kVersion);
  spdlog::info("msg=\"slow-tier flush on commit\" setting={}", Q(flush_why));
  if (config.lass.enabled) {
    spdlog::info("msg=\"lass on\" policy={} containerd_root={} max_concurrent_downloads={} container_tier={}",
                 config.lass.policy, Q(config.lass.containerd_root), config.lass.max_concurrent_downloads,
                 TierName(config.container_tier));
  } else {
    spdlog::info("msg=\"lass off: unpacked layers get the default tier\" container_tier={}",
                 TierName(config.container_tier));
  }
  sd_notify(0, "READY=1");

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("msg=\"shutting down\" signal={}", sig);
  sd_notify(0, "STOPPING=1");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server.reset();
  auto_promoter_slot->store(nullptr);
  // A throttled demotion (pressure, or a promotion's) would hold the exit
  // for as long as its copy takes: stopped here, redone after the restart.
  (*core)->StopMigrations();
  pressure.Stop();
  if (auto_promoter) auto_promoter->Stop();
  if (hot_stacks) hot_stacks->StopReaper();  // they use the store and the core, which go first
  core_for_rate->store(nullptr);
  profile_store->store(nullptr);
  ::unlink(config.address.c_str());
  return 0;
}

}  // namespace
}  // namespace ndocker

int main(int argc, char** argv) { return ndocker::Run(argc, argv); }
