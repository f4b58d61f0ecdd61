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
#include "teatree/launch/launcher.h"

namespace teatree {

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
  /// The TTL of the leases (the managers' and, where one dispatcher is elected, its own).
  std::chrono::milliseconds lease_ttl = std::chrono::seconds(10);
};

/// `teatree dispatcher`: keeps one manager running for every model with work. Learns of
/// work from the request subjects (and from the stream's backlog, at start and at each
/// poll); starts a manager through `launcher` when no live manager holds the model's lease;
/// restarts crashed managers with backoff whether or not requests wait (a crashed manager
/// may leave committed versions unpublished: its successor publishes them), and at start the
/// managers of models the catalog shows were not stopped cleanly; stops idle ones; at start,
/// takes over the managers an earlier dispatcher left running (pods). NATS outages are
/// waited out (the backoff starts over when the connection comes back). Runs until `stop`,
/// then stops its managers (each finishes its batch), unless the launcher's managers outlive
/// the dispatcher.
Status RunDispatcher(const DispatcherOptions& options, Launcher& launcher,
                     const std::atomic<bool>& stop);

/// RunDispatcher() while this process holds the dispatcher's lease (kDispatcherLease): for
/// launchers whose managers outlive the dispatcher (pods), so that of several servers sharing
/// a NATS (two serve replicas) one dispatches and the others stand by, taking over within
/// the lease's TTL when it goes. Runs until `stop`.
Status RunElectedDispatcher(const DispatcherOptions& options, Launcher& launcher,
                            const std::atomic<bool>& stop);

}  // namespace teatree
