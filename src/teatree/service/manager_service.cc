#include "teatree/service/manager_service.h"

#include <arrow/util/thread_pool.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <thread>

#include "teatree/bus/delivery.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/fault_point.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/resource_limits.h"
#include "teatree/common/ticker.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/engine/staging.h"
#include "teatree/read/metrics.h"
#include "teatree/read/model_directory.h"
#include "teatree/request/codec.h"
#include "teatree/request/names.h"
#include "teatree/service/notes.h"

namespace teatree {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How soon a request whose outcome was not stored comes back, to be told again.
constexpr milliseconds kRetellDelay(1000);

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
  auto json = ParseJson(delivery.body(), "the message").ValueOr(nlohmann::json());
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

/// Requests redelivered after their manager stopped without settling them (a crash, a
/// kill), with how often each was then applied alone: a request that brings its manager
/// down every time is given up after MaxDeliver attempts, while the requests that merely
/// shared its batch are not. Kept in <model dir>/suspects.json, so counts survive the crashes
/// they count.
class Suspects {
 public:
  explicit Suspects(std::filesystem::path path) : path_(std::move(path)) {
    auto text = ReadFileToString(path_);
    auto json =
        text.ok() ? ParseJson(*text, "suspects.json").ValueOr(nlohmann::json()) : nlohmann::json();
    if (json.is_object()) {
      for (const auto& [id, count] : json.items()) {
        if (count.is_number_integer()) attempts_[id] = count.get<int>();
      }
    }
  }

  /// Records one more attempt of `id` (durably, before it is made); returns the count.
  int Attempt(const std::string& id) {
    const int count = ++attempts_[id];
    Save();
    return count;
  }
  void Settled(const std::string& id) {
    if (attempts_.erase(id) > 0) Save();
  }

 private:
  void Save() {
    Status status = WriteFileAtomically(path_, DumpJson(nlohmann::json(attempts_)));
    if (!status.ok()) spdlog::warn("{}", status.message());
  }

  std::filesystem::path path_;
  std::map<std::string, int> attempts_;
};

/// The deliveries of one fetch; open[i]: delivery i is not settled yet.
struct FetchedBatch {
  std::vector<Delivery> deliveries;
  std::vector<bool> open;
};

class ServiceLoop {
 public:
  ServiceLoop(const ManagerServiceOptions& options, Notifier& notifier, ModelConsumer& consumer,
              ModelManager& manager, Lease& lease)
      : options_(options),
        model_(options.manager.model),
        notifier_(notifier),
        consumer_(consumer),
        manager_(manager),
        lease_(lease),
        suspects_(ModelDir(options.manager.data_dir, model_) / "suspects.json") {}

  ~ServiceLoop() {
    Drain();
    {
      std::lock_guard lock(settle_mutex_);
      stopping_ = true;
    }
    settle_wake_.notify_all();
    settler_.join();
  }

  /// Settles every delivery: first-time ones are group-committed together; redelivered ones
  /// (their manager stopped before settling them) are applied one at a time, so one that
  /// brings the manager down is found and given up after MaxDeliver attempts. An error only
  /// when the manager must stop. A batch committed whole is acknowledged by the settler
  /// thread once its outcomes are stored, while the next batch is fetched and applied: the
  /// stream's fsyncs for one batch overlap the model's commit of the next.
  Status Process(std::vector<Delivery> fetched) {
    {
      // From here on the ticker keeps everything held ours while earlier requests apply.
      std::lock_guard lock(settle_mutex_);
      current_ = std::make_unique<FetchedBatch>();
      current_->open.assign(fetched.size(), true);
      current_->deliveries = std::move(fetched);
    }
    std::vector<Delivery>& deliveries = current_->deliveries;
    // Requests move into two groups, each beside the index of its delivery.
    std::vector<Request> fresh, redelivered;
    std::vector<size_t> fresh_at, redelivered_at;
    for (size_t i = 0; i < deliveries.size(); ++i) {
      auto decoded = DecodeRequest(deliveries[i].body());
      const std::string refusal = Refusal(deliveries[i], decoded, model_);
      if (!refusal.empty()) {
        Refuse(i, refusal);
        continue;
      }
      const bool again = deliveries[i].delivery_count() > 1;
      (again ? redelivered : fresh).push_back(std::move(*decoded));
      (again ? redelivered_at : fresh_at).push_back(i);
    }
    Status status = ApplyGroup(fresh, fresh_at, /*hand_off=*/redelivered.empty());
    for (size_t k = 0; k < redelivered.size() && status.ok(); ++k) {
      const std::string id = redelivered[k].request_id;  // A copy: the request moves.
      // A crash while the previous version is published is not this request's doing.
      (void)manager_.WaitForVersionFile();
      if (suspects_.Attempt(id) >= options_.consumer.max_deliver) {
        GiveUp(redelivered_at[k], "its manager stopped while applying it " +
                                      std::to_string(options_.consumer.max_deliver) + " times");
      } else {
        std::vector<Request> alone;
        alone.push_back(std::move(redelivered[k]));
        status = ApplyGroup(alone, std::span(redelivered_at).subspan(k, 1), false);
      }
      suspects_.Settled(id);
    }
    std::lock_guard lock(settle_mutex_);
    current_.reset();  // Settled, or handed to the settler.
    return status;
  }

