#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "teatree/bus/lease.h"
#include "teatree/bus/model_consumer.h"
#include "teatree/bus/nats_connection.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/request_queue.h"
#include "teatree/common/status.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/read_servers.h"

namespace teatree {

struct ManagerServiceOptions {
  /// The model, its data directory, catalog, archive, inputs and functions.
  ManagerOptions manager;
  NatsClientOptions nats;
  RequestQueueOptions queue{.configure = false};
  NoteStreamOptions notes;
  /// How long a batch's outcomes may take to be stored before its requests are acknowledged
  /// anyway (their outcomes stay in the model's request table).
  std::chrono::milliseconds notes_flush_timeout = std::chrono::seconds(10);
  ModelConsumerOptions consumer;
  /// The lease's TTL: how long a manager that died silently keeps others out.
  std::chrono::milliseconds lease_ttl = std::chrono::seconds(10);
  /// Requests fetched and group-committed together at most.
  size_t batch_size = 256;
  /// How long a fetch waits for the first request of a batch.
  std::chrono::milliseconds max_wait = std::chrono::milliseconds(200);
  /// Stop on its own after this long without a request; 0 never does.
  std::chrono::milliseconds idle_exit{0};
  /// The live model's read path (Arrow Flight); its URL goes into the catalog.
  ReadServingOptions read;
};

/// `teatree manager`: the one writer of a model, fed by the queue. Takes the model's lease
/// (refusing to start while another manager holds it), opens the model, and loops: fetch a
/// batch, apply it in one transaction, publish each outcome (and result pages) to
/// teatree.note.<model>, ack the batch once its outcomes are stored (on a thread of its own,
/// while the next batch is fetched and applied). Messages that are not valid requests for this
/// model are refused (recorded, notified, terminated); a batch that fails as a whole is redelivered
/// with backoff, and a request still failing at MaxDeliver is dead-lettered. Runs until `stop`
/// turns true (it then finishes the batch at hand, acks it, publishes the newest version and
/// releases the lease), the lease is lost (it stops writing at once), or it was idle for
/// idle_exit.
Status RunManagerService(const ManagerServiceOptions& options, const std::atomic<bool>& stop);

}  // namespace teatree
