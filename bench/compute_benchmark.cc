// Compute on 10,000,000 rows: the native built-ins (Acero) beside the same question in DuckDB
// SQL, measured in the same run on the same data.
//  - rollup: GROUP BY ROLLUP (region, day) with count, sum, avg, min and max of amount.
//  - join: every fact row enriched with two columns of a 100,000-row customer table (left
//    join on the customer key).
//  - point query: one row of the 10M by id, in SQL (DuckDB's filter cannot reach the Arrow C
//    data interface scan, which reads every row of the columns asked for) and with the native
//    `scan`, which pushes the predicate into the dataset scan.
// Teatree's figure is `invoke` of the native function on an Arrow-engine model (reading the
// hot copies of the model's files, memory-mapped Arrow IPC); the baseline is `query` of the SQL
// on a DuckDB-engine model. Also shown: the native function on an Arrow-engine model without
// hot copies (reading Parquet) and on the DuckDB engine; the SQL on both Arrow-engine models
// (DuckDB scanning their files through the Arrow C data interface) beside plain DuckDB reading
// the same Parquet files with read_parquet. Every figure includes materialising the result as
// Arrow.
#include <arrow/api.h>

#include <cstdio>

#include "bench/bench_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/arrow/arrow_engine.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/request/codec.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kFacts = 10'000'000;
constexpr int64_t kCustomers = 100'000;

Request Decode(const nlohmann::json& json) { return OrDie(DecodeRequest(json.dump())); }

/// The same rows on each engine (written once as Parquet by DuckDB and appended from there),
/// and on the Arrow engine once more without hot copies.
struct Models {
  std::unique_ptr<TempDir> dir = OrDie(TempDir::Make("teatree-bench-compute-"));
  std::unique_ptr<DuckEngine> duck;
  std::unique_ptr<ArrowEngine> arrow;
  std::unique_ptr<ArrowEngine> parquet_only;
  // Plain DuckDB with views over read_parquet of parquet_only's files.
  std::shared_ptr<DuckDatabase> raw = OrDie(DuckDatabase::Open({}));
  std::unique_ptr<DuckConnection> raw_connection = OrDie(raw->Connect());

  Models() {
    const fs::path input = dir->path() / "input";
    fs::create_directories(input);
    {
      auto db = OrDie(DuckDatabase::Open({}));
      auto connection = OrDie(db->Connect());
      OrDie(connection->Execute(
          "COPY (SELECT i AS id, (i * 7919) % " + std::to_string(kCustomers) +
          " AS customer, 'region-' || (i % 50) AS region, DATE '2026-01-01' + (i % 365)::INTEGER "
          "AS day, ((i * 31) % 10007) / 4.0 AS amount FROM range(" +
          std::to_string(kFacts) + ") t(i)) TO '" + (input / "facts.parquet").string() +
          "' (FORMAT parquet)"));
      OrDie(connection->Execute(
          "COPY (SELECT i AS customer, 'segment-' || (i % 12) AS segment, (i % 1000) / 10.0 AS "
          "score FROM range(" +
          std::to_string(kCustomers) + ") t(i)) TO '" + (input / "customers.parquet").string() +
          "' (FORMAT parquet)"));
    }
    const std::vector<Request> load = {
        Decode(nlohmann::json::parse(
            R"({"request_id":"c1","model":"bench","op":"create_table","table":"facts","schema":[
              {"name":"id","type":"BIGINT"},{"name":"customer","type":"BIGINT"},
              {"name":"region","type":"VARCHAR"},{"name":"day","type":"DATE"},
              {"name":"amount","type":"DOUBLE"}]})")),
        Decode(nlohmann::json::parse(
            R"({"request_id":"c2","model":"bench","op":"create_table","table":"customers","schema":[
              {"name":"customer","type":"BIGINT"},{"name":"segment","type":"VARCHAR"},
              {"name":"score","type":"DOUBLE"}],"primary_key":["customer"]})")),
        Decode(nlohmann::json::parse(
            R"({"request_id":"a1","model":"bench","op":"append","table":"facts",
                "source":{"format":"parquet","path":"facts.parquet"}})")),
        Decode(nlohmann::json::parse(
            R"({"request_id":"a2","model":"bench","op":"append","table":"customers",
                "source":{"format":"parquet","path":"customers.parquet"}})"))};
    duck = OrDie(DuckEngine::Open(
        {.model_dir = dir->path() / "duck", .model = "bench", .input_dirs = {input}}));
    arrow = OrDie(ArrowEngine::Open(
        {.model_dir = dir->path() / "arrow", .model = "bench", .input_dirs = {input}}));
    parquet_only = OrDie(ArrowEngine::Open({.model_dir = dir->path() / "parquet-only",
                                            .model = "bench",
                                            .input_dirs = {input},
                                            .hot_bytes = 0}));
    // The engine with hot copies last: its copies are written after its load, timed below.
    for (Engine* engine :
         {static_cast<Engine*>(duck.get()), static_cast<Engine*>(parquet_only.get()),
          static_cast<Engine*>(arrow.get())}) {
      auto result = OrDie(engine->ApplyBatch(load));
      for (const auto& outcome : result.outcomes) {
        if (!outcome.applied()) OrDie(Status::Invalid(outcome.error));
      }
    }
    for (const char* table : {"facts", "customers"}) {
      OrDie(raw_connection->Execute(
          std::string("CREATE VIEW ") + table + " AS SELECT * FROM read_parquet('" +
          (dir->path() / "parquet-only" / "datasets" / table / "*.parquet").string() + "')"));
    }
    Stopwatch copies;
    copies.Time([&] { arrow->WaitForBackgroundWork(); });
    std::fprintf(stderr,
                 "hot copies written in %.0f ms after the load: %s of Parquet, %s of copies\n",
                 copies.seconds() * 1000, SizeOf(dir->path() / "arrow", ".parquet").c_str(),
                 SizeOf(dir->path() / "arrow", ".arrow").c_str());
  }

  /// The size of the files ending in `extension` under `dir`, in MB.
  static std::string SizeOf(const fs::path& dir, const std::string& extension) {
    uintmax_t bytes = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.path().extension() == extension) bytes += entry.file_size();
    }
    return std::to_string(bytes >> 20) + " MB";
  }
};