  /// Waits until the settler has acknowledged every batch handed to it.
  void Drain() {
    std::unique_lock lock(settle_mutex_);
    settled_.wait(lock, [&] { return settling_ == nullptr; });
  }

  void NotifyPublished(int64_t version) {
    Publish(NoteSubject(model_), VersionNote(model_, version));
    std::lock_guard lock(committed_mutex_);
    const auto now = Clock::now();
    while (!committed_at_.empty() && committed_at_.begin()->first <= version) {
      Metrics::Process().ObservePublish(
          model_, std::chrono::duration<double>(now - committed_at_.begin()->second).count());
      committed_at_.erase(committed_at_.begin());
    }
  }

 private:
  /// Applies `batch` as one transaction and settles the deliveries at `at` (one per
  /// request): with `hand_off` (`at` is every delivery still open), a committed batch goes to
  /// the settler thread; otherwise it is settled here. A batch that fails as a whole is
  /// applied again one request at a time, to find the one behind it.
  Status ApplyGroup(const std::vector<Request>& batch, std::span<const size_t> at, bool hand_off) {
    if (batch.empty()) return Status::OK();
    if (!lease_.held()) {
      for (size_t i : at) Settle(i, [](Delivery& d) { return d.Nak(); });
      return Status::Cancelled("the lease of model ", model_,
                               " was lost: another manager may be writing it");
    }
    const auto started = Clock::now();
    auto result = manager_.Apply(batch);
    if (result.ok()) {
      Measure(batch, *result, Clock::now() - started);
      Notify(batch, *result);
      if (hand_off) {
        HandOff(at, Uploads(batch));
        return Status::OK();
      }
      Drain();  // One flush at a time: the settler's first.
      const bool told = FlushNotes();
      FaultPoint("manager.before_ack");  // Outcomes told, deliveries not settled.
      SettleAll(*current_, at, told);
      if (told) RemoveUploads(Uploads(batch));
      return Status::OK();
    }
    if (batch.size() == 1) return Failed(at[0], result.status());
    spdlog::warn("model {}: batch of {} failed ({}); applying its requests one by one", model_,
                 batch.size(), result.status().message());
    for (size_t k = 0; k < batch.size(); ++k) {
      ARROW_RETURN_NOT_OK(ApplyGroup({batch[k]}, at.subspan(k, 1), false));
    }
    return Status::OK();
  }

  /// The staged uploads the batch's requests named.
  static std::vector<std::string> Uploads(std::span<const Request> batch) {
    std::vector<std::string> staged;
    for (const auto& request : batch) {
      if (request.source && !request.source->staged.empty()) {
        staged.push_back(request.source->staged);
      }
    }
    return staged;
  }

  /// Removes staged uploads once the requests that named them are settled: their outcomes are
  /// out (a redelivery is answered from the request table, without the file).
  void RemoveUploads(const std::vector<std::string>& staged) {
    for (const auto& name : staged) {
      RemoveStaged(StagingDir(options_.manager.data_dir, model_), name);
    }
  }

