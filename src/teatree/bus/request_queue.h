#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

/// Bytes a request's headers may add on top of its body (Nats-Msg-Id, and on a dead letter
/// the error text): the streams' and the server's message limits leave this much room.
inline constexpr int64_t kHeaderAllowance = 16 << 10;

struct RequestQueueOptions {
  /// A request id submitted again within this window is stored once (JetStream
  /// deduplication on Nats-Msg-Id). Later resubmissions are stored again and the manager's
  /// request table skips them.
  std::chrono::milliseconds duplicate_window = std::chrono::minutes(2);
  /// The largest request body; larger ones are refused before publishing. The NATS server's
  /// max_payload must hold this plus kHeaderAllowance.
  int64_t max_body_bytes = 8 << 20;
  /// Whether Make() brings an existing stream to these options. The server side (serve, the
  /// dispatcher) does; clients and managers use the stream as they find it, so that one
  /// client's defaults never undo the operator's settings.
  bool configure = true;
};

/// JetStream's answer to a submitted request.
struct PublishAck {
  /// Position of the request in the TEATREE_REQ stream.
  uint64_t sequence = 0;
  /// True when the request id was already stored within the duplicate window: this
  /// submission changed nothing, and `sequence` is the first one's.
  bool duplicate = false;
};

/// The durable request queue: the JetStream stream TEATREE_REQ on subjects
/// `teatree.req.<model>` (file storage, work-queue retention: a request stays until its
/// model's manager acknowledges it). Clients submit through it; the dispatcher asks it which
/// models have work. Thread-safe. The NatsConnection must outlive it.
class RequestQueue {
 public:
  /// Creates the stream if absent, or (with options.configure) brings its duplicate window
  /// and message size limit to `options` (the last process to call Make wins). Fails, saying why,
  /// when a stream of that name has other subjects, storage or retention, or when the server's
  /// max_payload is too small for options.max_body_bytes.
  static Result<std::unique_ptr<RequestQueue>> Make(NatsConnection& connection,
                                                    const RequestQueueOptions& options = {});

  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  /// Publishes `body` to teatree.req.<model> with header Nats-Msg-Id = <model>/<request_id>
  /// (MessageId) and returns
  /// once JetStream has stored it on disk: from then on the request is not lost. An invalid
  /// model or request id, or a body over max_body_bytes, is refused before publishing. On a
  /// timeout the request may or may not be stored: submit it again with the same id.
  Result<PublishAck> Submit(const std::string& model, const std::string& request_id,
                            std::string_view body);

  /// Requests stored for `model` and not yet acknowledged (including those delivered to a
  /// manager that is working on them).
  Result<uint64_t> Backlog(const std::string& model);
  /// Removes every queued request of `model` stored before sequence `before`: the requests
  /// of a model that does not exist, which no manager will take. Read LastSequence() before
  /// deciding the model does not exist, and purge before LastSequence() + 1, so a request
  /// queued after the model was created is never removed.
  Status Purge(const std::string& model, uint64_t before);
  /// The sequence of the newest message in the request stream (0 when empty).
  Result<uint64_t> LastSequence();

  /// The models with at least one request waiting, sorted by name.
  Result<std::vector<std::string>> ModelsWithBacklog();

  const RequestQueueOptions& options() const { return options_; }

 private:
  RequestQueue(NatsConnection& connection, const RequestQueueOptions& options)
      : connection_(connection), options_(options) {}

  NatsConnection& connection_;
  const RequestQueueOptions options_;
};

}  // namespace teatree
