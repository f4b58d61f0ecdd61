// Publishing versions: the time from a commit to its version being published, by model size,
// beside a plain copy of the same file (CopyFileFast + fsync); and the writer's throughput
// while the publisher keeps publishing a large model, beside the same loop on a tiny one.
//
//   publish_benchmark [--skip_1gb] [Google Benchmark flags]
//
// The 1 GB case runs by default (about a minute, most of it building the model);
// --skip_1gb leaves it out.
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/manager_bench_util.h"
#include "teatree/common/file_util.h"
#include "teatree/engine/duckdb/duckdb_engine.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Rows of `fill` data per MB of DuckDB file: about 25 bytes a row (random doubles and md5
/// strings compress poorly), measured on DuckDB 1.4.
constexpr int64_t kRowsPerMegabyte = 40'000;
/// Ids of rows appended by the benchmarks start here, above any filled row.
constexpr int64_t kFirstAppendedRow = int64_t{1} << 40;
constexpr auto kTimeout = std::chrono::minutes(5);

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A model whose file holds about `megabytes` MB of table data. Versions older than the one
/// before the newest go at once, so a 1 GB model keeps no more than two on disk.
std::unique_ptr<BenchModel> ModelOfSize(const std::string& prefix, int64_t megabytes,
                                        ManagerOptions options) {
  options.retention_grace = std::chrono::milliseconds(0);
  auto model = BenchModel::Make(prefix, options);
  if (megabytes > 0) OrDie(model->Fill(0, megabytes * kRowsPerMegabyte));
  return model;
}

