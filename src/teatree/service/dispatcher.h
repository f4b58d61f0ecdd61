#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/request_queue.h"
#include "teatree/common/status.h"

namespace teatree {

class Subprocess;

/// A manager the dispatcher started.
class LaunchedManager {
 public:
  virtual ~LaunchedManager() = default;
  /// Its exit code once it has exited (128 + signal when killed); nullopt while it runs.
  virtual std::optional<int> Exited() = 0;
  /// Asks it to finish its batch and stop (SIGTERM for a process).
  virtual Status Stop() = 0;
  /// Waits up to `grace` for it to exit, then kills it.
  virtual void Terminate(std::chrono::milliseconds grace) = 0;
  /// For logs and `teatree status`, e.g. "pid 1234".
  virtual std::string Describe() const = 0;
};

/// How the dispatcher starts a manager for a model: a child process here; a Kubernetes Job
/// or Pod in a cluster.
class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual Result<std::unique_ptr<LaunchedManager>> Launch(const std::string& model) = 0;
};

/// Starts `<binary> manager --model M <args…>` as a child process, its output appended to
/// <log_dir>/manager-M.log.
class ProcessLauncher : public Launcher {
 public:
  ProcessLauncher(std::string binary, std::vector<std::string> args, std::filesystem::path log_dir);
  Result<std::unique_ptr<LaunchedManager>> Launch(const std::string& model) override;

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::filesystem::path log_dir_;
};

class ModelRegistry;

/// Registers every model directory of `data_dir` (D/models/<model>) in `registry`, so that
/// models made before the registry existed stay usable; an empty path registers nothing.
Status RegisterModelsOf(const std::filesystem::path& data_dir, ModelRegistry& registry);

struct DispatcherOptions {
  NatsClientOptions nats;
  /// The request stream's settings: the dispatcher configures it.
  RequestQueueOptions queue;
  /// The notification stream's retention: the dispatcher configures it (its managers should
  /// be given the same).
  NoteStreamOptions notes;
  /// A manager with no new request for this long, and nothing queued, is stopped.
  std::chrono::milliseconds idle_stop = std::chrono::minutes(5);
  /// On stopping, how long the managers get to finish their batch, publish, acknowledge and
  /// release their lease after SIGTERM before they are killed (under Kubernetes' 30 s).
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(25);
  /// First delay before restarting a manager that crashed; doubles with each crash in a row,
  /// up to max_restart_delay.
  std::chrono::milliseconds restart_delay = std::chrono::milliseconds(200);
  std::chrono::milliseconds max_restart_delay = std::chrono::seconds(30);
  /// How often the queue's backlog and the managers are checked.
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500);
  /// The data directory whose models exist, registered at start (models made before the
  /// registry, or whose NATS store was lost); empty: none.
  std::filesystem::path data_dir;
  /// The control catalog the managers record into. At start, every model whose status there
  /// is not "stopped" (its manager died: committed work may wait for its publication) gets
  /// a manager at once, without waiting for a request. Empty: none are.
  std::string control_url;
};

/// `teatree dispatcher`: keeps one manager running for every model with work. Learns of
/// work from the request subjects (and from the stream's backlog, at start and at each
/// poll); starts a manager through `launcher` when no live manager holds the model's lease;
/// restarts crashed managers with backoff whether or not requests wait (a crashed manager
/// may leave committed versions unpublished: its successor publishes them), and at start the
/// managers of models the catalog shows were not stopped cleanly; stops idle ones. NATS
/// outages are waited out (the backoff starts over when the connection comes back). Runs
/// until `stop`, then stops its managers (SIGTERM: each finishes its batch).
Status RunDispatcher(const DispatcherOptions& options, Launcher& launcher,
                     const std::atomic<bool>& stop);

}  // namespace teatree
