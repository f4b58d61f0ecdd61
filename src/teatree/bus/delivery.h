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

/// One request message fetched by a ModelConsumer, owning the nats.c message. Settle it
/// exactly once with Ack(), Nak() or Term() (or ModelConsumer::DeadLetter); until then it
/// counts against the consumer's AckWait and is redelivered when that runs out. Every
/// settling call waits for the server's confirmation. Movable, not copyable; use it from one
/// thread at a time (its headers, parsed when it is fetched, may be read from any). Settle it
/// before its ModelConsumer is destroyed: afterwards the calls fail (the message is then
/// redelivered after AckWait).
class Delivery {
 public:
  Delivery(Delivery&&) noexcept;
  Delivery& operator=(Delivery&&) noexcept;
  ~Delivery();

  /// teatree.req.<model>
  std::string_view subject() const;
  /// The request body; valid while this Delivery lives.
  std::string_view body() const;
  /// A header's value, or an empty view when the message does not have it.
  std::string_view header(const char* name) const;
  /// The Nats-Msg-Id header, `<model>/<request_id>` (MessageId); empty if missing.
  std::string_view message_id() const;
  /// The request id part of message_id() (all of it when it has no model part).
  std::string_view request_id() const;
  /// 1 on the first delivery, increasing with every redelivery.
  uint64_t delivery_count() const { return delivery_count_; }
  /// The message's position in the TEATREE_REQ stream.
  uint64_t stream_sequence() const { return stream_sequence_; }
  /// True from the consumer's max_deliver-th delivery on: if the request fails now,
  /// dead-letter it (ModelConsumer::DeadLetter) instead of Nak(). Past max_deliver only when
  /// a previous last attempt was never settled (its manager died).
  bool last_attempt() const { return last_attempt_; }

  /// Done: the server removes the request from the queue. Returns once it has confirmed.
  Status Ack();
  /// Acks every delivery, waiting only for the server to confirm the last: acks on one
  /// connection are processed in order, so that confirms them all. A lost ack means a
  /// redelivery, which the model's request table answers without applying anything twice.
  static Status AckAll(const std::vector<Delivery*>& deliveries);
  /// Failed for now: redeliver after `delay` (0: at once).
  Status Nak(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  /// Still working: restarts the AckWait clock. Call it during long applies; may be called
  /// repeatedly.
  Status InProgress();
  /// Never redeliver (the request is bad); the server removes it from the queue.
  Status Term();

 private:
  friend class ModelConsumer;
  struct MsgDeleter {
    void operator()(natsMsg* msg) const;
  };
  enum class Reply { kAck, kNak, kInProgress, kTerm };

  Delivery(natsMsg* msg, std::weak_ptr<natsSubscription> subscription,
           std::chrono::milliseconds timeout, uint64_t max_deliver);
  Status Settle(Reply reply, std::chrono::milliseconds delay);

  std::unique_ptr<natsMsg, MsgDeleter> msg_;
  /// The subscription the message came through: nats.c acks through it, so a settle after
  /// the consumer is gone must fail rather than touch freed memory.
  std::weak_ptr<natsSubscription> subscription_;
  std::chrono::milliseconds timeout_;
  std::string message_id_;
  uint64_t delivery_count_ = 0;
  uint64_t stream_sequence_ = 0;
  bool last_attempt_ = false;
};

}  // namespace teatree
