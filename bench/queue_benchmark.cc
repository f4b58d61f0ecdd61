// Requests through the queue: a Client submits them to JetStream (TEATREE_REQ on a private
// nats-server that fsyncs every write), a manager service (RunManagerService, in a thread)
// fetches them in batches, applies each batch in one transaction and notifies the outcomes.
// Each figure is printed beside a raw baseline measured in the same run:
//   - BM_Latency: submit to outcome of 1-row appends (p50, p99), beside a raw JetStream
//     round trip with the same server settings (publish, pull, ack).
//   - BM_ConcurrentLatency: the same from 1, 8 and 32 submitters at once, beside as many raw
//     round trips at once.
//   - BM_Ingest: rows/s of 10,000-row appends submitted back to back, beside DuckDB's raw
//     appender writing the same rows.
//   - BM_GroupCommit: 1-row appends/s from several submitting threads with the manager
//     grouping up to 256 requests per transaction, beside the same with one per transaction.
//   - BM_ReadYourWrites: submit → outcome → a Flight read with min_version = the outcome's
//     version returns, through a front server like `teatree serve`'s: passed on to the
//     model's manager (live), or from version files only (published); beside submit →
//     outcome notification alone.
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/manager_bench_util.h"
#include "teatree/bus/nats_server.h"
#include "teatree/control/control_store.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_client.h"
#include "teatree/read/read_servers.h"
#include "teatree/service/client.h"
#include "teatree/service/manager_service.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How long any one outcome may take before the benchmark gives up.
constexpr milliseconds kTimeout = std::chrono::seconds(60);

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// The `q` quantile (0 < q <= 1) of `samples`, by nearest rank.
double Quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
  const size_t index = std::min(samples.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(index),
                   samples.end());
  return samples[index];
}

/// `request` addressed to `model` instead of kModel, with its payload hash to match.
Request ForModel(Request request, const std::string& model) {
  request.model = model;
  request.payload_hash = PayloadHash(request);
  return request;
}

/// nats.c's result as a Status, for the raw baseline, which speaks to nats.c directly.
Status CheckNats(natsStatus status, jsErrCode error, const char* what) {
  if (status == NATS_OK) return Status::OK();
  return Status::IOError(what, ": ", natsStatus_GetText(status), " (JetStream error ",
                         static_cast<int>(error), ")");
}

/// The notifications of one model (Client::Watch), read in order: how a benchmark learns
/// that requests it submitted without waiting were applied, and that the model's publisher
/// is done with them. Make it before the first of those requests is submitted. Use from one
/// thread.
class OutcomeWatch {
 public:
  static Result<std::unique_ptr<OutcomeWatch>> Make(Client& client, const std::string& model) {
    ARROW_ASSIGN_OR_RAISE(auto notes, client.Watch(model));
    return std::unique_ptr<OutcomeWatch>(new OutcomeWatch(std::move(notes)));
  }

  /// Waits for the next `n` outcomes and checks that each was applied with `rows` rows.
  Status WaitForOutcomes(int64_t n, int64_t rows) {
    for (int64_t i = 0; i < n; ++i) {
      ARROW_ASSIGN_OR_RAISE(auto outcome, NextOutcome());
      ARROW_RETURN_NOT_OK(CheckApplied(outcome, rows));
    }
    return Status::OK();
  }

  /// Waits for the outcome of `request_id`, passing over the others, and checks that it was
  /// applied with `rows` rows.
  Status WaitForRequest(const std::string& request_id, int64_t rows) {
    for (;;) {
      ARROW_ASSIGN_OR_RAISE(auto outcome, NextOutcome());
      if (outcome.value("request_id", "") == request_id) return CheckApplied(outcome, rows);
    }
  }

  /// Waits until the version of the last outcome read is published, so that the next
  /// measurement does not share the disk with the publisher catching up.
  Status WaitPublished() {
    while (published_ < applied_) ARROW_RETURN_NOT_OK(NextNote().status());
    return Status::OK();
  }

 private:
  explicit OutcomeWatch(std::unique_ptr<NoteSubscription> notes) : notes_(std::move(notes)) {}

