// What one round of catalog updates costs per batch on each backend: the model row and the
// request log of a batch (what CatalogRecorder writes after a commit), on SQLite (the
// embedded default, synchronous=FULL) and on a private PostgreSQL 15 on loopback (fsync on,
// synchronous_commit on). Each backend is shown beside its own raw baseline: one single-row
// INSERT committed through the same client library, the least a durable write costs there.
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/control/control_store.h"
#include "teatree/control/pg_connection.h"
#include "teatree/control/postgres_server.h"
#include "teatree/control/sqlite_db.h"

namespace teatree::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kBatches = 200;

/// A batch's worth of request-log rows.
std::vector<RequestLogRecord> BatchLog(int batch, int requests) {
  std::vector<RequestLogRecord> rows;
  rows.reserve(requests);
  for (int r = 0; r < requests; ++r) {
    rows.push_back({.request_id = "b" + std::to_string(batch) + "-" + std::to_string(r),
                    .model = "bench",
                    .op = "append",
                    .status = "applied",
                    .version = batch,
                    .duration_ms = 0.5});
  }
  return rows;
}

/// kBatches rounds (UpsertModel, then LogRequests of `requests` rows) on the store at `url`.
Status TimeRounds(const std::string& url, int requests, Stopwatch& watch) {
  ARROW_ASSIGN_OR_RAISE(auto store, ControlStore::Open(url));
  for (int batch = 1; batch <= kBatches; ++batch) {
    const auto log = BatchLog(batch, requests);
    Status status;
    watch.Time([&] {
      status = store->UpsertModel({.id = "bench", .status = "idle", .current_version = batch});
      if (status.ok()) status = store->LogRequests(log);
    });
    ARROW_RETURN_NOT_OK(status);
  }
  return Status::OK();
}

/// One PostgreSQL for the program, a database per benchmark run.
PostgresServer& Postgres() {
  static std::unique_ptr<TempDir> dir = [] {
    auto made = OrDie(TempDir::Make("teatree-bench-pg-"));
    fs::permissions(made->path(), fs::perms::others_exec, fs::perm_options::add);
    return made;
  }();
  static std::unique_ptr<PostgresServer> server =
      OrDie(PostgresServer::Start({.dir = dir->path() / "pg"}));
  return *server;
}

/// state.range(0) requests per batch, on SQLite and PostgreSQL, each beside its raw commit.
void BM_CatalogRound(benchmark::State& state) {
  const int requests = static_cast<int>(state.range(0));
  static int run = 0;
  Stopwatch sqlite, sqlite_raw, postgres, postgres_raw;
  for (auto _ : state) {
    ++run;
    auto dir = OrDie(TempDir::Make("teatree-bench-catalog-"));
    const std::string name = "catalog_" + std::to_string(run);
    OrDie(Postgres().CreateDatabase(name));
    Status status =
        TimeRounds("sqlite://" + (dir->path() / "control.sqlite").string(), requests, sqlite);
    if (status.ok()) status = TimeRounds(Postgres().url(name), requests, postgres);
    // The raw baselines: one single-row INSERT per commit, kBatches times.
    if (status.ok()) {
      auto db = OrDie(SqliteDb::Open((dir->path() / "raw.sqlite").string()));
      OrDie(db->Execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"));
      for (int i = 0; i < kBatches && status.ok(); ++i) {
        sqlite_raw.Time(
            [&] { status = db->Execute("INSERT INTO t VALUES (" + std::to_string(i) + ", 'x')"); });
      }
    }
    if (status.ok()) {
      auto pg = OrDie(PgConnection::Connect(Postgres().url(name)));
      OrDie(pg->Execute("CREATE TABLE raw_t (id BIGINT PRIMARY KEY, v TEXT)"));
      for (int i = 0; i < kBatches && status.ok(); ++i) {
        postgres_raw.Time([&] {
          status = pg->Execute("INSERT INTO raw_t VALUES (" + std::to_string(i) + ", 'x')");
        });
      }
    }
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  const double rounds = static_cast<double>(kBatches) * static_cast<double>(state.iterations());
  state.counters["sqlite_ms/batch"] = 1e3 * sqlite.seconds() / rounds;
  state.counters["sqlite_raw_ms"] = 1e3 * sqlite_raw.seconds() / rounds;
  state.counters["postgres_ms/batch"] = 1e3 * postgres.seconds() / rounds;
  state.counters["postgres_raw_ms"] = 1e3 * postgres_raw.seconds() / rounds;
  state.counters["postgres/sqlite"] = postgres.seconds() / sqlite.seconds();
}
BENCHMARK(BM_CatalogRound)->Arg(1)->Arg(256)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace teatree::bench
