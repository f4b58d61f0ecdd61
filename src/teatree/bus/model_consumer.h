#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/bus/delivery.h"
#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

struct ModelConsumerOptions {
  /// A fetched request not settled within this time is redelivered. Ignored when `backoff`
  /// is set: the server then waits backoff[n-1] after the n-th delivery.
  std::chrono::milliseconds ack_wait = std::chrono::seconds(30);
  /// Deliveries of a failing request before the manager gives up on it:
  /// Delivery::last_attempt() turns true at this count, and the manager dead-letters the
  /// request instead of Nak()ing it. Teatree counts, not the server (the consumer's own
  /// MaxDeliver is unlimited): a server that stops after MaxDeliver deliveries would leave a
  /// request whose last attempt died with its manager in the queue forever, never delivered
  /// again and never dead-lettered.
  int max_deliver = 5;
  /// Redelivery delays after the 1st, 2nd, ... delivery (the last repeats).
  std::vector<std::chrono::milliseconds> backoff;
};

/// A model's durable pull consumer `teatree-<model>` on the TEATREE_REQ stream, filtered to
/// teatree.req.<model>, with explicit acks: what a model's manager reads its requests from.
/// It survives restarts of the manager and of nats-server; the lease (Lease) keeps it to one
/// reader. Fetch() from one thread at a time (nats.c refuses concurrent fetches); the
/// deliveries it returns may be settled from other threads. The NatsConnection must outlive
/// it; settle its deliveries before destroying it.
class ModelConsumer {
 public:
  /// Creates the consumer, or updates an existing one to `options`, and the dead-letter
  /// stream TEATREE_DEAD. Fails if the request stream does not exist yet (RequestQueue::Make
  /// creates it).
  static Result<std::unique_ptr<ModelConsumer>> Make(NatsConnection& connection,
                                                     const std::string& model,
                                                     const ModelConsumerOptions& options = {});
  ~ModelConsumer();

  ModelConsumer(const ModelConsumer&) = delete;
  ModelConsumer& operator=(const ModelConsumer&) = delete;

  /// Up to `max` requests in queue order, returning as soon as at least one is there (with
  /// whatever else is waiting right then), or an empty vector after `max_wait` (at least
  /// 20 ms) without any.
  Result<std::vector<Delivery>> Fetch(size_t max, std::chrono::milliseconds max_wait);

  /// Gives up on a request: publishes its body to teatree.dead.<model> (stream
  /// TEATREE_DEAD, kept for inspection) with headers Teatree-Error = `error`, Teatree-Model,
  /// Nats-Msg-Id and Teatree-Deliveries, waits for JetStream to store it, then terminates the
  /// original so the requests behind it go on. If it fails half-way, call it again: the dead
  /// letter is deduplicated on Nats-Msg-Id within the stream's window (2 min).
  Status DeadLetter(Delivery& delivery, std::string_view error);

  const std::string& model() const { return model_; }
  const ModelConsumerOptions& options() const { return options_; }

 private:
  ModelConsumer(NatsConnection& connection, std::string model, ModelConsumerOptions options,
                std::shared_ptr<natsSubscription> subscription)
      : connection_(connection),
        model_(std::move(model)),
        options_(std::move(options)),
        subscription_(std::move(subscription)) {}

  /// One no_wait pull request for up to `batch` requests, appended to `out`; OK and nothing
  /// when none came within `expires` (or the server ended it early).
  Status PullOnce(int batch, std::chrono::milliseconds expires, std::vector<Delivery>& out);

  NatsConnection& connection_;
  const std::string model_;
  const ModelConsumerOptions options_;
  /// Shared with the deliveries only as weak_ptrs, so they can tell the consumer is gone.
  std::shared_ptr<natsSubscription> subscription_;
};

}  // namespace teatree
