// A large Parquet file loaded through Teatree, beside DuckDB reading the same file directly.
//   - Teatree: the client uploads the file into the model's staging area over Flight (DoPut
//     to a front server like `teatree serve`'s), submits an append that names it, and waits
//     for its outcome (the model's manager, running in a thread, applied it: committed and
//     readable live), then for its version file (published: pulls and replicas see it).
//   - Baseline: DuckDB in this process creates the same table (same primary key) in a new
//     database file and runs INSERT INTO … SELECT * FROM read_parquet(file) and CHECKPOINT;
//     and the same into a table without a primary key.
// The ratio is baseline / Teatree: 1.0 means staging costs nothing, 0.7 is the goal for the
// outcome. The file is made by DuckDB (--rows rows, about 47 bytes each as Parquet) unless
// --file names one with the same columns. The model is archived nowhere: the archive's cost
// per version is measured by archive_benchmark.
//
//   staging_benchmark [--rows 40000000] [--file big.parquet] [--engine duckdb|arrow]
#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "bench/bench_util.h"
#include "teatree/bus/model_registry.h"
#include "teatree/bus/nats_server.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_servers.h"
#include "teatree/request/codec.h"
#include "teatree/service/client.h"
#include "teatree/service/manager_service.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = std::chrono::minutes(30);

struct Flags {
  int64_t rows = 40'000'000;
  fs::path file;
  std::string engine = "duckdb";
};
Flags flags;

constexpr const char* kColumns =
    R"([{"name":"id","type":"BIGINT"},{"name":"ts","type":"TIMESTAMP"},)"
    R"({"name":"customer","type":"VARCHAR"},{"name":"amount","type":"DOUBLE"},)"
    R"({"name":"qty","type":"INTEGER"},{"name":"note","type":"VARCHAR"}])";
constexpr const char* kTableSql =
    "(id BIGINT{}, ts TIMESTAMP, customer VARCHAR, amount DOUBLE, qty INTEGER, note VARCHAR)";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Writes `rows` generated orders as Parquet to `path` with DuckDB.
Status MakeParquet(const fs::path& path, int64_t rows) {
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  return connection->Execute(
      "COPY (SELECT i AS id, TIMESTAMP '2026-01-01' + INTERVAL (i % 31536000) SECOND AS ts, "
      "'customer-' || (i % 100000)::VARCHAR AS customer, (i % 10000) / 100.0 AS amount, "
      "(i % 50)::INTEGER AS qty, md5(i::VARCHAR) AS note FROM range(" +
      std::to_string(rows) + ") t(i)) TO '" + path.string() +
      "' (FORMAT parquet, ROW_GROUP_SIZE 1000000)");
}

/// Seconds DuckDB takes to load `file` into a new database file under `dir`.
Result<double> DuckDbDirect(const fs::path& dir, const fs::path& file, bool primary_key) {
  const fs::path db_path = dir / (primary_key ? "direct-pk.duckdb" : "direct.duckdb");
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = db_path.string()}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  std::string table = kTableSql;
  table.replace(table.find("{}"), 2, primary_key ? " PRIMARY KEY" : "");
  ARROW_RETURN_NOT_OK(connection->Execute("CREATE TABLE t " + table));
  const auto start = Clock::now();
  ARROW_RETURN_NOT_OK(
      connection->Execute("INSERT INTO t SELECT * FROM read_parquet('" + file.string() + "')"));
  ARROW_RETURN_NOT_OK(connection->Execute("CHECKPOINT"));
  const double seconds = SecondsSince(start);
  connection.reset();
  db.reset();
  std::error_code ignored;
  fs::remove(db_path, ignored);
  fs::remove(db_path.string() + ".wal", ignored);
  return seconds;
}

struct Staged {
  double upload_s = 0, applied_s = 0, published_s = 0, read_ms = 0, execute_ms = 0;
  int64_t rows = 0;
};

