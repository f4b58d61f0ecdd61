// Updating 1% of a 1,000,000-row table by key on both engines: the DuckDB engine (one UPDATE
// in a transaction; bytes: what its file and WAL grew by) and the Arrow engine (copy-on-write:
// files whose key statistics rule out the range are skipped, the one holding it is rewritten;
// bytes: the new data files). The table is appended in 10 batches of 100,000 rows in key
// order, so each Arrow file covers one key range. The Arrow engine runs twice: with hot copies
// of its files (the rewrite reads the copy; the new file's copy is written in the background,
// outside the timing, and its bytes are shown apart), and reading Parquet only.
#include <arrow/api.h>

#include "bench/bench_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/arrow/arrow_engine.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/request/codec.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kRows = 1'000'000;
constexpr int64_t kFiles = 10;

/// The files under `dir` and their sizes; only those ending in `extension` when given.
std::map<fs::path, int64_t> FilesUnder(const fs::path& dir, const std::string& extension = "") {
  std::map<fs::path, int64_t> files;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && (extension.empty() || entry.path().extension() == extension)) {
      files[entry.path()] = static_cast<int64_t>(entry.file_size(ec));
    }
  }
  return files;
}

int64_t BytesUnder(const fs::path& dir, const std::string& extension = "") {
  int64_t bytes = 0;
  for (const auto& [path, size] : FilesUnder(dir, extension)) bytes += size;
  return bytes;
}

/// The size of the files under `dir` ending in `extension` that are not in `before`.
int64_t NewBytes(const fs::path& dir, const std::string& extension,
                 const std::map<fs::path, int64_t>& before) {
  int64_t bytes = 0;
  for (const auto& [path, size] : FilesUnder(dir, extension)) {
    if (!before.contains(path)) bytes += size;
  }
  return bytes;
}

Request Decode(const nlohmann::json& json) { return OrDie(DecodeRequest(json.dump())); }

/// The table, in kFiles appends of kRows / kFiles rows each, applied to `engine`.
void Fill(Engine& engine) {
  OrDie(engine
            .ApplyBatch({Decode(nlohmann::json::parse(
                R"({"request_id":"c","model":"bench","op":"create_table","table":"t","schema":[
                  {"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},
                  {"name":"region","type":"VARCHAR"}],"primary_key":["id"]})"))})
            .status());
  for (int64_t f = 0; f < kFiles; ++f) {
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t i = f * (kRows / kFiles); i < (f + 1) * (kRows / kFiles); ++i) {
      rows.push_back({i, static_cast<double>(i % 997) * 0.5, i % 2 ? "eu" : "us"});
    }
    auto batch = OrDie(engine.ApplyBatch({Decode({{"request_id", "a" + std::to_string(f)},
                                                  {"model", "bench"},
                                                  {"op", "append"},
                                                  {"table", "t"},
                                                  {"rows", rows}})}));
    if (!batch.outcomes[0].applied()) OrDie(Status::Invalid(batch.outcomes[0].error));
  }
}

/// An update of amount for the keys [low, low + kRows / 100).
Request UpdateOnePercent(int iteration) {
  const int64_t low = (iteration * 137'000) % (kRows - kRows / 100);
  return Decode(nlohmann::json::parse(
      R"({"request_id":"u)" + std::to_string(iteration) +
      R"(","model":"bench","op":"update","table":"t",)"
      R"("set":{"amount":{"call":"multiply","args":[{"field":"amount"},{"literal":2}]}},)"
      R"("where":{"call":"and","args":[)"
      R"({"call":"greater_equal","args":[{"field":"id"},{"literal":)" +
      std::to_string(low) + R"(}]},{"call":"less","args":[{"field":"id"},{"literal":)" +
      std::to_string(low + kRows / 100) + "}]}]}}"));
}

void BM_UpdateOnePercentByKey(benchmark::State& state) {
  auto dir = OrDie(TempDir::Make("teatree-bench-update-"));
  const fs::path duck_dir = dir->path() / "duck", arrow_dir = dir->path() / "arrow",
                 parquet_dir = dir->path() / "parquet-only";
  auto duck = OrDie(DuckEngine::Open({.model_dir = duck_dir, .model = "bench"}));
  auto arrow_engine = OrDie(ArrowEngine::Open({.model_dir = arrow_dir, .model = "bench"}));
  auto parquet_only =
      OrDie(ArrowEngine::Open({.model_dir = parquet_dir, .model = "bench", .hot_bytes = 0}));
  Fill(*duck);
  Fill(*arrow_engine);
  Fill(*parquet_only);
  OrDie(duck->PrepareSnapshot().status());  // Checkpointed: the WAL starts empty.
  Stopwatch duck_watch, arrow_watch, parquet_watch;
  int64_t duck_bytes = 0, arrow_bytes = 0, hot_bytes = 0, updated = 0;
  int iteration = 0;
  for (auto _ : state) {
    const Request update = UpdateOnePercent(iteration++);
    const int64_t duck_before = BytesUnder(duck_dir);
    duck_watch.Time([&] { OrDie(duck->ApplyBatch({update}).status()); });
    duck_bytes += BytesUnder(duck_dir) - duck_before;
    arrow_engine->WaitForBackgroundWork();  // Every file has its hot copy.
    const auto parquet_before = FilesUnder(arrow_dir / "datasets", ".parquet");
    const auto hot_before = FilesUnder(arrow_dir / "datasets", ".arrow");
    BatchResult result;
    arrow_watch.Time([&] { result = OrDie(arrow_engine->ApplyBatch({update})); });
    // New files only: the old ones stay until garbage collection.
    arrow_bytes += NewBytes(arrow_dir / "datasets", ".parquet", parquet_before);
    arrow_engine->WaitForBackgroundWork();
    hot_bytes += NewBytes(arrow_dir / "datasets", ".arrow", hot_before);
    parquet_watch.Time([&] { OrDie(parquet_only->ApplyBatch({update}).status()); });
    updated += result.outcomes[0].rows;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["rows_updated"] = static_cast<double>(updated) / n;
  state.counters["duckdb_ms"] = duck_watch.seconds() * 1000 / n;
  state.counters["arrow_ms"] = arrow_watch.seconds() * 1000 / n;
  state.counters["arrow_parquet_only_ms"] = parquet_watch.seconds() * 1000 / n;
  state.counters["duckdb_MB_written"] = static_cast<double>(duck_bytes) / n / 1e6;
  state.counters["arrow_MB_written"] = static_cast<double>(arrow_bytes) / n / 1e6;
  state.counters["arrow_hot_copy_MB_written"] = static_cast<double>(hot_bytes) / n / 1e6;
  state.counters["table_MB_arrow"] =
      static_cast<double>(BytesUnder(arrow_dir / "datasets", ".parquet")) / 1e6;
}
BENCHMARK(BM_UpdateOnePercentByKey)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace teatree::bench
