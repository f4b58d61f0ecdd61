#include "teatree/service/manager_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "teatree/bus/delivery.h"
#include "teatree/bus/subjects.h"
#include "teatree/request/codec.h"
#include "teatree/request/names.h"
#include "teatree/service/notes.h"

namespace teatree {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// Tells the queue, every `interval` until destroyed, that `deliveries` are still being
/// worked on, so a long apply is not redelivered to someone else meanwhile.
class InProgressTicker {
 public:
  InProgressTicker(std::vector<Delivery>& deliveries, milliseconds interval)
      : thread_([this, &deliveries, interval] {
          std::unique_lock lock(mutex_);
          while (!wake_.wait_for(lock, interval, [&] { return done_; })) {
            for (auto& delivery : deliveries) {
              Status status = delivery.InProgress();
              if (!status.ok()) spdlog::warn("{}", status.message());
            }
          }
        }) {}
  ~InProgressTicker() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;  // Last: starts once the members above exist.
};

/// Why a queue message cannot be applied by this model's manager, or empty when it can.
std::string Refusal(const Delivery& delivery, const Result<Request>& decoded,
                    const std::string& model) {
  if (!decoded.ok()) return decoded.status().message();
  const Request& request = *decoded;
  if (request.model != model) {
    return "the request names model " + request.model + " but was sent to " +
           RequestSubject(model) + ": submit it to " + RequestSubject(request.model);
  }
  const std::string expected = MessageId(model, request.request_id);
  if (delivery.message_id().empty()) {
    return "the message has no Nats-Msg-Id header: submit with Nats-Msg-Id " + expected +
           " (<model>/<request_id>; teatree submit and teatree::Client do), so duplicates are "
           "dropped";
  }
  if (delivery.message_id() != expected) {
    return "the message's Nats-Msg-Id " + std::string(delivery.message_id()) +
           " differs from its model and request_id: it must be " + expected;
  }
  return "";
}

/// The id and op a refused message gave, as far as it can be read.
std::pair<std::string, std::string> IdAndOp(const Delivery& delivery) {
  auto json = nlohmann::json::parse(delivery.body(), nullptr, false);
  std::string id(delivery.request_id());
  std::string op;
  if (json.is_object()) {
    if (id.empty() && json.contains("request_id") && json["request_id"].is_string()) {
      id = json["request_id"].get<std::string>();
    }
    if (json.contains("op") && json["op"].is_string()) op = json["op"].get<std::string>();
  }
  return {id, op};
}

class ServiceLoop {
 public:
  ServiceLoop(const ManagerServiceOptions& options, NatsConnection& nats, ModelConsumer& consumer,
              ModelManager& manager, Lease& lease)
      : options_(options),
        model_(options.manager.model),
        nats_(nats),
        consumer_(consumer),
        manager_(manager),
        lease_(lease) {}

  /// Settles every delivery; an error only when the manager must stop.
  Status Process(std::vector<Delivery>& deliveries) {
    std::vector<Delivery> accepted;
    std::vector<Request> batch;
    for (auto& delivery : deliveries) {
      if (delivery.delivery_count() > static_cast<uint64_t>(options_.consumer.max_deliver)) {
        GiveUp(delivery, "delivered " + std::to_string(delivery.delivery_count()) +
                             " times and its manager stopped each time before an outcome");
        continue;
      }
      auto decoded = DecodeRequest(delivery.body());
      const std::string refusal = Refusal(delivery, decoded, model_);
      if (!refusal.empty()) {
        Refuse(delivery, refusal);
        continue;
      }
      accepted.push_back(std::move(delivery));
      batch.push_back(std::move(*decoded));
    }
    if (batch.empty()) return Status::OK();
    auto result = Apply(accepted, batch);
    if (result.ok()) return Settle(accepted, batch, *result);
    if (batch.size() == 1) return Failed(accepted[0], result.status());
    // The batch failed as a whole: find the request behind it by applying them one by one.
    spdlog::warn("model {}: batch of {} failed ({}); applying its requests one by one", model_,
                 batch.size(), result.status().message());
    for (size_t i = 0; i < batch.size(); ++i) {
      std::vector<Delivery> one;
      one.push_back(std::move(accepted[i]));
      const std::vector<Request> alone{batch[i]};
      auto single = Apply(one, alone);
      ARROW_RETURN_NOT_OK(single.ok() ? Settle(one, alone, *single)
                                      : Failed(one[0], single.status()));
    }
    return Status::OK();
  }