  /// Counts the batch's requests and times its apply; remembers when its version committed,
  /// to time its publication.
  void Measure(const std::vector<Request>& batch, const BatchResult& result, Clock::duration took) {
    Metrics& metrics = Metrics::Process();
    metrics.ObserveApply(model_, std::chrono::duration<double>(took).count());
    for (size_t i = 0; i < batch.size() && i < result.outcomes.size(); ++i) {
      const RequestOutcome& outcome = result.outcomes[i];
      metrics.CountRequest(model_, std::string(OpName(batch[i].op)), outcome.status);
      if (outcome.duplicate) continue;
      std::string steps;
      for (const auto& step : outcome.steps) {
        metrics.ObserveStep(model_, step);
        steps += fmt::format("{}{} {:.1f} ms {} rows", steps.empty() ? "" : ", ", step.name,
                             step.ms, step.rows);
      }
      // Functions are the heavy requests: their stages are worth a line each time.
      const auto level = outcome.op == Op::kInvoke ? spdlog::level::info : spdlog::level::debug;
      spdlog::log(level, "model {}: {} {} {} in {:.1f} ms: {}", model_, OpName(outcome.op),
                  outcome.request_id, outcome.status, outcome.duration_ms, steps);
    }
    if (result.new_version) {
      std::lock_guard lock(committed_mutex_);
      committed_at_.emplace(result.version, Clock::now());
    }
  }

  milliseconds TickInterval() const {
    milliseconds wait = options_.consumer.backoff.empty() ? options_.consumer.ack_wait
                                                          : options_.consumer.backoff.front();
    return std::max(milliseconds(100), wait / 3);
  }

  void KeepInProgress() {
    std::lock_guard lock(settle_mutex_);
    for (FetchedBatch* batch : {current_.get(), settling_.get()}) {
      if (batch == nullptr) continue;
      for (size_t i = 0; i < batch->open.size(); ++i) {
        if (!batch->open[i]) continue;
        Status status = batch->deliveries[i].InProgress();
        if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
      }
    }
  }

  /// Settles delivery i of the current batch with `how`, once, never while the ticker
  /// touches it.
  void Settle(size_t i, const std::function<Status(Delivery&)>& how) {
    std::lock_guard lock(settle_mutex_);
    if (!current_->open[i]) return;
    current_->open[i] = false;
    Status status = how(current_->deliveries[i]);
    if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
  }

  /// The batch is committed: acknowledged once its outcomes are stored (`told`); a lost ack
  /// only means a redelivery, which the request table answers without applying anything
  /// twice. Outcomes not stored are told again that way: the batch comes back soon.
  void SettleAll(FetchedBatch& fetched, std::span<const size_t> at, bool told) {
    std::lock_guard lock(settle_mutex_);
    std::vector<Delivery*> batch;
    batch.reserve(at.size());
    for (size_t i : at) {
      if (fetched.open[i]) batch.push_back(&fetched.deliveries[i]);
      fetched.open[i] = false;
    }
    Status status;
    if (told) {
      status = Delivery::AckAll(batch);
    } else {
      for (Delivery* delivery : batch) {
        Status naked = delivery->Nak(kRetellDelay);
        if (status.ok()) status = naked;
      }
    }
    if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
  }

  /// Gives the committed current batch, its outcomes published, to the settler, once the
  /// batch before it is settled: one batch waits for its acks while the next applies.
  /// `uploads`: the staged uploads to remove once it is acknowledged.
  void HandOff(std::span<const size_t> at, std::vector<std::string> uploads) {
    std::unique_lock lock(settle_mutex_);
    settled_.wait(lock, [&] { return settling_ == nullptr; });
    settling_ = std::move(current_);
    settling_at_.assign(at.begin(), at.end());
    settling_uploads_ = std::move(uploads);
    settle_wake_.notify_all();
  }