/// Waits until `file` exists (the publisher's rename), polling.
Status WaitForFile(const fs::path& file) {
  const auto deadline = Clock::now() + kTimeout;
  while (!fs::exists(file)) {
    if (Clock::now() > deadline) return Status::IOError(file.string(), " did not appear");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return Status::OK();
}

/// The raw baseline: what publishing must do at least, a copy of the file made durable.
Status CopyAndSync(const fs::path& from, const fs::path& to) {
  ARROW_RETURN_NOT_OK(CopyFileFast(from, to).status());
  return SyncFile(to);
}

/// Phases of publishing besides the copy, timed on the baseline's copy of the same file.
struct CopyPhases {
  double sha256_seconds = 0;
  double verify_seconds = 0;

  Status Time(const fs::path& copy) {
    auto start = Clock::now();
    ARROW_RETURN_NOT_OK(Sha256File(copy).status());
    sha256_seconds += SecondsSince(start);
    start = Clock::now();
    ARROW_RETURN_NOT_OK(DuckEngine::ReadFileVersion(copy).status());
    verify_seconds += SecondsSince(start);
    return Status::OK();
  }
};

/// Commits a 1-row append to a model of state.range(0) MB and times until WaitPublished()
/// returns (the version file in place, archived when state.range(1) is 1, recorded in the
/// catalog), beside a copy of the same file with fsync. `MB/s` is file MB over that time,
/// `ratio` Teatree / copy. Also: when the version file appeared (`file_ms`; `file_ratio` is
/// the copy's time over it), and two steps publishing adds to the copy, timed on the copy:
/// its SHA-256 (`sha256_ms`) and opening it with DuckDB to check its version (`verify_ms`).
void BM_PublishVersusCopy(benchmark::State& state) {
  const int64_t megabytes = state.range(0);
  const bool archive = state.range(1) != 0;
  // Publication starts right after the commit, not at the end of the publisher's interval:
  // this measures what publishing costs, not how it is scheduled.
  auto model = ModelOfSize(
      "teatree-bench-publish-", megabytes,
      {.archive_url = archive ? "" : "none", .publish_interval = std::chrono::milliseconds(0)});
  const fs::path rw_file = model->rw_file();
  const fs::path copy = model->dir() / "copy.duckdb";
  Stopwatch published, copied;
  CopyPhases phases;
  double file_seconds = 0, megabytes_published = 0;
  int64_t next_row = kFirstAppendedRow;
  for (auto _ : state) {
    auto result = model->manager().Apply(
        {AppendRequest("p" + std::to_string(next_row), next_row, 1, Payload::kJson)});
    const auto committed = Clock::now();
    Status status = CheckApplied(result, 1);
    ++next_row;
    if (status.ok()) {
      status = WaitForFile(VersionFilePath(model->data_dir(), kModel, result->version));
      file_seconds += SecondsSince(committed);
    }
    if (status.ok()) {
      status = model->manager().WaitPublished(result->version, kTimeout);
      published.Add(SecondsSince(committed));
    }
    megabytes_published += static_cast<double>(fs::file_size(rw_file)) / 1e6;
    if (status.ok()) copied.Time([&] { status = CopyAndSync(rw_file, copy); });
    if (status.ok()) status = phases.Time(copy);
    std::error_code ignored;
    fs::remove(copy, ignored);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  auto rows = CountRows(model->manager());
  const int64_t expected = megabytes * kRowsPerMegabyte + (next_row - kFirstAppendedRow);
  if (!rows.ok() || *rows != expected) {
    state.SkipWithError("the model does not hold the rows written to it");
    return;
  }
  ReportAgainstBaseline(state, "MB", megabytes_published, published, copied);
  const double n = static_cast<double>(state.iterations());
  state.counters["file_MB"] = megabytes_published / n;
  state.counters["publish_ms"] = 1e3 * published.seconds() / n;
  state.counters["copy_ms"] = 1e3 * copied.seconds() / n;
  state.counters["file_ms"] = 1e3 * file_seconds / n;
  state.counters["file_ratio"] = copied.seconds() / file_seconds;
  state.counters["sha256_ms"] = 1e3 * phases.sha256_seconds / n;
  state.counters["verify_ms"] = 1e3 * phases.verify_seconds / n;
}

/// How one writer phase went.
struct WriterPhase {
  int64_t batches = 0;
  double seconds = 0;
  int64_t publications = 0;
};

/// Applies 1-request batches of `rows` rows to `model` for about `seconds`, back to back,
/// then waits for its publisher to finish (untimed). Publications are counted when they end,
/// including the one the phase left running.
Status RunWriter(BenchModel& model, int64_t rows, double seconds, int64_t* next_row,
                 WriterPhase* phase) {
  // Requests are built before the clock starts: enough for any plausible rate.
  const int64_t capacity = static_cast<int64_t>(seconds * 2000);
  std::vector<Request> requests;
  for (int64_t i = 0; i < capacity; ++i) {
    const int64_t first = *next_row + i * rows;
    requests.push_back(AppendRequest("w" + std::to_string(first), first, rows, Payload::kJson));
  }
  int64_t seen = model.manager().published_version();
  const auto start = Clock::now();
  int64_t done = 0;
  for (; done < capacity && SecondsSince(start) < seconds; ++done) {
    ARROW_RETURN_NOT_OK(CheckApplied(model.manager().Apply({requests[done]}), rows));
    const int64_t published = model.manager().published_version();
    if (published != seen) ++phase->publications;
    seen = published;
  }
  phase->seconds += SecondsSince(start);
  phase->batches += done;
  *next_row += done * rows;
  ARROW_RETURN_NOT_OK(model.WaitIdle());
  if (model.manager().published_version() != seen) ++phase->publications;
  return Status::OK();
}

/// Sustained 1-request append batches of state.range(0) rows per second while the publisher
/// keeps publishing a ~100 MB model (every batch makes a new version, so a publication starts
/// as soon as the previous one ends, or its interval has passed), versus the same loop on a
/// tiny model, whose publisher runs as often but has almost nothing to copy, checksum, scan
/// or fsync. The manager has no switch to stop publishing, so the tiny model is the nearest
/// to idle the same code gets. Both use the default publish_interval. Short phases alternate
/// (busy first on even iterations, idle first on odd ones) so that drift in the disk's fsync
/// latency reaches both sides; each phase starts with both publishers idle.
void BM_WriterWhilePublishing(benchmark::State& state) {
  const int64_t rows = state.range(0);
  constexpr int64_t kBusyMegabytes = 100;
  constexpr double kPhaseSeconds = 1.0;
  auto busy = ModelOfSize("teatree-bench-busy-", kBusyMegabytes, {.archive_url = "none"});
  auto idle = ModelOfSize("teatree-bench-idle-", 0, {.archive_url = "none"});
  WriterPhase while_publishing, while_idle;
  int64_t busy_next = kFirstAppendedRow, idle_next = kFirstAppendedRow;
  auto run_busy = [&] {
    return RunWriter(*busy, rows, kPhaseSeconds, &busy_next, &while_publishing);
  };
  auto run_idle = [&] { return RunWriter(*idle, rows, kPhaseSeconds, &idle_next, &while_idle); };
  int64_t round = 0;
  for (auto _ : state) {
    const bool busy_first = round++ % 2 == 0;
    Status status = busy_first ? run_busy() : run_idle();
    if (status.ok()) status = busy_first ? run_idle() : run_busy();
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  auto busy_rows = CountRows(busy->manager());
  auto idle_rows = CountRows(idle->manager());
  if (!busy_rows.ok() || !idle_rows.ok() ||
      *busy_rows != kBusyMegabytes * kRowsPerMegabyte + (busy_next - kFirstAppendedRow) ||
      *idle_rows != idle_next - kFirstAppendedRow) {
    state.SkipWithError("the models do not hold the rows written to them");
    return;
  }
  if (while_publishing.publications < state.iterations()) {
    state.SkipWithError("the publisher was not publishing during the busy phases");
    return;
  }
  ReportRates(state, "batches", static_cast<double>(while_publishing.batches),
              while_publishing.seconds, "idle", static_cast<double>(while_idle.batches),
              while_idle.seconds);
  const double phases = static_cast<double>(state.iterations());
  state.counters["publications/phase"] =
      static_cast<double>(while_publishing.publications) / phases;
  state.counters["idle_publications/phase"] = static_cast<double>(while_idle.publications) / phases;
  state.counters["fsync_ms"] = FsyncMilliseconds(idle->dir());
}

void RegisterPublish(int64_t megabytes, bool archive, int64_t iterations) {
  benchmark::RegisterBenchmark("BM_PublishVersusCopy", BM_PublishVersusCopy)
      ->ArgNames({"MB", "archive"})
      ->Args({megabytes, archive ? 1 : 0})
      ->Iterations(iterations)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

void RegisterBenchmarks(bool with_1gb) {
  RegisterPublish(10, false, 5);
  RegisterPublish(100, false, 3);
  RegisterPublish(100, true, 2);
  if (with_1gb) RegisterPublish(1000, false, 1);
  benchmark::RegisterBenchmark("BM_WriterWhilePublishing", BM_WriterWhilePublishing)
      ->ArgNames({"rows"})
      ->Arg(1)
      ->Arg(100)
      ->Iterations(6)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace
}  // namespace teatree::bench

int main(int argc, char** argv) {
  bool with_1gb = true;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--skip_1gb") == 0) {
      with_1gb = false;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  teatree::bench::RegisterBenchmarks(with_1gb);
  return teatree::bench::RunBenchmarks(argc, argv);
}