  /// The next notification, noting the versions it reports.
  Result<nlohmann::json> NextNote() {
    ARROW_ASSIGN_OR_RAISE(auto note, notes_->Next(kTimeout));
    if (!note) return Status::IOError("nothing notified within ", kTimeout.count(), " ms");
    auto json = nlohmann::json::parse(note->body, nullptr, false);
    if (!json.is_object()) return Status::Invalid("notification is not JSON: ", note->body);
    const std::string type = json.value("type", "");
    const auto version = json.contains("version") && json["version"].is_number_integer()
                             ? json["version"].get<int64_t>()
                             : int64_t{0};
    if (type == "outcome") applied_ = std::max(applied_, version);
    if (type == "version_published") published_ = std::max(published_, version);
    return json;
  }

  /// The next outcome notification (version notifications are passed over).
  Result<nlohmann::json> NextOutcome() {
    for (;;) {
      ARROW_ASSIGN_OR_RAISE(auto json, NextNote());
      if (json.value("type", "") == "outcome") return json;
    }
  }

  static Status CheckApplied(const nlohmann::json& outcome, int64_t rows) {
    if (outcome.value("status", "") == "applied" && outcome.value("rows", int64_t{-1}) == rows) {
      return Status::OK();
    }
    return Status::Invalid("request ", outcome.value("request_id", ""), " was ",
                           outcome.value("status", ""), " with ",
                           outcome.value("rows", int64_t{-1}), " rows (expected ", rows,
                           "): ", outcome.value("error", ""));
  }

  std::unique_ptr<NoteSubscription> notes_;
  /// The newest version an outcome reported, and the newest one notified as published.
  int64_t applied_ = 0;
  int64_t published_ = 0;
};

/// Teatree's queue path for one benchmark: a private nats-server (sync_always) in a
/// temporary directory, manager services in threads of this process, and a client.
/// Destruction stops the managers, then closes the client, then stops the server.
class QueueBench {
 public:
  static std::unique_ptr<QueueBench> Start(const std::string& prefix) {
    spdlog::set_level(spdlog::level::warn);  // The managers' start and stop lines.
    auto bench = std::unique_ptr<QueueBench>(new QueueBench());
    bench->dir_ = OrDie(TempDir::Make(prefix));
    bench->server_ = OrDie(NatsServer::Start({.store_dir = bench->dir() / "nats"}));
    bench->client_ = OrDie(Client::Connect({.nats = {.url = bench->server_->url()}}));
    return bench;
  }

  ~QueueBench() {
    Status status = StopManagers();
    if (!status.ok()) std::fprintf(stderr, "manager failed: %s\n", status.ToString().c_str());
  }

  QueueBench(const QueueBench&) = delete;
  QueueBench& operator=(const QueueBench&) = delete;

  /// Runs the manager service of `model` in a thread and creates the table kTable there.
  Status StartManager(const std::string& model, size_t batch_size, milliseconds max_wait) {
    auto manager = std::make_unique<ManagerThread>();
    manager->options = {
        .manager = {.data_dir = dir() / "data", .model = model, .archive_url = "none"},
        .nats = {.url = server_->url()},
        .batch_size = batch_size,
        .max_wait = max_wait};
    ManagerThread& running = *manager;
    manager->thread = std::thread([&running] {
      running.status = RunManagerService(running.options, running.stop);
      running.done = true;
    });
    managers_.push_back(std::move(manager));
    ARROW_ASSIGN_OR_RAISE(auto create, DecodeRequest(kCreateTable));
    create.request_id = "create-" + model;
    ARROW_RETURN_NOT_OK(client_->Submit(ForModel(create, model)).status());
    // Waits in slices, so that a manager that failed to start is reported at once.
    const auto deadline = Clock::now() + kTimeout;
    for (;;) {
      auto outcome = client_->Wait(model, create.request_id, milliseconds(500));
      if (outcome.ok()) {
        if (outcome->applied()) return Status::OK();
        return Status::Invalid("create_table on model ", model, ": ", outcome->note.dump());
      }
      if (running.done) {
        running.thread.join();
        return running.status.ok() ? Status::Invalid("the manager of ", model, " stopped early")
                                   : running.status;
      }
      if (Clock::now() > deadline) return outcome.status();
    }
  }

  /// Stops every manager (each finishes the batch at hand) and returns the first failure.
  Status StopManagers() {
    Status first;
    for (auto& manager : managers_) manager->stop = true;
    for (auto& manager : managers_) {
      if (manager->thread.joinable()) manager->thread.join();
      if (first.ok()) first = manager->status;
    }
    managers_.clear();
    return first;
  }

  Client& client() { return *client_; }
  const fs::path& dir() const { return dir_->path(); }

