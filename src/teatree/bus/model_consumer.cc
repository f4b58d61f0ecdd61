#include "teatree/bus/model_consumer.h"

#include <nats/nats.h>

#include <algorithm>
#include <thread>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/stream_setup_internal.h"
#include "teatree/bus/subjects.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using bus_internal::ConsumerInfoHandle;
using bus_internal::Nanos;
using bus_internal::PubAckHandle;

// The most requests one Fetch returns.
constexpr size_t kMaxBatch = 1 << 16;
// The longest pause between pull requests the server ended early without requests.
constexpr std::chrono::milliseconds kMaxRetryPause(10);
// The shortest pull request (see Fetch).
constexpr std::chrono::milliseconds kMinPull(20);
// Error texts go into a header: one line, bounded.
constexpr size_t kMaxErrorHeader = 4096;

Status ValidateOptions(const ModelConsumerOptions& options) {
  if (options.ack_wait <= std::chrono::milliseconds(0)) {
    return Status::Invalid("consumer ack_wait ", options.ack_wait.count(),
                           " ms must be positive (default 30 s)");
  }
  if (options.max_deliver < 1) {
    return Status::Invalid("consumer max_deliver ", options.max_deliver,
                           " must be at least 1 (default 5)");
  }
  for (auto delay : options.backoff) {
    if (delay <= std::chrono::milliseconds(0)) {
      return Status::Invalid("consumer backoff delay ", delay.count(), " ms must be positive");
    }
  }
  return Status::OK();
}

Status RequireRequestStream(NatsConnection& connection) {
  auto info = bus_internal::GetStreamInfo(connection.jetstream(), std::string(kRequestStream), "");
  if (info.ok() || !info.status().IsKeyError()) return info.status();
  return Status::Invalid("stream ", kRequestStream,
                         " does not exist: create the request queue first (RequestQueue::Make; "
                         "`teatree serve` and every client do)");
}

// Creates the durable consumer, or updates it when it exists.
Status EnsureConsumer(jsCtx* js, const std::string& model, const ModelConsumerOptions& options) {
  const std::string name = ConsumerName(model);
  const std::string filter = RequestSubject(model);
  const std::string stream(kRequestStream);
  std::vector<int64_t> backoff;
  for (auto delay : options.backoff) backoff.push_back(Nanos(delay));
  jsConsumerConfig config;
  jsConsumerConfig_Init(&config);
  config.Durable = name.c_str();
  config.FilterSubject = filter.c_str();
  config.AckPolicy = js_AckExplicit;
  config.DeliverPolicy = js_DeliverAll;
  config.AckWait = Nanos(options.ack_wait);
  config.MaxDeliver = -1;  // Teatree counts deliveries itself: see ModelConsumerOptions.
  config.BackOff = backoff.empty() ? nullptr : backoff.data();
  config.BackOffLen = static_cast<int>(backoff.size());

  jsConsumerInfo* raw = nullptr;
  jsErrCode error = jsErrCode(0);
  natsStatus status = js_GetConsumerInfo(&raw, js, stream.c_str(), name.c_str(), nullptr, &error);
  ConsumerInfoHandle existing(raw);
  const bool exists = status == NATS_OK;
  if (!exists && status != NATS_NOT_FOUND && error != JSConsumerNotFoundErr) {
    return FromNats(status, "cannot look up consumer " + name, error);
  }
  raw = nullptr;
  error = jsErrCode(0);
  status = exists ? js_UpdateConsumer(&raw, js, stream.c_str(), &config, nullptr, &error)
                  : js_AddConsumer(&raw, js, stream.c_str(), &config, nullptr, &error);
  ConsumerInfoHandle info(raw);
  if (status == NATS_OK) return Status::OK();
  return FromNats(status,
                  "cannot " + std::string(exists ? "update" : "create") + " consumer " + name +
                      " on stream " + stream +
                      (exists ? " (if it was made by something else, delete it while no "
                                "manager runs: nats consumer rm " +
                                    stream + " " + name + ")"
                              : ""),
                  error);
}

Result<std::shared_ptr<natsSubscription>> Subscribe(jsCtx* js, const std::string& model) {
  const std::string name = ConsumerName(model);
  const std::string subject = RequestSubject(model);
  const std::string stream(kRequestStream);
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = stream.c_str();
  options.Consumer = name.c_str();
  options.ManualAck = true;
  natsSubscription* raw = nullptr;
  jsErrCode error = jsErrCode(0);
  ARROW_RETURN_NOT_OK(
      FromNats(js_PullSubscribe(&raw, js, subject.c_str(), name.c_str(), nullptr, &options, &error),
               "cannot bind to consumer " + name, error));
  return std::shared_ptr<natsSubscription>(raw, natsSubscription_Destroy);
}

std::string OneLine(std::string_view text) {
  std::string line(text.substr(0, kMaxErrorHeader));
  std::replace_if(
      line.begin(), line.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return line.empty() ? "unknown error" : line;
}

}  // namespace

