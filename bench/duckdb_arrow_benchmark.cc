// DuckDB query results leaving as Arrow record batches (DuckConnection::Query) versus the
// raw C API fetching the same chunks without converting them: the cost of the bridge every
// read path builds on.
#include <arrow/record_batch.h>
#include <duckdb.h>

#include "bench/bench_util.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree::bench {
namespace {

constexpr const char* kQuery =
    "SELECT id, id * 0.5 AS amount, id % 97 AS bucket, 'r' || (id % 7) AS region FROM t";

void RawFetch(const std::string& path, int64_t* rows) {
  duckdb_database db;
  duckdb_connection connection;
  duckdb_result result;
  duckdb_open(path.c_str(), &db);
  duckdb_connect(db, &connection);
  duckdb_query(connection, kQuery, &result);
  while (duckdb_data_chunk chunk = duckdb_fetch_chunk(result)) {
    *rows += static_cast<int64_t>(duckdb_data_chunk_get_size(chunk));
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_destroy_result(&result);
  duckdb_disconnect(&connection);
  duckdb_close(&db);
}

void BM_QueryToArrow(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::string path = "/tmp/teatree_bench_duckdb_arrow.duckdb";
  std::remove(path.c_str());
  {
    auto db = DuckDatabase::Open({.path = path}).ValueOrDie();
    OrDie(db->Connect().ValueOrDie()->Execute("CREATE TABLE t AS SELECT range AS id FROM range(" +
                                              std::to_string(n) + ")"));
  }
  Stopwatch teatree, raw;
  for (auto _ : state) {
    int64_t raw_rows = 0, arrow_rows = 0;
    raw.Time([&] { RawFetch(path, &raw_rows); });
    teatree.Time([&] {
      auto db = DuckDatabase::Open({.path = path}).ValueOrDie();
      auto reader = db->Connect().ValueOrDie()->Query(kQuery).ValueOrDie();
      std::shared_ptr<arrow::RecordBatch> batch;
      while (reader->ReadNext(&batch).ok() && batch) arrow_rows += batch->num_rows();
    });
    if (raw_rows != n || arrow_rows != n) state.SkipWithError("row counts differ");
  }
  ReportAgainstBaseline(state, "rows", static_cast<double>(n * state.iterations()), teatree, raw);
  std::remove(path.c_str());
}
BENCHMARK(BM_QueryToArrow)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace teatree::bench