  void NotifyPublished(int64_t version) {
    Publish(NoteSubject(model_), VersionNote(model_, version));
  }

 private:
  Result<BatchResult> Apply(std::vector<Delivery>& deliveries, const std::vector<Request>& batch) {
    if (!lease_.held()) {
      for (auto& delivery : deliveries) (void)delivery.Nak();
      return Status::Cancelled("the lease of model ", model_,
                               " was lost: another manager may be writing it");
    }
    InProgressTicker ticker(deliveries, TickInterval());
    return manager_.Apply(batch);
  }

  milliseconds TickInterval() const {
    milliseconds wait = options_.consumer.backoff.empty() ? options_.consumer.ack_wait
                                                          : options_.consumer.backoff.front();
    return std::max(milliseconds(100), wait / 3);
  }

  /// Notifies every outcome (with result pages), then acks the whole batch.
  Status Settle(std::vector<Delivery>& deliveries, const std::vector<Request>& batch,
                const BatchResult& result) {
    for (size_t i = 0; i < result.outcomes.size(); ++i) {
      const RequestOutcome& outcome = result.outcomes[i];
      int64_t pages = 0;
      if (outcome.result) {
        auto bodies = ResultPages(model_, outcome.request_id, *outcome.result, batch[i].page_rows);
        if (bodies.ok()) {
          for (const auto& body : *bodies)
            Publish(RequestNoteSubject(model_, outcome.request_id), body);
          pages = static_cast<int64_t>(bodies->size());
        } else {
          spdlog::warn("model {}: result of {} not paged: {}", model_, outcome.request_id,
                       bodies.status().message());
        }
      }
      const std::string note = OutcomeNote(model_, outcome, pages);
      Publish(RequestNoteSubject(model_, outcome.request_id), note);
      Publish(NoteSubject(model_), note);
    }
    Status acked = Delivery::AckAll(deliveries);
    // The batch is committed: a lost ack only means a redelivery, answered from the request
    // table. Carry on.
    if (!acked.ok()) spdlog::warn("model {}: {}", model_, acked.message());
    return Status::OK();
  }

  /// A request whose apply failed (not a rejection: those are outcomes): retried later, or
  /// dead-lettered on its last attempt.
  Status Failed(Delivery& delivery, const Status& error) {
    if (error.IsCancelled()) return error;  // Lease lost: stop.
    if (delivery.last_attempt()) {
      GiveUp(delivery, error.message());
      return Status::OK();
    }
    const milliseconds delay =
        std::min(milliseconds(30'000),
                 milliseconds(500) * (1 << std::min<uint64_t>(delivery.delivery_count(), 6)));
    spdlog::warn("model {}: request {} failed (delivery {}), retrying in {} ms: {}", model_,
                 delivery.request_id(), delivery.delivery_count(), delay.count(), error.message());
    Status nak = delivery.Nak(delay);
    if (!nak.ok()) spdlog::warn("model {}: {}", model_, nak.message());
    return Status::OK();
  }

  void GiveUp(Delivery& delivery, const std::string& error) {
    auto [id, op] = IdAndOp(delivery);
    spdlog::error("model {}: request {} dead-lettered to {}: {}", model_, id,
                  DeadLetterSubject(model_), error);
    Status status = consumer_.DeadLetter(delivery, error);
    if (!status.ok()) spdlog::error("model {}: {}", model_, status.message());
    manager_.LogRejected(id, op, "dead-lettered: " + error);
    const std::string note = RejectedNote(model_, id, op, "dead-lettered: " + error);
    if (!id.empty()) Publish(RequestNoteSubject(model_, id), note);
    Publish(NoteSubject(model_), note);
  }

  void Refuse(Delivery& delivery, const std::string& error) {
    auto [id, op] = IdAndOp(delivery);
    spdlog::info("model {}: refused message {}: {}", model_, id, error);
    manager_.LogRejected(id, op, error);
    const std::string note = RejectedNote(model_, id, op, error);
    if (!id.empty() && ValidateRequestId(id).ok()) Publish(RequestNoteSubject(model_, id), note);
    Publish(NoteSubject(model_), note);
    Status status = delivery.Term();
    if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
  }

  void Publish(const std::string& subject, const std::string& body) {
    Status status = PublishNote(nats_, subject, body);
    if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
  }

  const ManagerServiceOptions& options_;
  const std::string& model_;
  NatsConnection& nats_;
  ModelConsumer& consumer_;
  ModelManager& manager_;
  Lease& lease_;
};

std::string Holder() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return std::string("manager ") + host + " pid " + std::to_string(getpid());
}

}  // namespace