/// The file through Teatree: upload, append, outcome, published version.
Result<Staged> ThroughTeatree(const fs::path& dir, const fs::path& file) {
  ARROW_ASSIGN_OR_RAISE(auto server,
                        NatsServer::Start({.store_dir = dir / "nats", .sync_always = true}));
  const fs::path data = dir / "data";
  ManagerServiceOptions options{
      .manager = {.data_dir = data, .model = "bulk", .archive_url = "none"},
      .nats = {.url = server->url()}};
  std::atomic<bool> stop{false};
  Status manager_status;
  std::thread manager([&] { manager_status = RunManagerService(options, stop); });
  auto stop_manager = [&] {
    stop = true;
    if (manager.joinable()) manager.join();
  };
  Result<Staged> result = [&]() -> Result<Staged> {
    ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect({.url = server->url()}));
    ARROW_ASSIGN_OR_RAISE(auto registry, ModelRegistry::Open(*nats));
    DataDirReplicas replicas({.data_dir = data}, nullptr);
    ARROW_ASSIGN_OR_RAISE(
        auto front,
        ReadServers::Start({.http_port = -1}, replicas,
                           {.nats = nats.get(),
                            .registry = registry.get(),
                            .uploads = {.data_dir = data, .registry = registry.get()}}));
    ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect({.nats = {.url = server->url()},
                                                        .read = {.url = front->flight_url()}}));
    ARROW_ASSIGN_OR_RAISE(
        auto create,
        DecodeRequest(R"({"request_id":"create","model":"bulk","op":"create_table","table":"t",)"
                      R"("engine":")" +
                      flags.engine + R"(","primary_key":["id"],"schema":)" + kColumns + "}"));
    ARROW_ASSIGN_OR_RAISE(auto created, client->SubmitAndWait(create, kTimeout));
    if (!created.applied()) return Status::Invalid("create_table: ", created.note.dump());
    Staged staged;
    auto start = Clock::now();
    std::ifstream in(file, std::ios::binary);
    ARROW_ASSIGN_OR_RAISE(auto upload,
                          client->Upload("bulk", in, static_cast<int64_t>(fs::file_size(file))));
    staged.upload_s = SecondsSince(start);
    start = Clock::now();
    ARROW_ASSIGN_OR_RAISE(
        auto append,
        DecodeRequest(R"({"request_id":"load","model":"bulk","op":"append","table":"t",)"
                      R"("source":{"format":"parquet","staged":")" +
                      upload.id + R"("}})"));
    ARROW_ASSIGN_OR_RAISE(auto outcome, client->SubmitAndWait(append, kTimeout));
    if (!outcome.applied()) return Status::Invalid("the append: ", outcome.note.dump());
    staged.applied_s = SecondsSince(start);
    staged.rows = outcome.note.value("rows", int64_t{0});
    for (const auto& step : outcome.note.value("steps", nlohmann::json::array())) {
      (step.value("name", "") == "read source" ? staged.read_ms : staged.execute_ms) +=
          step.value("ms", 0.0);
    }
    start = Clock::now();
    ARROW_RETURN_NOT_OK(
        client
            ->WaitPublished("bulk", outcome.note.value("version", int64_t{0}),
                            std::chrono::duration_cast<std::chrono::milliseconds>(kTimeout))
            .status());
    staged.published_s = SecondsSince(start);
    return staged;
  }();
  stop_manager();
  ARROW_RETURN_NOT_OK(manager_status);
  return result;
}

void BM_StagedParquetIngest(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  auto dir = OrDie(TempDir::Make("teatree-bench-staging-"));
  fs::path file = flags.file;
  if (file.empty()) {
    file = dir->path() / "orders.parquet";
    std::fprintf(stderr, "making %lld rows of Parquet...\n", static_cast<long long>(flags.rows));
    OrDie(MakeParquet(file, flags.rows));
  }
  const double mb = static_cast<double>(fs::file_size(file)) / (1 << 20);
  for (auto _ : state) {
    std::fprintf(stderr, "DuckDB loading %.0f MB directly...\n", mb);
    const double direct_pk = OrDie(DuckDbDirect(dir->path(), file, true));
    const double direct = OrDie(DuckDbDirect(dir->path(), file, false));
    std::fprintf(stderr, "Teatree: upload, append, publish...\n");
    const Staged staged = OrDie(ThroughTeatree(dir->path(), file));
    const double applied = staged.upload_s + staged.applied_s;
    state.counters["file_mb"] = mb;
    state.counters["rows"] = static_cast<double>(staged.rows);
    state.counters["upload_s"] = staged.upload_s;
    state.counters["apply_s"] = staged.applied_s;
    state.counters["read_source_s"] = staged.read_ms / 1000;
    state.counters["execute_s"] = staged.execute_ms / 1000;
    state.counters["publish_s"] = staged.published_s;
    state.counters["teatree_applied_s"] = applied;
    state.counters["duckdb_pk_s"] = direct_pk;
    state.counters["duckdb_nokey_s"] = direct;
    state.counters["upload_mb_per_s"] = mb / staged.upload_s;
    state.counters["ratio_applied"] = direct_pk / applied;
    state.counters["ratio_published"] = direct_pk / (applied + staged.published_s);
  }
}
BENCHMARK(BM_StagedParquetIngest)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace teatree::bench

int main(int argc, char** argv) {
  auto& flags = teatree::bench::flags;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const bool value = i + 1 < argc;
    if (std::strcmp(argv[i], "--rows") == 0 && value) {
      flags.rows = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--file") == 0 && value) {
      flags.file = argv[++i];
    } else if (std::strcmp(argv[i], "--engine") == 0 && value) {
      flags.engine = argv[++i];
    } else {
      argv[kept++] = argv[i];
    }
  }
  return teatree::bench::RunBenchmarks(kept, argv);
}