 private:
  struct ManagerThread {
    ManagerServiceOptions options;
    std::atomic<bool> stop{false};
    std::atomic<bool> done{false};
    Status status;  // Written by `thread`, read once `done` or after joining it.
    std::thread thread;
  };

  QueueBench() = default;

  // Destroyed in reverse order: the client before the server, both before the directory.
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<Client> client_;
  std::vector<std::unique_ptr<ManagerThread>> managers_;
};

/// The rows of `model`'s table, counted by a query request through the queue.
Result<int64_t> CountRowsThroughQueue(Client& client, const std::string& model) {
  ARROW_ASSIGN_OR_RAISE(
      auto query, DecodeRequest(R"({"request_id":"count-)" + model + R"(","model":")" + model +
                                R"(","op":"query","sql":"SELECT count(*) AS n FROM t"})"));
  ARROW_ASSIGN_OR_RAISE(auto outcome, client.SubmitAndWait(query, kTimeout));
  if (!outcome.applied() || !outcome.result || outcome.result->num_rows() != 1) {
    return Status::Invalid("the count query on model ", model, " gave ", outcome.note.dump());
  }
  ARROW_ASSIGN_OR_RAISE(auto scalar, outcome.result->column(0)->GetScalar(0));
  return std::static_pointer_cast<arrow::Int64Scalar>(scalar)->value;
}

/// OK when `model` holds exactly `expected` rows: nothing appended was lost or doubled.
Status CheckRowCount(Client& client, const std::string& model, int64_t expected) {
  ARROW_ASSIGN_OR_RAISE(int64_t rows, CountRowsThroughQueue(client, model));
  if (rows != expected) {
    return Status::Invalid("row count ", rows, " differs from the ", expected, " rows appended");
  }
  return Status::OK();
}

/// The latency baseline: JetStream alone, with the server Teatree uses, on a stream of its
/// own like TEATREE_REQ (file storage, work-queue retention, deduplication on Nats-Msg-Id)
/// read by durable pull consumers, one per lane (a subject of its own), so that concurrent
/// submitters each pull their own message. One round trip publishes a message and waits for
/// the store's ack, pulls it and acks it synchronously. Thread-safe across lanes: use each
/// lane from one thread at a time. The NatsConnection must outlive it.
class RawJetStream {
 public:
  static Result<std::unique_ptr<RawJetStream>> Make(NatsConnection& nats, int lanes = 1) {
    const char* subjects[] = {"bench.raw.>"};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = "BENCH_RAW";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Retention = js_WorkQueuePolicy;
    config.Storage = js_FileStorage;
    config.Duplicates = std::chrono::nanoseconds(std::chrono::minutes(2)).count();
    jsStreamInfo* info = nullptr;
    jsErrCode error = jsErrCode(0);
    ARROW_RETURN_NOT_OK(CheckNats(js_AddStream(&info, nats.jetstream(), &config, nullptr, &error),
                                  error, "cannot create stream BENCH_RAW"));
    jsStreamInfo_Destroy(info);
    auto raw = std::unique_ptr<RawJetStream>(new RawJetStream(nats));
    for (int lane = 0; lane < lanes; ++lane) {
      const std::string subject = Subject(lane);
      const std::string durable = "bench-raw-" + std::to_string(lane);
      jsSubOptions options;
      jsSubOptions_Init(&options);
      options.Stream = "BENCH_RAW";
      options.ManualAck = true;
      natsSubscription* subscription = nullptr;
      ARROW_RETURN_NOT_OK(
          CheckNats(js_PullSubscribe(&subscription, nats.jetstream(), subject.c_str(),
                                     durable.c_str(), nullptr, &options, &error),
                    error, "cannot subscribe to BENCH_RAW"));
      raw->subscriptions_.push_back(subscription);
    }
    return raw;
  }
  ~RawJetStream() {
    for (natsSubscription* subscription : subscriptions_) {
      natsSubscription_Unsubscribe(subscription);
      natsSubscription_Destroy(subscription);
    }
  }
  RawJetStream(const RawJetStream&) = delete;
  RawJetStream& operator=(const RawJetStream&) = delete;