  /// The settler thread: stores the outcomes of each batch handed to it, then acks it.
  void RunSettler() {
    std::unique_lock lock(settle_mutex_);
    for (;;) {
      settle_wake_.wait(lock, [&] { return stopping_ || settling_ != nullptr; });
      if (settling_ == nullptr) return;  // Stopping, nothing left.
      lock.unlock();
      const bool told = FlushNotes();
      FaultPoint("manager.before_ack");  // Outcomes told, deliveries not settled.
      SettleAll(*settling_, settling_at_, told);
      if (told) RemoveUploads(settling_uploads_);
      lock.lock();
      settling_.reset();
      settled_.notify_all();
    }
  }

  /// Publishes every outcome (and the result pages of queries and functions).
  void Notify(std::span<const Request> batch, const BatchResult& result) {
    for (size_t i = 0; i < result.outcomes.size(); ++i) {
      const RequestOutcome& outcome = result.outcomes[i];
      const std::string subject = RequestNoteSubject(model_, outcome.request_id);
      int64_t pages = 0;
      if (outcome.result) {
        auto bodies = ResultPages(model_, outcome.request_id, *outcome.result, batch[i].page_rows);
        if (bodies.ok()) {
          for (const auto& body : *bodies) Publish(subject, body);
          pages = static_cast<int64_t>(bodies->size());
        } else {
          spdlog::warn("model {}: result of {} not paged: {}", model_, outcome.request_id,
                       bodies.status().message());
        }
      }
      const std::string note = OutcomeNote(model_, outcome, pages);
      Publish(subject, note);
      Publish(NoteSubject(model_), note);
    }
  }

  /// Waits until the notifications published so far are stored: a request is acknowledged
  /// only once its outcome is kept for its client, so no crash can lose an outcome whose
  /// request will not come back.
  /// Whether they are.
  bool FlushNotes() {
    Status stored = notifier_.Flush(options_.notes_flush_timeout);
    if (!stored.ok()) {
      spdlog::warn(
          "model {}: {}; their requests are not acknowledged, so they come back and their "
          "outcomes, kept in the model's request table, are told again",
          model_, stored.message());
    }
    return stored.ok();
  }