Models& Shared() {
  static Models models;
  return models;
}

/// Applies one request (a fresh id each time, so it really runs) and returns its outcome.
RequestOutcome Run(Engine& engine, nlohmann::json request, int iteration) {
  request["request_id"] = request.value("request_id", "r") + std::to_string(iteration);
  request["model"] = "bench";
  auto result = OrDie(engine.ApplyBatch({Decode(request)}));
  const RequestOutcome& outcome = result.outcomes[0];
  if (!outcome.applied()) OrDie(Status::Invalid(outcome.error));
  return outcome;
}

/// The same SQL timed as a `query` on each model and with plain DuckDB's read_parquet.
struct SqlTimes {
  Stopwatch duck, arrow, parquet_only, read_parquet;

  /// Runs `sql` once everywhere; returns its row count (the same everywhere, or the run dies).
  int64_t Run(Models& models, const std::string& sql) {
    static int queries = 0;  // Every query of the run gets an id of its own.
    const int id = ++queries;
    const nlohmann::json query = {{"request_id", "sql"}, {"op", "query"}, {"sql", sql}};
    int64_t rows = 0;
    duck.Time([&] { rows = bench::Run(*models.duck, query, id).rows; });
    auto same = [&](int64_t other) {
      if (other != rows) OrDie(Status::Invalid("the models disagree on the rows of ", sql));
    };
    arrow.Time([&] { same(bench::Run(*models.arrow, query, id).rows); });
    parquet_only.Time([&] { same(bench::Run(*models.parquet_only, query, id).rows); });
    read_parquet.Time([&] { same(OrDie(models.raw_connection->QueryTable(sql))->num_rows()); });
    return rows;
  }
  void Report(benchmark::State& state) const {
    const double n = static_cast<double>(state.iterations());
    state.counters["duckdb_sql_ms"] = duck.seconds() * 1000 / n;
    state.counters["sql_arrow_engine_ms"] = arrow.seconds() * 1000 / n;
    state.counters["sql_parquet_only_ms"] = parquet_only.seconds() * 1000 / n;
    state.counters["read_parquet_ms"] = read_parquet.seconds() * 1000 / n;
    state.counters["sql_arrow_over_read_parquet"] = arrow.seconds() / read_parquet.seconds();
  }
};

