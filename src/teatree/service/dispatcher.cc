#include "teatree/service/dispatcher.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "teatree/bus/lease.h"
#include "teatree/bus/model_registry.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/request_queue.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/control/control_store.h"
#include "teatree/request/names.h"
#include "teatree/service/notes.h"

namespace teatree {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// What the dispatcher knows of one model.
struct ModelSlot {
  std::unique_ptr<LaunchedManager> manager;
  Clock::time_point last_request = Clock::now();
  Clock::time_point started;
  Clock::time_point restart_at;  // Not before this after a crash.
  int crashes_in_a_row = 0;
  bool stopping = false;           // Stopped for idleness: its exit is not a crash.
  bool recover = false;            // Its last manager did not stop cleanly: start one without work.
  Clock::time_point disk_checked;  // When its manager's disk use was last passed on.
  std::string waiting;             // Why its manager is not running yet, as last recorded.
};

/// The model named by a request subject, or empty.
std::string ModelOf(std::string_view subject) {
  const std::string prefix = RequestSubject("");
  if (!subject.starts_with(prefix)) return "";
  std::string model(subject.substr(prefix.size()));
  return ValidateName("model", model).ok() ? model : "";
}

/// The models whose manager did not stop cleanly, as the catalog at `control_url` says.
std::vector<std::string> ModelsToRecover(const std::string& control_url) {
  std::vector<std::string> models;
  if (control_url.empty()) return models;
  auto listed = [&]() -> Result<std::vector<ModelRecord>> {
    ARROW_ASSIGN_OR_RAISE(auto control, ControlStore::Open(control_url));
    return control->ListModels();
  }();
  if (!listed.ok()) {
    spdlog::warn(
        "dispatcher: cannot read the control catalog ({}); models with unpublished "
        "work are recovered at their next request",
        listed.status().message());
    return models;
  }
  for (const auto& model : *listed) {
    if (!model.status.empty() && model.status != "stopped") models.push_back(model.id);
  }
  return models;
}

/// How often the dispatcher looks at how full each running manager's volume is.
constexpr auto kDiskCheckInterval = std::chrono::seconds(30);

/// Hands the launcher what `model`'s manager last reported of its disk.
void PassOnDiskUse(NatsConnection& nats, Launcher& launcher, const std::string& model) {
  auto note = LastNote(nats, ManagerStatusSubject(model));
  if (!note.ok() || !*note) return;
  auto json = ParseJson((*note)->body, "a manager status").ValueOr(nlohmann::json());
  if (!json.is_object() || !json.contains("disk") || !json["disk"].is_object()) return;
  launcher.NoteDiskUse(model, json["disk"].value("used", int64_t{0}),
                       json["disk"].value("size", int64_t{0}));
}

}  // namespace

Status RegisterModelsOf(const std::filesystem::path& data_dir, ModelRegistry& registry) {
  if (data_dir.empty()) return Status::OK();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir / "models", ec)) {
    const std::string model = entry.path().filename().string();
    if (!entry.is_directory() || !ValidateName("model", model).ok()) continue;
    ARROW_RETURN_NOT_OK(registry.Create(model, "").status());
  }
  return Status::OK();  // No models directory yet: nothing to register.
}