  /// A request whose apply failed (not a rejection: those are outcomes): retried later, or
  /// dead-lettered on its last attempt.
  Status Failed(size_t i, const Status& error) {
    if (error.IsCancelled()) return error;  // Lease lost: stop.
    Delivery& delivery = current_->deliveries[i];
    if (delivery.last_attempt()) {
      GiveUp(i, error.message());
      return Status::OK();
    }
    const milliseconds delay =
        std::min(milliseconds(30'000),
                 milliseconds(500) * (1 << std::min<uint64_t>(delivery.delivery_count(), 6)));
    spdlog::warn("model {}: request {} failed (delivery {}), retrying in {} ms: {}", model_,
                 delivery.request_id(), delivery.delivery_count(), delay.count(), error.message());
    Settle(i, [&](Delivery& d) { return d.Nak(delay); });
    return Status::OK();
  }

  /// Dead-letters delivery i and tells its client.
  void GiveUp(size_t i, const std::string& error) {
    auto [id, op] = IdAndOp(current_->deliveries[i]);
    spdlog::error("model {}: request {} dead-lettered to {}: {}", model_, id,
                  DeadLetterSubject(model_), error);
    Tell(id, op, "dead-lettered: " + error);
    Settle(i, [&](Delivery& d) { return consumer_.DeadLetter(d, error); });
  }

  /// Refuses delivery i (not a valid request for this model) and tells its client.
  void Refuse(size_t i, const std::string& error) {
    auto [id, op] = IdAndOp(current_->deliveries[i]);
    spdlog::info("model {}: refused message {}: {}", model_, id, error);
    const bool told = Tell(id, op, error);
    Settle(i, [&](Delivery& d) { return told ? d.Term() : d.Nak(kRetellDelay); });
  }

  /// Logs and notifies a request that ends without reaching the engine (before its delivery
  /// is settled, so that its client hears of it whatever happens next); whether the
  /// notification is stored.
  bool Tell(const std::string& id, const std::string& op, const std::string& error) {
    Drain();  // One flush at a time: the settler's first.
    manager_.LogRejected(id, op, error);
    const std::string note = RejectedNote(model_, id, op, error);
    if (ValidateRequestId(id).ok()) Publish(RequestNoteSubject(model_, id), note);
    Publish(NoteSubject(model_), note);
    return FlushNotes();
  }

  void Publish(const std::string& subject, const std::string& body) {
    Status status = notifier_.Publish(subject, body);
    if (!status.ok()) spdlog::warn("model {}: {}", model_, status.message());
  }

  const ManagerServiceOptions& options_;
  const std::string& model_;
  Notifier& notifier_;
  ModelConsumer& consumer_;
  ModelManager& manager_;
  Lease& lease_;
  Suspects suspects_;
  // The batch of the Process() call under way, and the committed one the settler stores the
  // outcomes of and acks (with the indices of its deliveries to ack and the uploads its
  // requests named). Protected by settle_mutex_ (the ticker and the settler use them).
  std::mutex settle_mutex_;
  std::condition_variable settle_wake_;  // Something to settle, or stopping_.
  std::condition_variable settled_;      // settling_ became null.
  std::unique_ptr<FetchedBatch> current_;
  std::unique_ptr<FetchedBatch> settling_;
  std::vector<size_t> settling_at_;
  std::vector<std::string> settling_uploads_;
  bool stopping_ = false;
  // When each version not yet published committed; protected by committed_mutex_ (the
  // publisher's thread reads it).
  std::mutex committed_mutex_;
  std::map<int64_t, Clock::time_point> committed_at_;
  Ticker ticker_{TickInterval(), [this] { KeepInProgress(); }};  // Uses the above.
  std::thread settler_{[this] { RunSettler(); }};                // Last: uses the above.
};

/// How often a manager publishes its state for `teatree status`.
constexpr auto kStatusInterval = std::chrono::seconds(2);
/// After this long without requests, a manager hands the memory it freed back to the system.
constexpr auto kTrimAfter = std::chrono::seconds(10);

/// The use of the filesystem holding `dir` (a pod's model volume): {"used", "size"} in bytes.
nlohmann::json DiskUse(const std::filesystem::path& dir) {
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return nullptr;
  const auto block = static_cast<int64_t>(fs.f_frsize);
  return {{"used", static_cast<int64_t>(fs.f_blocks - fs.f_bfree) * block},
          {"size", static_cast<int64_t>(fs.f_blocks) * block}};
}

/// The manager's state on teatree.note.<model>.~status: versions and what it holds back
/// because the catalog or the archive does not answer.
void PublishStatus(Notifier& notifier, const ModelManager& manager, const std::string& holder,
                   const ReadServers& reads) {
  const std::string& model = manager.options().model;
  Metrics::Process().SetVersions(model, manager.version(), manager.published_version());
  Status status = notifier.Publish(
      ManagerStatusSubject(model),
      DumpJson(nlohmann::json{{"type", "manager_status"},
                              {"model", model},
                              {"holder", holder},
                              {"flight_url", reads.flight_url()},
                              {"http_url", reads.http_url()},
                              {"version", manager.version()},
                              {"published_version", manager.published_version()},
                              {"catalog_backlog", manager.catalog_backlog()},
                              {"archive_backlog", manager.archive_backlog()},
                              {"disk", DiskUse(manager.options().data_dir)},
                              {"at", std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()}}));
  if (!status.ok()) spdlog::warn("model {}: {}", model, status.message());
}

std::string Holder() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return std::string("manager ") + host + " pid " + std::to_string(getpid());
}

/// Sizes DuckDB (and Arrow's thread pool) by the CPU and memory this process may use, its
/// container's and not the machine's, unless the options set them: a manager must stay inside
/// its pod's limit, where the kernel would kill it.
void FitIntoLimits(const std::string& model, ManagerOptions& manager, ReadServingOptions& read) {
  const ResourceLimits limits = DetectResourceLimits();
  const ManagerMemoryPlan plan = PlanManagerMemory(limits);
  if (manager.threads == 0) manager.threads = plan.threads;
  if (manager.memory_limit.empty()) manager.memory_limit = plan.writer_memory;
  if (read.memory_limit.empty()) read.memory_limit = plan.reads_memory;
  if (manager.threads > 0) (void)arrow::SetCpuThreadPoolCapacity(manager.threads);
  if (limits.source.empty()) return;
  spdlog::info(
      "model {}: limits from the {}: {} CPUs, {} MiB; DuckDB threads {}, memory limit {} (writer) "
      "and {} (reads of version files)",
      model, limits.source, limits.cpus, limits.memory_bytes >> 20, manager.threads,
      manager.memory_limit.empty() ? "none" : manager.memory_limit,
      read.memory_limit.empty() ? "none" : read.memory_limit);
}

}  // namespace

