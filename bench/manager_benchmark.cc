// Appends through the model manager (ModelManager::Apply: validation, one transaction with the
// request table, the catalog updates, the publisher running behind) versus DuckDB's raw
// appender writing the same rows to the same schema in a fresh file, and group commit: many
// small requests in one Apply versus one per Apply.
#include <string>
#include <vector>

#include "bench/manager_bench_util.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/engine/duckdb/duckdb_engine.h"

namespace teatree::bench {
namespace {

/// Requests per iteration, so that each iteration carries enough work to time.
int64_t RequestsPerIteration(int64_t rows_per_request) {
  return rows_per_request >= 10'000 ? 20 : 100;
}

/// Requests of `rows` rows, one per Apply (one transaction each), through the manager (the
/// request's JSON text decoded, then applied) versus the raw appender. `rows/s` counts the
/// Apply alone; `with_decode_ratio` adds DecodeRequest, which every entry point runs first.
void BM_Append(benchmark::State& state, Payload payload) {
  const int64_t rows = state.range(0);
  const int64_t requests = RequestsPerIteration(rows);
  auto model = BenchModel::Make("teatree-bench-append-", {.archive_url = "none"});
  RawAppender raw_db(model->dir() / "raw.duckdb");
  Stopwatch teatree, decode, raw;
  int64_t next_row = 0;
  for (auto _ : state) {
    std::vector<std::string> texts;
    for (int64_t r = 0; r < requests; ++r) {
      texts.push_back(EncodeRequest(AppendRequest("a" + std::to_string(next_row + r * rows),
                                                  next_row + r * rows, rows, payload)));
    }
    Status status;
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      Result<Request> request;
      decode.Time([&] { request = DecodeRequest(texts[r]); });
      if (!request.ok()) {
        status = request.status();
        break;
      }
      std::vector<Request> batch;  // Built outside the clock: a caller moves its request in.
      batch.push_back(std::move(*request));
      Result<BatchResult> result;
      teatree.Time([&] { result = model->manager().Apply(batch); });
      status = CheckApplied(result, rows);
    }
    // The raw side runs with the publisher idle, not competing with it for the disk.
    if (status.ok()) status = model->WaitIdle();
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      raw.Time([&] { status = raw_db.Append(next_row + r * rows, rows); });
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    next_row += requests * rows;
  }
  const int64_t expected = next_row;
  auto ours = CountRows(model->manager());
  auto theirs = raw_db.CountRows();
  if (!ours.ok() || !theirs.ok() || *ours != expected || *theirs != expected) {
    state.SkipWithError("row counts differ from the rows appended");
    return;
  }
  ReportAgainstBaseline(state, "rows", static_cast<double>(expected), teatree, raw);
  state.counters["with_decode_ratio"] = raw.seconds() / (teatree.seconds() + decode.seconds());
  const double applies = static_cast<double>(requests * state.iterations());
  state.counters["ms/apply"] = 1e3 * teatree.seconds() / applies;
  state.counters["fsync_ms"] = FsyncMilliseconds(model->dir());
  OrDie(model->WaitIdle());
}
BENCHMARK_CAPTURE(BM_Append, json, Payload::kJson)
    ->Arg(1)
    ->Arg(100)
    ->Arg(10'000)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Append, ipc, Payload::kIpc)
    ->Arg(1)
    ->Arg(100)
    ->Arg(10'000)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

/// Where the time of one Apply goes, in ms per request of state.range(0) rows: the engine
/// alone (a DuckEngine of its own, no manager, no publisher: `engine_ms`), the checkpoint the
/// publisher takes under the writer lock after such a commit (`checkpoint_ms`), Apply with
/// the publisher idle when it starts (`idle_apply_ms`: engine plus the catalog updates), Apply
/// back to back with the publisher running (`apply_ms`, as in BM_Append) and the raw
/// appender (`raw_ms`). `ratio` is raw_ms / apply_ms, BM_Append's ratio.
void BM_ApplyPhases(benchmark::State& state, Payload payload) {
  const int64_t rows = state.range(0);
  const int64_t requests = rows >= 10'000 ? 20 : 40;
  auto model = BenchModel::Make("teatree-bench-phases-", {.archive_url = "none"});
  auto engine = OrDie(DuckEngine::Open({.model_dir = model->dir() / "engine", .model = kModel}));
  OrDie(CheckApplied(engine->ApplyBatch({OrDie(DecodeRequest(kCreateTable))}), 0));
  RawAppender raw_db(model->dir() / "raw.duckdb");
  Stopwatch engine_time, checkpoint_time, idle_apply_time, apply_time, raw_time;
  int64_t next_row = 0;
  auto next = [&](const char* prefix) {  // A batch of one request.
    std::vector<Request> batch;
    batch.push_back(AppendRequest(prefix + std::to_string(next_row), next_row, rows, payload));
    next_row += rows;
    return batch;
  };
  for (auto _ : state) {
    Status status;
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      const std::vector<Request> request = next("e");
      Result<BatchResult> result;
      engine_time.Time([&] { result = engine->ApplyBatch(request); });
      status = CheckApplied(result, rows);
      if (status.ok()) checkpoint_time.Time([&] { status = engine->PrepareSnapshot().status(); });
    }
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      const std::vector<Request> request = next("i");
      status = model->WaitIdle();
      Result<BatchResult> result;
      idle_apply_time.Time([&] { result = model->manager().Apply(request); });
      if (status.ok()) status = CheckApplied(result, rows);
    }
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      const std::vector<Request> request = next("a");
      Result<BatchResult> result;
      apply_time.Time([&] { result = model->manager().Apply(request); });
      status = CheckApplied(result, rows);
    }
    if (status.ok()) status = model->WaitIdle();
    for (int64_t r = 0; r < requests && status.ok(); ++r) {
      raw_time.Time([&] { status = raw_db.Append(next_row, rows); });
      next_row += rows;
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  const int64_t per_side = requests * state.iterations() * rows;
  auto engine_rows = CountRows(*engine);
  auto model_rows = CountRows(model->manager());
  auto raw_rows = raw_db.CountRows();
  if (!engine_rows.ok() || !model_rows.ok() || !raw_rows.ok() || *engine_rows != per_side ||
      *model_rows != 2 * per_side || *raw_rows != per_side) {
    state.SkipWithError("row counts differ from the rows appended");
    return;
  }
  const double n = static_cast<double>(requests * state.iterations());
  state.counters["engine_ms"] = 1e3 * engine_time.seconds() / n;
  state.counters["checkpoint_ms"] = 1e3 * checkpoint_time.seconds() / n;
  state.counters["idle_apply_ms"] = 1e3 * idle_apply_time.seconds() / n;
  state.counters["apply_ms"] = 1e3 * apply_time.seconds() / n;
  state.counters["raw_ms"] = 1e3 * raw_time.seconds() / n;
  state.counters["ratio"] = raw_time.seconds() / apply_time.seconds();
  state.counters["fsync_ms"] = FsyncMilliseconds(model->dir());
  OrDie(model->WaitIdle());
}
BENCHMARK_CAPTURE(BM_ApplyPhases, json, Payload::kJson)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplyPhases, ipc, Payload::kIpc)
    ->Arg(10'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

/// 1-row appends: one request per Apply versus `group` requests per Apply, the same manager
/// code in two models side by side. `requests/s` is the grouped rate, the baseline the
/// one-per-Apply rate.
void BM_GroupCommit(benchmark::State& state) {
  const int64_t group = state.range(0);
  constexpr int64_t kSingleRequests = 200;
  const int64_t grouped_requests = 8 * group;
  auto single = BenchModel::Make("teatree-bench-single-", {.archive_url = "none"});
  auto grouped = BenchModel::Make("teatree-bench-grouped-", {.archive_url = "none"});
  Stopwatch single_time, grouped_time;
  int64_t single_rows = 0, grouped_rows = 0;
  for (auto _ : state) {
    std::vector<std::vector<Request>> ones(kSingleRequests);
    for (int64_t r = 0; r < kSingleRequests; ++r) {
      ones[r].push_back(
          AppendRequest("s" + std::to_string(single_rows + r), single_rows + r, 1, Payload::kJson));
    }
    std::vector<std::vector<Request>> batches(grouped_requests / group);
    for (int64_t r = 0; r < grouped_requests; ++r) {
      batches[r / group].push_back(AppendRequest("g" + std::to_string(grouped_rows + r),
                                                 grouped_rows + r, 1, Payload::kJson));
    }
    Status status;
    for (const auto& one : ones) {
      Result<BatchResult> result;
      single_time.Time([&] { result = single->manager().Apply(one); });
      status = CheckApplied(result, 1);
      if (!status.ok()) break;
    }
    // Each side starts with its publisher idle, so neither pays for the other's backlog.
    if (status.ok()) status = single->WaitIdle();
    for (const auto& batch : batches) {
      if (!status.ok()) break;
      Result<BatchResult> result;
      grouped_time.Time([&] { result = grouped->manager().Apply(batch); });
      status = CheckApplied(result, 1);
    }
    if (status.ok()) status = grouped->WaitIdle();
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    single_rows += kSingleRequests;
    grouped_rows += grouped_requests;
  }
  auto single_count = CountRows(single->manager());
  auto grouped_count = CountRows(grouped->manager());
  if (!single_count.ok() || !grouped_count.ok() || *single_count != single_rows ||
      *grouped_count != grouped_rows) {
    state.SkipWithError("row counts differ from the rows appended");
    return;
  }
  ReportRates(state, "requests", static_cast<double>(grouped_rows), grouped_time.seconds(),
              "single", static_cast<double>(single_rows), single_time.seconds());
  state.counters["fsync_ms"] = FsyncMilliseconds(single->dir());
}
BENCHMARK(BM_GroupCommit)->Arg(256)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace teatree::bench
