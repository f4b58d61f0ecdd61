// The read path's figures, each beside a raw baseline from the same run, on one published
// version file of a 10-million-row, 4-column table:
// - DoGet throughput over Arrow Flight on loopback versus the same query converted to Arrow
//   in-process (DuckDB's C API and its Arrow conversion, no server).
// - Point-query latency (one row by key) over Flight versus in-process, beside the floor of
//   gRPC on this machine (a unary ListActions round trip) and a DoGet of SELECT 1.
// - One result over HTTP as JSON, over HTTP as Arrow IPC, and over Flight.
#include <arrow/api.h>
#include <arrow/flight/api.h>
#include <arrow/util/byte_size.h>
#include <httplib.h>

#include <random>

#include "bench/bench_util.h"
#include "bench/published_model.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/functions/function_registry.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/http_read_server.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_client.h"
#include "teatree/request/codec.h"

namespace teatree::bench {
namespace {

namespace flight = arrow::flight;
constexpr int64_t kRows = 10'000'000;
constexpr const char* kScan = "SELECT id, amount, region, weight FROM big";

/// One model "bench" whose version 2 holds table big (kRows rows: BIGINT, DOUBLE, INTEGER,
/// BIGINT), served by a replica over Flight and HTTP; a raw DuckDB connection on the same
/// version file. Built once for all benchmarks.
struct Fixture {
  std::unique_ptr<TempDir> dir;  // Declared first: removed after everything using it.
  std::shared_ptr<DuckDatabase> raw_db;
  std::unique_ptr<DuckConnection> raw;
  std::unique_ptr<SingleModel> models;
  std::unique_ptr<FlightReadServer> flight_server;
  std::unique_ptr<HttpReadServer> http_server;
  std::unique_ptr<flight::FlightClient> flight_client;
  int http_port = 0;

  static Fixture& Get() {
    if (instance == nullptr) instance = Make();
    return *instance;
  }
  /// Stops the servers and removes the files; before Arrow shuts down.
  static void Destroy() {
    delete instance;
    instance = nullptr;
  }
  static inline Fixture* instance = nullptr;

  static Fixture* Make() {
    auto* f = new Fixture();
    f->dir = OrDie(TempDir::Make("teatree-bench-read-"));
    const auto file = PublishComputedTable(
        f->dir->path(), "bench", "big",
        "SELECT range AS id, (range * 1.5)::DOUBLE AS amount, (range % 1000)::INTEGER AS "
        "region, range * 7 AS weight FROM range(" +
            std::to_string(kRows) + ")");
    f->raw_db = OrDie(DuckDatabase::Open({.path = file.string(), .read_only = true}));
    f->raw = OrDie(f->raw_db->Connect());
    f->models = std::make_unique<SingleModel>(
        OrDie(ModelReads::Replica({.data_dir = f->dir->path(), .model = "bench"})));
    f->flight_server = OrDie(FlightReadServer::Start({}, *f->models));
    f->flight_client = OrDie(
        flight::FlightClient::Connect(OrDie(flight::Location::Parse(f->flight_server->url()))));
    f->http_server = OrDie(HttpReadServer::Start({}, *f->models));
    const std::string url = f->http_server->url();
    f->http_port = std::stoi(url.substr(url.rfind(':') + 1));
    return f;
  }
};

std::string Ticket(const std::string& sql) {
  return ReadTicket{.model = "bench", .sql = sql}.ToJson();
}

/// What a read delivered: rows, and bytes of Arrow data as DuckDB produced them.
struct Received {
  int64_t rows = 0;
  int64_t bytes = 0;
  void Add(const arrow::RecordBatch& batch) {
    rows += batch.num_rows();
    for (const auto& column : batch.columns()) bytes += arrow::util::TotalBufferSize(*column);
  }
};

/// Reads `sql` in-process: raw DuckDB to Arrow, no server.
Received InProcess(const std::string& sql) {
  auto reader = OrDie(Fixture::Get().raw->Stream(sql));
  Received received;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    OrDie(reader->ReadNext(&batch));
    if (!batch) return received;
    received.Add(*batch);
  }
}

/// Reads `sql` through Teatree's reader (checks, limits, version) in-process, no network.
Received ThroughReader(const std::string& sql) {
  auto reader = OrDie(Fixture::Get().models->reads().At(std::nullopt));
  auto read = OrDie(reader->Read({.sql = sql}));
  Received received;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    OrDie(read.reader->ReadNext(&batch));
    if (!batch) return received;
    received.Add(*batch);
  }
}

/// Reads `sql` with one Flight DoGet.
Received OverFlight(const std::string& sql) {
  auto stream = OrDie(Fixture::Get().flight_client->DoGet(flight::Ticket{Ticket(sql)}));
  Received received;
  while (true) {
    auto chunk = OrDie(stream->Next());
    if (!chunk.data) return received;
    received.Add(*chunk.data);
  }
}