/// Times `native` (an invoke) on every model and `sql` (a query) as SqlTimes does; prints the
/// native function's steps on the Arrow engine once.
void Compare(benchmark::State& state, const nlohmann::json& native, const std::string& sql) {
  Models& models = Shared();
  Stopwatch acero_arrow, acero_parquet, acero_duck;
  SqlTimes sql_times;
  int64_t rows = 0;
  int iteration = 0;
  std::vector<Step> steps;
  for (auto _ : state) {
    ++iteration;
    acero_arrow.Time([&] {
      auto outcome = Run(*models.arrow, native, iteration);
      rows = outcome.rows;
      steps = outcome.steps;
    });
    acero_parquet.Time([&] { Run(*models.parquet_only, native, iteration); });
    acero_duck.Time([&] { Run(*models.duck, native, iteration); });
    if (sql_times.Run(models, sql) != rows) {
      OrDie(Status::Invalid("the SQL and the native function disagree on the row count"));
    }
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["result_rows"] = static_cast<double>(rows);
  state.counters["acero_arrow_engine_ms"] = acero_arrow.seconds() * 1000 / n;
  state.counters["acero_parquet_only_ms"] = acero_parquet.seconds() * 1000 / n;
  state.counters["acero_duckdb_engine_ms"] = acero_duck.seconds() * 1000 / n;
  sql_times.Report(state);
  state.counters["acero_over_duckdb"] = acero_arrow.seconds() / sql_times.duck.seconds();
  state.counters["hot_over_parquet"] = acero_arrow.seconds() / acero_parquet.seconds();
  std::string breakdown;
  for (const auto& step : steps) {
    breakdown += "  " + step.name + " " + std::to_string(static_cast<int>(step.ms)) + " ms, " +
                 std::to_string(step.rows) + " rows\n";
  }
  std::fprintf(stderr, "%s on the Arrow engine, steps of the last run:\n%s",
               native.value("function", "").c_str(), breakdown.c_str());
}

void BM_RollupTenMillionRows(benchmark::State& state) {
  Compare(state,
          {{"request_id", "rollup"},
           {"op", "invoke"},
           {"function", "rollup"},
           {"args", {{"table", "facts"}, {"keys", "region, day"}, {"value", "amount"}}}},
          "SELECT region, day, count(*) AS rows, sum(amount) AS sum, avg(amount) AS mean, "
          "min(amount) AS min, max(amount) AS max FROM facts GROUP BY ROLLUP (region, day)");
}
BENCHMARK(BM_RollupTenMillionRows)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_JoinTenMillionRows(benchmark::State& state) {
  Compare(state,
          {{"request_id", "enrich"},
           {"op", "invoke"},
           {"function", "enrich"},
           {"args", {{"table", "facts"}, {"lookup", "customers"}, {"on", "customer"}}}},
          "SELECT f.*, c.segment, c.score FROM facts f LEFT JOIN customers c USING (customer)");
}
BENCHMARK(BM_JoinTenMillionRows)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

/// One row of the 10M: in SQL, where DuckDB's filter cannot reach the Arrow C data interface
/// scan, and with the native `scan`, which pushes it into the dataset scan.
void BM_PointQueryTenMillionRows(benchmark::State& state) {
  Models& models = Shared();
  const nlohmann::json scan = {
      {"request_id", "scan"},
      {"op", "invoke"},
      {"function", "scan"},
      {"args",
       {{"table", "facts"},
        {"where", {{"call", "equal"}, {"args", {{{"field", "id"}}, {{"literal", 4242424}}}}}}}}};
  SqlTimes sql_times;
  Stopwatch scan_arrow, scan_parquet;
  int64_t rows = 0;
  int iteration = 0;
  for (auto _ : state) {
    ++iteration;
    rows = sql_times.Run(models, "SELECT * FROM facts WHERE id = 4242424");
    scan_arrow.Time([&] {
      if (Run(*models.arrow, scan, iteration).rows != rows) {
        OrDie(Status::Invalid("scan and the SQL disagree on the row count"));
      }
    });
    scan_parquet.Time([&] { Run(*models.parquet_only, scan, iteration); });
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["result_rows"] = static_cast<double>(rows);
  sql_times.Report(state);
  state.counters["scan_arrow_engine_ms"] = scan_arrow.seconds() * 1000 / n;
  state.counters["scan_parquet_only_ms"] = scan_parquet.seconds() * 1000 / n;
  state.counters["scan_over_read_parquet"] =
      scan_arrow.seconds() / sql_times.read_parquet.seconds();
}
BENCHMARK(BM_PointQueryTenMillionRows)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace teatree::bench