Status RunDispatcher(const DispatcherOptions& options, Launcher& launcher,
                     const std::atomic<bool>& stop) {
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(options.nats));
  // The streams are made (or checked) first; a NATS cluster slow to answer is waited for.
  ARROW_ASSIGN_OR_RAISE(auto queue, RetryWhileUnavailable("dispatcher", stop, [&] {
                          return RequestQueue::Make(*nats, options.queue);
                        }));
  ARROW_RETURN_NOT_OK(RetryWhileUnavailable(
      "dispatcher", stop, [&] { return EnsureNoteStream(*nats, options.notes); }));
  // Requests as they are submitted: the earliest sign a model has work.
  ARROW_ASSIGN_OR_RAISE(auto requests,
                        NoteSubscription::Live(*nats, std::string(kRequestSubjects)));
  ARROW_ASSIGN_OR_RAISE(auto registry, ModelRegistry::Open(*nats));
  ARROW_RETURN_NOT_OK(RegisterModelsOf(options.data_dir, *registry));
  ARROW_ASSIGN_OR_RAISE(auto notifier, Notifier::Make(*nats, options.notes));
  // Requests for a model that does not exist (sent around the clients, which refuse them)
  // start no manager and create nothing: each seen is answered rejected, and the model's
  // queue is emptied.
  auto exists = [&](const std::string& model) {
    auto found = registry->Exists(model);
    return !found.ok() || *found;  // Unsure (NATS trouble): let a manager decide.
  };
  auto refuse = [&](const std::string& model, const std::string& body) {
    auto json = ParseJson(body, "the request").ValueOr(nlohmann::json());
    const std::string id = json.is_object() ? json.value("request_id", "") : "";
    if (!ValidateRequestId(id).ok()) return;
    const std::string op = json.value("op", "");
    (void)notifier->Publish(
        RequestNoteSubject(model, id),
        RejectedNote(model, id, op,
                     "model " + model +
                         " does not exist: create it with `teatree model create "
                         "--model " +
                         model + "` or submit a create_table first"));
  };
  std::map<std::string, ModelSlot> models;
  for (const auto& model : ModelsToRecover(options.control_url)) {
    spdlog::info("dispatcher: the manager of {} did not stop cleanly; starting one to recover",
                 model);
    models[model].recover = true;
  }
  // Why a manager is not running yet goes to the catalog, where `teatree status` shows it.
  std::unique_ptr<ControlStore> control;
  if (!options.control_url.empty())
    control = ControlStore::Open(options.control_url).ValueOr(nullptr);
  auto note_waiting = [&](const std::string& model, ModelSlot& slot, const std::string& waiting) {
    if (waiting == slot.waiting) return;
    slot.waiting = waiting;
    if (!waiting.empty()) {
      spdlog::warn("dispatcher: the manager of {} is not running yet: {}", model, waiting);
    }
    if (control) {
      if (Status noted = control->SetPending(model, waiting); !noted.ok()) {
        spdlog::warn("dispatcher: {}", noted.message());
      }
    }
  };
  auto adopted = launcher.Adopt();
  if (!adopted.ok()) {
    spdlog::warn("dispatcher: cannot list the managers left running: {}",
                 adopted.status().message());
  } else {
    for (auto& [model, manager] : *adopted) {
      spdlog::info("dispatcher: took over the running manager of {} ({})", model,
                   manager->Describe());
      ModelSlot& slot = models[model];
      slot.manager = std::move(manager);
      slot.started = Clock::now();
      slot.recover = false;
    }
  }
  auto last_poll = Clock::time_point();
  uint64_t reconnects = nats->reconnects();

  auto ensure_running = [&](const std::string& model, ModelSlot& slot) {
    if (slot.manager || Clock::now() < slot.restart_at) return;
    auto holder = Lease::Inspect(*nats, model);
    if (holder.ok() && holder->has_value()) return;  // A live manager has it.
    auto launched = launcher.Launch(model);
    if (!launched.ok()) {
      spdlog::error("dispatcher: cannot start a manager for {}: {}", model,
                    launched.status().message());
      slot.restart_at = Clock::now() + options.max_restart_delay;
      return;
    }
    slot.manager = std::move(*launched);
    slot.started = Clock::now();
    slot.stopping = false;
    spdlog::info("dispatcher: started the manager of {} ({})", model, slot.manager->Describe());
  };

  while (!stop) {
    // Requests seen since the last round mark their models busy. A steady stream of them
    // must not keep the round from going on: drain for one poll interval at most.
    for (const auto round_end = Clock::now() + options.poll_interval; Clock::now() < round_end;) {
      auto next = requests->Next(milliseconds(50));
      if (!next.ok()) {  // NATS is away: nats.c reconnects; the round goes on without it.
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      auto& note = *next;
      if (!note) break;
      const std::string model = ModelOf(note->subject);
      if (model.empty()) continue;
      if (!exists(model)) {
        refuse(model, note->body);
        continue;
      }
      models[model].last_request = Clock::now();
    }
    if (const uint64_t now = nats->reconnects(); now != reconnects) {
      // NATS came back: managers that failed while it was away may start again right away.
      reconnects = now;
      spdlog::info("dispatcher: reconnected to NATS");
      for (auto& [model, slot] : models) {
        slot.crashes_in_a_row = 0;
        slot.restart_at = Clock::now();
      }
    }
    std::set<std::string> backlog;
    const bool polled = Clock::now() - last_poll >= options.poll_interval;
    if (polled) {
      last_poll = Clock::now();
      // Read first: requests queued after a model is created come after it.
      auto last = queue->LastSequence();
      auto waiting = queue->ModelsWithBacklog();
      if (waiting.ok()) {
        for (const auto& model : *waiting) {
          if (exists(model) || !last.ok()) {
            backlog.insert(model);
            models.try_emplace(model);
          } else if (Status purged = queue->Purge(model, *last + 1); !purged.ok()) {
            spdlog::warn("dispatcher: {}", purged.message());
          } else {
            spdlog::warn(
                "dispatcher: removed the queued requests of model {}, which does not "
                "exist",
                model);
          }
        }
      } else {
        spdlog::warn("dispatcher: {}", waiting.status().message());
      }
    }
    for (auto& [model, slot] : models) {
      if (slot.manager) {
        if (auto code = slot.manager->Exited()) {
          const bool crashed = *code != 0 && !slot.stopping;
          spdlog::log(crashed ? spdlog::level::warn : spdlog::level::info,
                      "dispatcher: the manager of {} ({}) exited with code {}", model,
                      slot.manager->Describe(), *code);
          slot.manager.reset();
          if (crashed) {
            // A manager that ran a while before crashing starts the backoff over.
            if (Clock::now() - slot.started > options.max_restart_delay) slot.crashes_in_a_row = 0;
            const auto delay =
                std::min(options.max_restart_delay,
                         options.restart_delay * (1 << std::min(slot.crashes_in_a_row, 16)));
            ++slot.crashes_in_a_row;
            slot.restart_at = Clock::now() + delay;
          } else {
            slot.crashes_in_a_row = 0;
          }
          slot.recover = crashed;
          note_waiting(model, slot, "");
        } else {
          note_waiting(model, slot, slot.manager->Waiting());
          if (Clock::now() - slot.disk_checked > kDiskCheckInterval) {
            slot.disk_checked = Clock::now();
            PassOnDiskUse(*nats, launcher, model);
          }
          if (!slot.stopping && Clock::now() - slot.last_request > options.idle_stop && polled &&
              !backlog.contains(model)) {
            spdlog::info("dispatcher: stopping the idle manager of {}", model);
            slot.stopping = true;
            (void)slot.manager->Stop();
          }
        }
      }
      const bool has_work =
          backlog.contains(model) || Clock::now() - slot.last_request < options.poll_interval;
      if (has_work || slot.recover) ensure_running(model, slot);
    }
  }
  if (launcher.ManagersOutliveDispatcher()) {
    spdlog::info("dispatcher: leaving the running managers for the next dispatcher");
    return Status::OK();
  }
  for (auto& [model, slot] : models) {
    if (slot.manager) (void)slot.manager->Stop();
  }
  for (auto& [model, slot] : models) {
    if (slot.manager) slot.manager->Terminate(options.shutdown_timeout);
  }
  return Status::OK();
}