  Status RoundTrip(const std::string& id, const std::string& body, int lane = 0) {
    const std::string subject = Subject(lane);
    natsMsg* msg = nullptr;
    jsErrCode error = jsErrCode(0);
    Status status = CheckNats(
        natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
        error, "cannot build a message");
    if (status.ok()) {
      status = CheckNats(natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str()), error,
                         "cannot set Nats-Msg-Id");
    }
    jsPubAck* ack = nullptr;
    if (status.ok()) {
      status = CheckNats(js_PublishMsg(&ack, nats_.jetstream(), msg, nullptr, &error), error,
                         "cannot publish to BENCH_RAW");
    }
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    ARROW_RETURN_NOT_OK(status);
    natsMsgList list{};
    ARROW_RETURN_NOT_OK(
        CheckNats(natsSubscription_Fetch(&list, subscriptions_[lane], 1, kTimeout.count(), &error),
                  error, "cannot fetch from BENCH_RAW"));
    if (list.Count == 1 && natsMsg_GetDataLength(list.Msgs[0]) == static_cast<int>(body.size())) {
      status = CheckNats(natsMsg_AckSync(list.Msgs[0], nullptr, &error), error,
                         "cannot ack on BENCH_RAW");
    } else {
      status = Status::Invalid("BENCH_RAW gave ", list.Count, " messages, not the one published");
    }
    natsMsgList_Destroy(&list);
    return status;
  }

 private:
  static std::string Subject(int lane) { return "bench.raw." + std::to_string(lane); }

  explicit RawJetStream(NatsConnection& nats) : nats_(nats) {}

  NatsConnection& nats_;
  std::vector<natsSubscription*> subscriptions_;  // One per lane, owned.
};

/// Submit to outcome of 1-row appends, one at a time, with the manager's fetch waiting up to
/// state.range(0) ms for a request (ManagerServiceOptions::max_wait).
///   - `p50_ms`, `p99_ms`: Client::SubmitAndWait, what a caller waits for.
///   - `note_p50_ms`, `note_p99_ms`: Submit until the outcome arrives on a subscription made
///     beforehand: the queue path without SubmitAndWait's subscription per request.
///   - `submit_p50_ms`: Submit alone (the client's codec, JetStream storing the request).
///   - `raw_p50_ms`, `raw_p99_ms`: the raw JetStream round trip of the same request body.
/// They are interleaved per request, so that the disk treats them alike. Ratios are raw /
/// Teatree, as with throughput: 1.0 means no overhead, 0.2 that Teatree takes five times as
/// long.
void BM_Latency(benchmark::State& state) {
  constexpr int64_t kRequests = 500;
  const milliseconds max_wait(state.range(0));
  auto bench = QueueBench::Start("teatree-bench-latency-");
  OrDie(bench->StartManager(kModel, 256, max_wait));
  auto raw = OrDie(RawJetStream::Make(bench->client().connection()));
  auto watch = OrDie(OutcomeWatch::Make(bench->client(), kModel));
  std::vector<double> teatree_ms, note_ms, submit_ms, raw_ms;
  int64_t next_row = 0;
  for (auto _ : state) {
    Status status;
    for (int64_t i = 0; i < kRequests && status.ok(); ++i) {
      const Request waited =
          AppendRequest("w" + std::to_string(next_row), next_row, 1, Payload::kJson);
      const Request watched =
          AppendRequest("n" + std::to_string(next_row + 1), next_row + 1, 1, Payload::kJson);
      next_row += 2;
      const std::string body = EncodeRequest(waited);

      auto start = Clock::now();
      status = raw->RoundTrip("r" + std::to_string(next_row), body);
      raw_ms.push_back(MillisecondsSince(start));
      if (!status.ok()) break;

      start = Clock::now();
      auto outcome = bench->client().SubmitAndWait(waited, kTimeout);
      teatree_ms.push_back(MillisecondsSince(start));
      if (!outcome.ok()) {
        status = outcome.status();
        break;
      }
      if (!outcome->applied()) status = Status::Invalid("1-row append: ", outcome->note.dump());
      if (!status.ok()) break;

      start = Clock::now();
      status = bench->client().Submit(watched).status();
      submit_ms.push_back(MillisecondsSince(start));
      if (status.ok()) status = watch->WaitForRequest(watched.request_id, 1);
      note_ms.push_back(MillisecondsSince(start));
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  if (Status counted = CheckRowCount(bench->client(), kModel, next_row); !counted.ok()) {
    state.SkipWithError(counted.ToString().c_str());
    return;
  }
  const double p50 = Quantile(teatree_ms, 0.5), p99 = Quantile(teatree_ms, 0.99);
  const double raw_p50 = Quantile(raw_ms, 0.5), raw_p99 = Quantile(raw_ms, 0.99);
  state.counters["p50_ms"] = p50;
  state.counters["p99_ms"] = p99;
  state.counters["note_p50_ms"] = Quantile(note_ms, 0.5);
  state.counters["note_p99_ms"] = Quantile(note_ms, 0.99);
  state.counters["submit_p50_ms"] = Quantile(submit_ms, 0.5);
  state.counters["raw_p50_ms"] = raw_p50;
  state.counters["raw_p99_ms"] = raw_p99;
  state.counters["p50_ratio"] = raw_p50 / p50;
  state.counters["p99_ratio"] = raw_p99 / p99;
  state.counters["fsync_ms"] = FsyncMilliseconds(bench->dir());
  OrDie(bench->StopManagers());
}
BENCHMARK(BM_Latency)
    ->ArgName("max_wait_ms")
    ->Arg(10)
    ->Arg(200)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

/// Runs `call(thread, i)` for i in [0, calls) on each of `threads` threads at once and adds
/// the time of every call, in ms, to `ms`; returns the first failure.
Status TimeConcurrently(int threads, int64_t calls,
                        const std::function<Status(int thread, int64_t i)>& call,
                        std::vector<double>& ms) {
  std::vector<std::vector<double>> times(threads);
  std::vector<Status> statuses(threads);
  std::vector<std::thread> running;
  running.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int64_t i = 0; i < calls && statuses[t].ok(); ++i) {
        const auto start = Clock::now();
        statuses[t] = call(t, i);
        times[t].push_back(MillisecondsSince(start));
      }
    });
  }
  for (auto& thread : running) thread.join();
  for (const auto& some : times) ms.insert(ms.end(), some.begin(), some.end());
  for (const auto& status : statuses) ARROW_RETURN_NOT_OK(status);
  return Status::OK();
}