void BM_DoGetVersusInProcess(benchmark::State& state) {
  Fixture::Get();
  Stopwatch flight_watch, raw_watch, reader_watch;
  double gigabytes = 0;
  for (auto _ : state) {
    Received raw, over_flight;
    raw_watch.Time([&] { raw = InProcess(kScan); });
    reader_watch.Time([&] { ThroughReader(kScan); });
    flight_watch.Time([&] { over_flight = OverFlight(kScan); });
    if (raw.rows != over_flight.rows) {
      state.SkipWithError("Flight and in-process results differ");
      return;
    }
    gigabytes += static_cast<double>(raw.bytes) / 1e9;
  }
  ReportAgainstBaseline(state, "GB", gigabytes, flight_watch, raw_watch);
  state.counters["reader_GB/s"] = gigabytes / reader_watch.seconds();
  state.counters["rows"] = static_cast<double>(kRows);
}
BENCHMARK(BM_DoGetVersusInProcess)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

double Percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  return samples[static_cast<size_t>(p * static_cast<double>(samples.size() - 1))];
}

void BM_PointQueryLatency(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  auto client = OrDie(ReadClient::Connect({.url = f.flight_server->url()}));
  std::mt19937_64 random(42);
  std::vector<double> raw_ms, reader_ms, flight_ms, info_and_get_ms, select1_ms, actions_ms;
  auto reader = OrDie(f.models->reads().At(std::nullopt));
  auto time_ms = [](auto&& body) {
    const auto start = std::chrono::steady_clock::now();
    body();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) {
      const std::string sql = "SELECT * FROM big WHERE id = " + std::to_string(random() % kRows);
      raw_ms.push_back(time_ms([&] { OrDie(f.raw->QueryTable(sql).status()); }));
      reader_ms.push_back(time_ms([&] {
        auto read = OrDie(reader->Read({.sql = sql}));
        OrDie(read.reader->ToTable().status());
      }));
      flight_ms.push_back(time_ms([&] { OverFlight(sql); }));
      select1_ms.push_back(time_ms([&] { OverFlight("SELECT 1"); }));
      actions_ms.push_back(time_ms([&] { OrDie(f.flight_client->ListActions().status()); }));
      info_and_get_ms.push_back(
          time_ms([&] { OrDie(client->Query({.model = "bench", .sql = sql}).status()); }));
    }
  }
  state.counters["raw_p50_ms"] = Percentile(raw_ms, 0.5);
  state.counters["raw_p99_ms"] = Percentile(raw_ms, 0.99);
  state.counters["reader_p50_ms"] = Percentile(reader_ms, 0.5);
  state.counters["doget_p50_ms"] = Percentile(flight_ms, 0.5);
  state.counters["doget_p99_ms"] = Percentile(flight_ms, 0.99);
  state.counters["info+doget_p50_ms"] = Percentile(info_and_get_ms, 0.5);
  state.counters["doget_select_1_p50_ms"] = Percentile(select1_ms, 0.5);
  state.counters["grpc_unary_p50_ms"] = Percentile(actions_ms, 0.5);
  state.counters["added_p50_ms"] = Percentile(flight_ms, 0.5) - Percentile(raw_ms, 0.5);
}
BENCHMARK(BM_PointQueryLatency)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

/// state.range(0) rows of the table as HTTP JSON, HTTP Arrow IPC and Flight.
void BM_ResultOverHttpJsonHttpArrowAndFlight(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  const std::string sql = std::string(kScan) + " LIMIT " + std::to_string(state.range(0));
  httplib::Client http("127.0.0.1", f.http_port);
  http.set_read_timeout(600);
  const std::string body = nlohmann::json{{"sql", sql}}.dump();
  Stopwatch json_watch, arrow_watch, flight_watch;
  double json_mb = 0, arrow_mb = 0;
  for (auto _ : state) {
    json_watch.Time([&] {
      auto response = http.Post("/v1/models/bench/query", body, "application/json");
      if (!response || response->status != 200) OrDie(Status::IOError("HTTP JSON query failed"));
      json_mb += static_cast<double>(response->body.size()) / 1e6;
    });
    arrow_watch.Time([&] {
      auto response =
          http.Post("/v1/models/bench/query", {{"Accept", "application/vnd.apache.arrow.stream"}},
                    body, "application/json");
      if (!response || response->status != 200) OrDie(Status::IOError("HTTP Arrow query failed"));
      arrow_mb += static_cast<double>(response->body.size()) / 1e6;
    });
    flight_watch.Time([&] { OverFlight(sql); });
  }
  const double rows = static_cast<double>(state.range(0) * state.iterations());
  state.counters["http_json_rows/s"] = rows / json_watch.seconds();
  state.counters["http_arrow_rows/s"] = rows / arrow_watch.seconds();
  state.counters["flight_rows/s"] = rows / flight_watch.seconds();
  state.counters["json_MB"] = json_mb / static_cast<double>(state.iterations());
  state.counters["arrow_MB"] = arrow_mb / static_cast<double>(state.iterations());
}
BENCHMARK(BM_ResultOverHttpJsonHttpArrowAndFlight)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace teatree::bench

int main(int argc, char** argv) {
  return teatree::bench::RunBenchmarks(argc, argv, [] { teatree::bench::Fixture::Destroy(); });
}