Status RunElectedDispatcher(const DispatcherOptions& options, Launcher& launcher,
                            const std::atomic<bool>& stop) {
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(options.nats));
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::string holder = std::string("dispatcher ") + host + " pid " + std::to_string(getpid());
  std::string standing_by;  // Who dispatches meanwhile, as last logged.
  while (!stop) {
    std::atomic<bool> lost{false};
    auto lease =
        Lease::Acquire(*nats, std::string(kDispatcherLease), holder,
                       {.ttl = options.lease_ttl, .on_lost = [&](const Status&) { lost = true; }});
    if (!lease.ok()) {
      if (lease.status().message() != standing_by) {
        standing_by = lease.status().message();
        spdlog::info("dispatcher: standing by ({})", standing_by);
      }
      std::this_thread::sleep_for(std::min(options.lease_ttl / 4, milliseconds(1000)));
      continue;
    }
    standing_by.clear();
    spdlog::info("dispatcher: this server dispatches ({})", holder);
    // Dispatch until told to stop or the lease is lost (another took over: stand by again).
    std::atomic<bool> stop_dispatching{false};
    std::thread watch([&] {
      while (!stop && !lost) std::this_thread::sleep_for(milliseconds(100));
      stop_dispatching = true;
    });
    Status status = RunDispatcher(options, launcher, stop_dispatching);
    stop_dispatching = true;
    lost = lost || !status.ok();
    if (!status.ok()) {
      spdlog::error("dispatcher: {}", status.message());
      std::this_thread::sleep_for(milliseconds(1000));
    }
    watch.join();
    (void)(*lease)->Release();
    if (lost && !stop) spdlog::warn("dispatcher: lost the dispatcher's lease; standing by");
  }
  return Status::OK();
}

}  // namespace teatree