Status RunManagerService(const ManagerServiceOptions& options, const std::atomic<bool>& stop) {
  const std::string& model = options.manager.model;
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(options.nats));
  ARROW_ASSIGN_OR_RAISE(auto queue, RequestQueue::Make(*nats, options.queue));
  ARROW_ASSIGN_OR_RAISE(auto notifier, Notifier::Make(*nats, options.notes));
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
  manager_options.holder = (*lease)->holder();
  ReadServingOptions read_options = options.read;
  FitIntoLimits(model, manager_options, read_options);
  manager_options.on_published = [&](int64_t version) {
    std::lock_guard lock(notes_mutex);
    if (loop_for_notes != nullptr) loop_for_notes->NotifyPublished(version);
  };
  ARROW_ASSIGN_OR_RAISE(auto manager, ModelManager::Open(manager_options));
  SingleModel live(ModelReads::Live({.data_dir = options.manager.data_dir, .model = model},
                                    [&manager] { return manager->LiveReader(); }));
  // Ready to take work: the lease held, NATS connected, the model's directory writable, and
  // at most a batch of requests waiting.
  auto ready = [&] {
    if (lost || !(*lease)->held() || !nats->connected() ||
        !Writable(ModelDir(options.manager.data_dir, model))) {
      return false;
    }
    auto backlog = queue->Backlog(model);
    return backlog.ok() && *backlog <= options.batch_size;
  };
  ARROW_ASSIGN_OR_RAISE(
      auto read_servers,
      ReadServers::Start(read_options, live,
                         {.nats = nats.get(), .queue = queue.get(), .ready = ready}));
  Metrics::Process().SetCollector([&queue, model](Metrics& metrics) {
    auto backlog = queue->Backlog(model);
    if (backlog.ok()) metrics.SetBacklog(model, static_cast<int64_t>(*backlog));
  });
  manager->SetEndpoint(read_servers->flight_url());
  ServiceLoop loop(options, *notifier, *consumer, *manager, **lease);
  {
    std::lock_guard lock(notes_mutex);
    loop_for_notes = &loop;
  }
  spdlog::info("model {}: manager running at version {} (lease held by {}), reads at {} and {}",
               model, manager->version(), (*lease)->holder(), read_servers->flight_url(),
               read_servers->http_url());

  Status status;
  auto last_work = Clock::now();
  auto last_status = Clock::time_point();
  bool trimmed = false;
  while (!stop && !lost) {
    if (Clock::now() - last_status > kStatusInterval) {
      last_status = Clock::now();
      PublishStatus(*notifier, *manager, (*lease)->holder(), *read_servers);
    }
    auto deliveries = consumer->Fetch(options.batch_size, options.max_wait);
    if (!deliveries.ok()) {
      spdlog::warn("model {}: {}", model, deliveries.status().message());
      std::this_thread::sleep_for(options.max_wait);
      continue;
    }
    if (deliveries->empty()) {
      if (!trimmed && Clock::now() - last_work > kTrimAfter) {
        // Idle: what the batches and reads freed goes back to the system (the pod's
        // memory limit counts what the process holds, not what it uses).
        trimmed = true;
        malloc_trim(0);
      }
      if (options.idle_exit.count() > 0 && Clock::now() - last_work > options.idle_exit) {
        spdlog::info("model {}: idle for {} ms, stopping", model, options.idle_exit.count());
        break;
      }
      continue;
    }
    last_work = Clock::now();
    trimmed = false;
    status = loop.Process(std::move(*deliveries));
    if (!status.ok()) break;
  }
  loop.Drain();  // Every committed batch acknowledged before the model closes.
  const int64_t version = manager->version();
  Metrics::Process().SetCollector(nullptr);
  read_servers.reset();  // Reads stop before the model closes.
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
