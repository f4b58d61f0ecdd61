#include "teatree/bus/delivery.h"

#include <nats/nats.h>

#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/subjects.h"

namespace teatree {

void Delivery::MsgDeleter::operator()(natsMsg* msg) const { natsMsg_Destroy(msg); }

Delivery::Delivery(natsMsg* msg, std::weak_ptr<natsSubscription> subscription,
                   std::chrono::milliseconds timeout, uint64_t max_deliver)
    : msg_(msg), subscription_(std::move(subscription)), timeout_(timeout) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    delivery_count_ = meta->NumDelivered;
    stream_sequence_ = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
  }
  last_attempt_ = max_deliver > 0 && delivery_count_ >= max_deliver;
  // nats.c parses a message's headers at their first read, writing into the message: do it
  // here, on the fetching thread, so that later reads (from the threads that settle the
  // delivery and the one that applies it) only read.
  message_id_ = header(kMsgIdHeader);
}

Delivery::Delivery(Delivery&&) noexcept = default;
Delivery& Delivery::operator=(Delivery&&) noexcept = default;
Delivery::~Delivery() = default;

std::string_view Delivery::subject() const {
  const char* subject = natsMsg_GetSubject(msg_.get());
  return subject == nullptr ? std::string_view() : subject;
}

std::string_view Delivery::body() const {
  const char* data = natsMsg_GetData(msg_.get());
  if (data == nullptr) return {};
  return {data, static_cast<size_t>(natsMsg_GetDataLength(msg_.get()))};
}

std::string_view Delivery::header(const char* name) const {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg_.get(), name, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

std::string_view Delivery::message_id() const { return message_id_; }

std::string_view Delivery::request_id() const {
  const std::string_view id = message_id();
  const size_t slash = id.find('/');
  return slash == std::string_view::npos ? id : id.substr(slash + 1);
}

Status Delivery::Ack() { return Settle(Reply::kAck, std::chrono::milliseconds(0)); }
Status Delivery::AckAll(const std::vector<Delivery*>& deliveries) {
  for (size_t i = 0; i + 1 < deliveries.size(); ++i) {
    Delivery& delivery = *deliveries[i];
    if (!delivery.msg_ || delivery.subscription_.expired()) return delivery.Ack();  // Its error.
    ARROW_RETURN_NOT_OK(FromNats(natsMsg_Ack(delivery.msg_.get(), nullptr),
                                 "cannot ack request " + std::string(delivery.request_id())));
  }
  return deliveries.empty() ? Status::OK() : deliveries.back()->Ack();
}

Status Delivery::Nak(std::chrono::milliseconds delay) { return Settle(Reply::kNak, delay); }
Status Delivery::InProgress() { return Settle(Reply::kInProgress, std::chrono::milliseconds(0)); }
Status Delivery::Term() { return Settle(Reply::kTerm, std::chrono::milliseconds(0)); }

Status Delivery::Settle(Reply reply, std::chrono::milliseconds delay) {
  static constexpr const char* kReplyNames[] = {"ack", "nak", "in-progress", "term"};
  const std::string context = std::string("cannot ") + kReplyNames[static_cast<int>(reply)] +
                              " request " + std::string(request_id()) + " (stream sequence " +
                              std::to_string(stream_sequence_) + ")";
  if (!msg_) return Status::Invalid(context, ": this Delivery was moved from");
  std::shared_ptr<natsSubscription> alive = subscription_.lock();
  if (!alive) {
    return Status::Invalid(context,
                           ": its ModelConsumer was destroyed; settle deliveries before "
                           "destroying the consumer (the request is redelivered after AckWait)");
  }
  // A Wait turns every ack kind into a request that returns once the server confirmed it.
  jsOptions options;
  jsOptions_Init(&options);
  options.Wait = timeout_.count();
  jsErrCode error = jsErrCode(0);
  natsStatus status = NATS_OK;
  switch (reply) {
    case Reply::kAck:
      status = natsMsg_AckSync(msg_.get(), &options, &error);
      break;
    case Reply::kNak:
      status = delay.count() > 0 ? natsMsg_NakWithDelay(msg_.get(), delay.count(), &options)
                                 : natsMsg_Nak(msg_.get(), &options);
      break;
    case Reply::kInProgress:
      status = natsMsg_InProgress(msg_.get(), &options);
      break;
    case Reply::kTerm:
      status = natsMsg_Term(msg_.get(), &options);
      break;
  }
  return FromNats(status, context, error);
}

}  // namespace teatree