Status RunManagerService(const ManagerServiceOptions& options, const std::atomic<bool>& stop) {
  const std::string& model = options.manager.model;
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(options.nats));
  ARROW_ASSIGN_OR_RAISE(auto queue, RequestQueue::Make(*nats, options.queue));
  ARROW_RETURN_NOT_OK(EnsureNoteStream(*nats, options.notes));
  std::atomic<bool> lost{false};
  LeaseOptions lease_options{.ttl = options.lease_ttl, .on_lost = [&](const Status& reason) {
                               spdlog::error("model {}: lease lost ({}); stopping", model,
                                             reason.message());
                               lost = true;
                             }};
  auto lease = Lease::Acquire(*nats, model, Holder(), lease_options);
  if (!lease.ok()) {
    return lease.status().WithMessage("cannot manage model ", model, ": ",
                                      lease.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(auto consumer, ModelConsumer::Make(*nats, model, options.consumer));

  ServiceLoop* loop_for_notes = nullptr;
  std::mutex notes_mutex;
  ManagerOptions manager_options = options.manager;
  manager_options.on_published = [&](int64_t version) {
    std::lock_guard lock(notes_mutex);
    if (loop_for_notes != nullptr) loop_for_notes->NotifyPublished(version);
  };
  ARROW_ASSIGN_OR_RAISE(auto manager, ModelManager::Open(manager_options));
  ServiceLoop loop(options, *nats, *consumer, *manager, **lease);
  {
    std::lock_guard lock(notes_mutex);
    loop_for_notes = &loop;
  }
  spdlog::info("model {}: manager running at version {} (lease held by {})", model,
               manager->version(), (*lease)->holder());

  Status status;
  auto last_work = Clock::now();
  while (!stop && !lost) {
    auto deliveries = consumer->Fetch(options.batch_size, options.max_wait);
    if (!deliveries.ok()) {
      spdlog::warn("model {}: {}", model, deliveries.status().message());
      std::this_thread::sleep_for(options.max_wait);
      continue;
    }
    if (deliveries->empty()) {
      if (options.idle_exit.count() > 0 && Clock::now() - last_work > options.idle_exit) {
        spdlog::info("model {}: idle for {} ms, stopping", model, options.idle_exit.count());
        break;
      }
      continue;
    }
    last_work = Clock::now();
    status = loop.Process(*deliveries);
    if (!status.ok()) break;
  }
  const int64_t version = manager->version();
  Status closed = manager->Close();
  {
    std::lock_guard lock(notes_mutex);
    loop_for_notes = nullptr;
  }
  manager.reset();
  Status released = (*lease)->Release();
  if (!released.ok()) spdlog::warn("model {}: {}", model, released.message());
  if (lost && status.ok()) {
    status = Status::Cancelled("model ", model, ": the lease was lost, so the manager stopped");
  }
  ARROW_RETURN_NOT_OK(status);
  spdlog::info("model {}: manager stopped at version {}, lease released", model, version);
  return closed;
}

}  // namespace teatree