Result<std::unique_ptr<ModelConsumer>> ModelConsumer::Make(NatsConnection& connection,
                                                           const std::string& model,
                                                           const ModelConsumerOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  ARROW_RETURN_NOT_OK(ValidateOptions(options));
  ARROW_RETURN_NOT_OK(RequireRequestStream(connection));
  ARROW_RETURN_NOT_OK(bus_internal::EnsureStream(connection.jetstream(),
                                                 {.name = std::string(kDeadLetterStream),
                                                  .subjects = std::string(kDeadLetterSubjects),
                                                  .retention = js_LimitsPolicy,
                                                  .replicas = connection.stream_replicas()}));
  ARROW_RETURN_NOT_OK(EnsureConsumer(connection.jetstream(), model, options));
  ARROW_ASSIGN_OR_RAISE(auto subscription, Subscribe(connection.jetstream(), model));
  return std::unique_ptr<ModelConsumer>(
      new ModelConsumer(connection, model, options, std::move(subscription)));
}

ModelConsumer::~ModelConsumer() = default;

Result<std::vector<Delivery>> ModelConsumer::Fetch(size_t max, std::chrono::milliseconds max_wait) {
  using Clock = std::chrono::steady_clock;
  if (max == 0 || max > kMaxBatch) {
    return Status::Invalid("cannot fetch ", max, " requests at once: ask for 1 to ", kMaxBatch);
  }
  // nats.c's natsSubscription_Fetch waits until the batch is full or max_wait is over; a
  // manager wants the first request at once. A no_wait pull request with an expiry does
  // that on nats-server >= 2.10: it returns as soon as any requests are there, with all
  // that are, or expires empty. The server may also end it early, e.g. "408 Requests
  // Pending" while an earlier request it has not expired yet still waits, or while the
  // previous batch waits for its acks: then ask again at once, and back off after that, so
  // that a request arriving meanwhile is not held up by a fixed pause, nor the server asked
  // in a tight loop.
  //
  // Two things keep a request from waiting on a pull request that nobody waits for:
  // - nats.c tells one pull's answers from another's by nothing but their order, and asks
  //   the server to expire a pull 10 ms before it stops waiting itself only from 20 ms up.
  //   A shorter pull's "expired" could come after its fetch returned and end the next
  //   fetch at once, leaving that one's pull at the server to take requests no fetch waits
  //   for: pulls here last at least kMinPull.
  // - Requests such a pull brought wait in the subscription. nats.c takes those first, and
  //   asks the server for the rest of the batch, which with nothing more holds them until
  //   it expires: a fetch that finds requests here takes just them.
  const auto deadline = Clock::now() + max_wait;
  std::vector<Delivery> out;
  std::chrono::milliseconds pause(0);
  while (true) {
    int queued = 0;
    (void)natsSubscription_GetPending(subscription_.get(), &queued, nullptr);
    const size_t batch = queued > 0 ? std::min(max, static_cast<size_t>(queued)) : max;
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    ARROW_RETURN_NOT_OK(PullOnce(static_cast<int>(batch), std::max(remaining, kMinPull), out));
    if (!out.empty() || deadline - Clock::now() <= pause) return out;
    std::this_thread::sleep_for(pause);
    pause = std::clamp(2 * pause, std::chrono::milliseconds(1), kMaxRetryPause);
  }
}

Status ModelConsumer::PullOnce(int batch, std::chrono::milliseconds expires,
                               std::vector<Delivery>& out) {
  jsFetchRequest request;
  jsFetchRequest_Init(&request);
  request.Batch = batch;
  request.NoWait = true;
  request.Expires = Nanos(expires);
  natsMsgList list{};
  const natsStatus status = natsSubscription_FetchRequest(&list, subscription_.get(), &request);
  // "Request expired" or "no messages": nothing came.
  if (status == NATS_TIMEOUT || status == NATS_NOT_FOUND) return Status::OK();
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot fetch requests of model " + model_));
  out.reserve(out.size() + list.Count);
  for (int i = 0; i < list.Count; ++i) {
    out.push_back(Delivery(list.Msgs[i], subscription_, connection_.request_timeout(),
                           static_cast<uint64_t>(options_.max_deliver)));
    list.Msgs[i] = nullptr;  // Now owned by the Delivery.
  }
  natsMsgList_Destroy(&list);
  return Status::OK();
}

Status ModelConsumer::DeadLetter(Delivery& delivery, std::string_view error) {
  const std::string subject = DeadLetterSubject(model_);
  const std::string context =
      "cannot dead-letter request " + std::string(delivery.request_id()) + " of model " + model_;
  std::vector<std::pair<const char*, std::string>> headers{
      {kErrorHeader, OneLine(error)},
      {kModelHeader, model_},
      {kDeliveriesHeader, std::to_string(delivery.delivery_count())}};
  if (!delivery.message_id().empty()) {
    headers.emplace_back(kMsgIdHeader, std::string(delivery.message_id()));
  }
  ARROW_ASSIGN_OR_RAISE(auto msg,
                        bus_internal::MakeMessage(subject, delivery.body(), headers, context));
  PubAckHandle ack;
  jsErrCode code = jsErrCode(0);
  const natsStatus status = bus_internal::PublishToStream(
      connection_.jetstream(), msg.get(), std::string(kDeadLetterStream), &ack, &code);
  ARROW_RETURN_NOT_OK(FromNats(status, context + " to " + subject, code));
  return delivery.Term();
}

}  // namespace teatree