/// Submit to outcome of 1-row appends from state.range(0) submitters at once, each calling
/// Client::SubmitAndWait in a loop on the one client, against a manager with the service's
/// defaults (batch size 256, fetch waiting up to 200 ms). Beside it the raw JetStream round
/// trip (publish, pull, ack) from as many threads at once, each on a consumer of its own.
/// The two alternate in rounds, so that both see the disk alike. `p50_ratio` and
/// `p99_ratio` are raw / Teatree, as in BM_Latency.
void BM_ConcurrentLatency(benchmark::State& state) {
  constexpr int kRounds = 4;
  const int submitters = static_cast<int>(state.range(0));
  // 600 to 1,600 requests a side: enough for a p99, few enough for a shared machine.
  const int64_t per_round = std::clamp<int64_t>(50 * submitters, 150, 400);
  const int64_t calls = std::max<int64_t>(1, per_round / submitters);
  auto bench = QueueBench::Start("teatree-bench-concurrent-");
  OrDie(bench->StartManager(kModel, 256, milliseconds(200)));
  auto raw = OrDie(RawJetStream::Make(bench->client().connection(), submitters));
  std::vector<double> teatree_ms, raw_ms;
  int64_t next_row = 0;
  for (auto _ : state) {
    Status status;
    for (int round = 0; round < kRounds && status.ok(); ++round) {
      const int64_t first = next_row;
      const auto row = [&](int t, int64_t i) { return first + t * calls + i; };
      status = TimeConcurrently(
          submitters, calls,
          [&](int t, int64_t i) {
            const std::string id = "r" + std::to_string(row(t, i));
            return raw->RoundTrip(
                id, EncodeRequest(AppendRequest(id, row(t, i), 1, Payload::kJson)), t);
          },
          raw_ms);
      if (!status.ok()) break;
      status = TimeConcurrently(
          submitters, calls,
          [&](int t, int64_t i) -> Status {
            const Request append =
                AppendRequest("c" + std::to_string(row(t, i)), row(t, i), 1, Payload::kJson);
            ARROW_ASSIGN_OR_RAISE(auto outcome, bench->client().SubmitAndWait(append, kTimeout));
            if (!outcome.applied()) return Status::Invalid("1-row append: ", outcome.note.dump());
            return Status::OK();
          },
          teatree_ms);
      next_row += submitters * calls;
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  if (Status counted = CheckRowCount(bench->client(), kModel, next_row); !counted.ok()) {
    state.SkipWithError(counted.ToString().c_str());
    return;
  }
  const double p50 = Quantile(teatree_ms, 0.5), p99 = Quantile(teatree_ms, 0.99);
  const double raw_p50 = Quantile(raw_ms, 0.5), raw_p99 = Quantile(raw_ms, 0.99);
  state.counters["requests"] = static_cast<double>(teatree_ms.size());
  state.counters["p50_ms"] = p50;
  state.counters["p99_ms"] = p99;
  state.counters["raw_p50_ms"] = raw_p50;
  state.counters["raw_p99_ms"] = raw_p99;
  state.counters["p50_ratio"] = raw_p50 / p50;
  state.counters["p99_ratio"] = raw_p99 / p99;
  state.counters["fsync_ms"] = FsyncMilliseconds(bench->dir());
  OrDie(bench->StopManagers());
}
BENCHMARK(BM_ConcurrentLatency)
    ->ArgName("submitters")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

/// Sustained ingest: requests of 10,000 rows submitted back to back (each Submit returns once
/// JetStream stored it), timed from the first submit to the last outcome, beside the raw
/// appender writing the same rows, one transaction per request. Each iteration waits for
/// Teatree's publisher to catch up before the raw side runs, so that they do not share the
/// disk.
void BM_Ingest(benchmark::State& state, Payload payload) {
  constexpr int64_t kRows = 10'000;
  constexpr int64_t kRequests = 40;
  auto bench = QueueBench::Start("teatree-bench-ingest-");
  OrDie(bench->StartManager(kModel, 256, milliseconds(20)));
  RawAppender raw_db(bench->dir() / "raw.duckdb");
  Stopwatch teatree, raw, codec;
  double submit_seconds = 0;
  int64_t next_row = 0;
  for (auto _ : state) {
    Status status;
    for (int64_t r = 0; r < kRequests && status.ok(); ++r) {
      raw.Time([&] { status = raw_db.Append(next_row + r * kRows, kRows); });
    }
    std::vector<Request> requests;
    for (int64_t r = 0; r < kRequests; ++r) {
      const int64_t first = next_row + r * kRows;
      requests.push_back(AppendRequest("i" + std::to_string(first), first, kRows, payload));
    }
    std::unique_ptr<OutcomeWatch> watch;
    if (status.ok()) {
      auto made = OutcomeWatch::Make(bench->client(), kModel);
      status = made.status();
      if (made.ok()) watch = std::move(*made);
    }
    if (status.ok()) {
      teatree.Time([&] {
        const auto start = Clock::now();
        for (const auto& request : requests) {
          status = bench->client().Submit(request).status();
          if (!status.ok()) return;
        }
        submit_seconds += MillisecondsSince(start) / 1e3;
        status = watch->WaitForOutcomes(kRequests, kRows);
      });
    }
    if (status.ok()) status = watch->WaitPublished();
    // The codec's share, timed again on its own: the client's encode and the manager's
    // decode of each request.
    for (const auto& request : requests) {
      if (!status.ok()) break;
      codec.Time([&] { status = DecodeRequest(EncodeRequest(request)).status(); });
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    next_row += kRequests * kRows;
  }
  auto ours = CountRowsThroughQueue(bench->client(), kModel);
  auto theirs = raw_db.CountRows();
  if (!ours.ok() || !theirs.ok() || *ours != next_row || *theirs != next_row) {
    state.SkipWithError(!ours.ok() ? ours.status().ToString().c_str()
                                   : "row counts differ from the rows appended");
    return;
  }
  ReportAgainstBaseline(state, "rows", static_cast<double>(next_row), teatree, raw);
  // How fast the client alone got the requests stored, the bound the manager works under,
  // and the codec's cost per request.
  const double submitted = static_cast<double>(kRequests * state.iterations());
  state.counters["submitted_rows/s"] = static_cast<double>(next_row) / submit_seconds;
  state.counters["submit_ms/request"] = 1e3 * submit_seconds / submitted;
  state.counters["codec_ms/request"] = 1e3 * codec.seconds() / submitted;
  state.counters["fsync_ms"] = FsyncMilliseconds(bench->dir());
  OrDie(bench->StopManagers());
}
BENCHMARK_CAPTURE(BM_Ingest, ipc, Payload::kIpc)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Ingest, json, Payload::kJson)->Iterations(3)->Unit(benchmark::kMillisecond);

/// How long a SubmitAll() took.
struct Drive {
  /// From the first submit to the last outcome.
  double seconds = 0;
  /// From the first submit to the last one returning (JetStream stored them all).
  double submit_seconds = 0;
};

/// `requests` 1-row appends to `model` submitted from `threads` threads at once, as fast as
/// Submit returns. Returns once the model's publisher caught up, so that the next run has the
/// disk to itself.
Result<Drive> SubmitAll(Client& client, const std::string& model, int64_t first_row,
                        int64_t requests, int threads) {
  std::vector<std::vector<Request>> shares(threads);
  for (int64_t r = 0; r < requests; ++r) {
    shares[r % threads].push_back(
        ForModel(AppendRequest(model + "-" + std::to_string(first_row + r), first_row + r, 1,
                               Payload::kJson),
                 model));
  }
  ARROW_ASSIGN_OR_RAISE(auto watch, OutcomeWatch::Make(client, model));
  std::vector<Status> statuses(threads);
  std::vector<std::thread> submitters;
  submitters.reserve(threads);
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([&, t] {
      for (const auto& request : shares[t]) {
        statuses[t] = client.Submit(request).status();
        if (!statuses[t].ok()) return;
      }
    });
  }
  for (auto& submitter : submitters) submitter.join();
  Drive drive{.submit_seconds = MillisecondsSince(start) / 1e3};
  for (const auto& status : statuses) ARROW_RETURN_NOT_OK(status);
  ARROW_RETURN_NOT_OK(watch->WaitForOutcomes(requests, 1));
  drive.seconds = MillisecondsSince(start) / 1e3;
  ARROW_RETURN_NOT_OK(watch->WaitPublished());
  return drive;
}

/// 1-row appends through the queue with group commit (a manager fetching and committing up to
/// 256 requests at once) versus without (batch_size 1), each model with its own manager,
/// fed the same way from 4 submitting threads. `requests/s` is the grouped rate, the
/// baseline (`single_requests/s`) the one-per-transaction rate; `submitted/s` is how fast
/// the grouped run's requests were stored, which bounds its rate.
void BM_GroupCommit(benchmark::State& state) {
  constexpr int64_t kRequests = 2000;
  constexpr int kSubmitters = 4;
  const std::string single_model = "bench_single";
  auto bench = QueueBench::Start("teatree-bench-group-");
  OrDie(bench->StartManager(kModel, 256, milliseconds(20)));
  OrDie(bench->StartManager(single_model, 1, milliseconds(20)));
  Stopwatch grouped, single;
  double submit_seconds = 0;
  int64_t next_row = 0;
  for (auto _ : state) {
    auto one = SubmitAll(bench->client(), single_model, next_row, kRequests, kSubmitters);
    auto many =
        one.ok() ? SubmitAll(bench->client(), kModel, next_row, kRequests, kSubmitters) : one;
    if (!many.ok()) {
      state.SkipWithError(many.status().ToString().c_str());
      return;
    }
    single.Add(one->seconds);
    grouped.Add(many->seconds);
    submit_seconds += many->submit_seconds;
    next_row += kRequests;
  }
  auto grouped_rows = CountRowsThroughQueue(bench->client(), kModel);
  auto single_rows = CountRowsThroughQueue(bench->client(), single_model);
  if (!grouped_rows.ok() || !single_rows.ok() || *grouped_rows != next_row ||
      *single_rows != next_row) {
    state.SkipWithError("row counts differ from the rows appended");
    return;
  }
  ReportRates(state, "requests", static_cast<double>(next_row), grouped.seconds(), "single",
              static_cast<double>(next_row), single.seconds());
  state.counters["submitted/s"] = static_cast<double>(next_row) / submit_seconds;
  state.counters["fsync_ms"] = FsyncMilliseconds(bench->dir());
  OrDie(bench->StopManagers());
}
BENCHMARK(BM_GroupCommit)->Iterations(1)->Unit(benchmark::kMillisecond);

/// The Flight URL the manager of `model` recorded in the catalog of `data_dir`.
Result<std::string> ManagerEndpoint(const fs::path& data_dir, const std::string& model) {
  const auto deadline = Clock::now() + kTimeout;
  while (Clock::now() < deadline) {
    ARROW_ASSIGN_OR_RAISE(auto control,
                          ControlStore::Open("sqlite://" + (data_dir / "control.sqlite").string()));
    ARROW_ASSIGN_OR_RAISE(auto record, control->GetModel(model));
    if (record && !record->manager_endpoint.empty()) return record->manager_endpoint;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return Status::IOError("the manager of ", model, " recorded no endpoint");
}

/// One read-your-writes round: a 1-row append submitted and its outcome awaited, then a count
/// through `reads` with min_version = the outcome's version, which must see the row.
Result<double> WriteThenRead(Client& client, ReadClient& reads, int64_t row) {
  const auto start = Clock::now();
  const Request append = AppendRequest("ryw" + std::to_string(row), row, 1, Payload::kJson);
  ARROW_ASSIGN_OR_RAISE(auto outcome, client.SubmitAndWait(append, kTimeout));
  if (!outcome.applied()) return Status::Invalid("1-row append: ", outcome.note.dump());
  const int64_t version = outcome.note.value("version", int64_t{0});
  ARROW_ASSIGN_OR_RAISE(
      auto read,
      reads.Query({.model = kModel,
                   .sql = "SELECT count(*) FROM t WHERE id = " + std::to_string(row),
                   .min_version = VersionWanted{.min_version = version, .wait = kMaxVersionWait}}));
  const double ms = MillisecondsSince(start);
  ARROW_ASSIGN_OR_RAISE(auto count, read.table->column(0)->GetScalar(0));
  if (read.version < version || count->ToString() != "1") {
    return Status::Invalid("a read at version ", read.version, " missed the write of version ",
                           version);
  }
  return ms;
}

/// Read your writes, end to end: submit → outcome → a Flight read given the outcome's
/// version returns having seen the write. Through a front server that passes live reads to
/// the model's manager (`live`), and through one that only has the version files (`published`,
/// which waits for the next publication, at most one per 500 ms). Beside submit → outcome
/// notification (Client::SubmitAndWait) alone, and a read through the live front without
/// min_version, measured in the same loop.
void BM_ReadYourWrites(benchmark::State& state) {
  constexpr int64_t kLiveRounds = 200, kPublishedRounds = 20;
  auto bench = QueueBench::Start("teatree-bench-ryw-");
  OrDie(bench->StartManager(kModel, 256, milliseconds(10)));
  const fs::path data_dir = bench->dir() / "data";
  const std::string endpoint = OrDie(ManagerEndpoint(data_dir, kModel));
  DataDirReplicas live_dir({.data_dir = data_dir}, [&](const std::string&) { return endpoint; });
  DataDirReplicas files_dir({.data_dir = data_dir}, nullptr);
  NatsConnection& nats = bench->client().connection();
  auto live_front = OrDie(ReadServers::Start({.http_port = -1}, live_dir, {.nats = &nats}));
  auto files_front = OrDie(ReadServers::Start({.http_port = -1}, files_dir, {.nats = &nats}));
  auto live = OrDie(ReadClient::Connect({.url = live_front->flight_url()}));
  auto files = OrDie(ReadClient::Connect({.url = files_front->flight_url()}));
  std::vector<double> note_ms, live_ms, published_ms, read_ms;
  int64_t row = 0;
  for (auto _ : state) {
    Status status;
    for (int64_t i = 0; i < kLiveRounds + kPublishedRounds && status.ok(); ++i) {
      const Request append = AppendRequest("n" + std::to_string(row), row, 1, Payload::kJson);
      auto start = Clock::now();
      auto outcome = bench->client().SubmitAndWait(append, kTimeout);
      note_ms.push_back(MillisecondsSince(start));
      status = outcome.status();
      ++row;
      if (!status.ok()) break;
      auto read = WriteThenRead(bench->client(), i < kLiveRounds ? *live : *files, row++);
      status = read.status();
      if (status.ok()) (i < kLiveRounds ? live_ms : published_ms).push_back(*read);
      if (!status.ok() || i >= kLiveRounds) continue;
      // The same read without min_version: what the read costs apart from its wait.
      start = Clock::now();
      status = live->Query({.model = kModel, .sql = "SELECT count(*) FROM t"}).status();
      read_ms.push_back(MillisecondsSince(start));
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  const double note = Quantile(note_ms, 0.5);
  state.counters["note_p50_ms"] = note;
  state.counters["read_p50_ms"] = Quantile(read_ms, 0.5);
  state.counters["live_p50_ms"] = Quantile(live_ms, 0.5);
  state.counters["live_p99_ms"] = Quantile(live_ms, 0.99);
  state.counters["published_p50_ms"] = Quantile(published_ms, 0.5);
  state.counters["published_max_ms"] = Quantile(published_ms, 1.0);
  state.counters["live_ratio"] = note / Quantile(live_ms, 0.5);
  state.counters["published_ratio"] = note / Quantile(published_ms, 0.5);
  OrDie(bench->StopManagers());
}
BENCHMARK(BM_ReadYourWrites)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace teatree::bench
