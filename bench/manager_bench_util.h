#pragma once

// What the model-manager benchmarks share: a model in a temporary data directory with one
// append-only table, requests that append generated rows to it (inline JSON or Arrow IPC),
// and the same rows through DuckDB's raw appender.

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <duckdb.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/engine.h"
#include "teatree/manager/model_manager.h"
#include "teatree/request/codec.h"

namespace teatree::bench {

inline constexpr const char* kModel = "bench";
inline constexpr const char* kTable = "t";

/// The benchmark table: appends only, so no primary key.
inline constexpr const char* kCreateTable =
    R"({"request_id":"create","model":"bench","op":"create_table","table":"t","schema":[)"
    R"({"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},)"
    R"({"name":"region","type":"VARCHAR"}]})";
inline constexpr const char* kRawCreateTable =
    "CREATE TABLE t (id BIGINT, amount DOUBLE, region VARCHAR)";

/// Row `i` of the generated data: the same values on every path.
inline double AmountOf(int64_t i) { return static_cast<double>(i) * 0.25; }
inline const char* RegionOf(int64_t i) {
  static const char* const kRegions[] = {"eu-west",  "eu-north", "us-east", "us-west",
                                         "ap-south", "ap-east",  "sa-east", "af-south"};
  return kRegions[i % 8];
}

enum class Payload { kJson, kIpc };

/// Rows [first, first + n) as the JSON array of arrays an append carries.
inline nlohmann::json JsonRows(int64_t first, int64_t n) {
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = first; i < first + n; ++i) {
    rows.push_back(nlohmann::json::array({i, AmountOf(i), RegionOf(i)}));
  }
  return rows;
}

/// Rows [first, first + n) as an Arrow IPC stream (the rows_ipc fast path).
inline std::string IpcRows(int64_t first, int64_t n) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder amounts;
  arrow::StringBuilder regions;
  for (int64_t i = first; i < first + n; ++i) {
    OrDie(ids.Append(i));
    OrDie(amounts.Append(AmountOf(i)));
    OrDie(regions.Append(RegionOf(i)));
  }
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(
      schema, n, {OrDie(ids.Finish()), OrDie(amounts.Finish()), OrDie(regions.Finish())});
  auto sink = OrDie(arrow::io::BufferOutputStream::Create());
  auto writer = OrDie(arrow::ipc::MakeStreamWriter(sink, schema));
  OrDie(writer->WriteRecordBatch(*batch));
  OrDie(writer->Close());
  return OrDie(sink->Finish())->ToString();
}

/// An append of rows [first, first + n), built directly, with its payload hash set as
/// DecodeRequest() would.
inline Request AppendRequest(const std::string& id, int64_t first, int64_t n, Payload payload) {
  Request request;
  request.request_id = id;
  request.model = kModel;
  request.op = Op::kAppend;
  request.table = kTable;
  if (payload == Payload::kJson) {
    request.rows = JsonRows(first, n);
  } else {
    request.rows_ipc = IpcRows(first, n);
  }
  request.payload_hash = PayloadHash(request);
  return request;
}

/// Checks that every request of a batch was applied with its rows.
inline Status CheckApplied(const Result<BatchResult>& result, int64_t rows_per_request) {
  if (!result.ok()) return result.status();
  for (const auto& outcome : result->outcomes) {
    if (!outcome.applied() || outcome.rows != rows_per_request) {
      return Status::Invalid("request ", outcome.request_id, " was ", outcome.status, " with ",
                             outcome.rows, " rows (expected ", rows_per_request,
                             "): ", outcome.error);
    }
  }
  return Status::OK();
}

/// The rows in the model's table, read on the live model.
inline Result<int64_t> CountRows(Engine& engine) {
  ARROW_ASSIGN_OR_RAISE(auto table, engine.Query("SELECT count(*) AS n FROM t"));
  ARROW_ASSIGN_OR_RAISE(auto scalar, table->column(0)->GetScalar(0));
  return std::static_pointer_cast<arrow::Int64Scalar>(scalar)->value;
}
inline Result<int64_t> CountRows(ModelManager& manager) { return CountRows(*manager.engine()); }

/// A model `bench` with the empty table `t`, in its own temporary data directory.
class BenchModel {
 public:
  /// `options.data_dir` and `options.model` are filled in.
  static std::unique_ptr<BenchModel> Make(const std::string& prefix, ManagerOptions options) {
    auto model = std::unique_ptr<BenchModel>(new BenchModel());
    model->dir_ = OrDie(TempDir::Make(prefix));
    options.data_dir = model->dir_->path() / "data";
    options.model = kModel;
    model->options_ = options;
    model->manager_ = OrDie(ModelManager::Open(options));
    OrDie(CheckApplied(model->manager_->Apply({OrDie(DecodeRequest(kCreateTable))}), 0));
    OrDie(model->WaitIdle());
    return model;
  }

  ModelManager& manager() { return *manager_; }
  const std::filesystem::path& dir() const { return dir_->path(); }
  std::filesystem::path data_dir() const { return dir_->path() / "data"; }
  std::filesystem::path rw_file() const {
    return ModelDir(data_dir(), kModel) / "rw" / (std::string(kModel) + ".duckdb");
  }

  /// Appends `n` rows of poorly compressible data (random doubles, md5 strings) straight
  /// into the model's file while its manager is closed, then reopens it. The model keeps its
  /// version, so the next commit is the first publication of the filled file: a large model
  /// is built in seconds, without paying for a publication nobody measures.
  Status Fill(int64_t first, int64_t n) {
    ARROW_RETURN_NOT_OK(manager_->Close());
    manager_.reset();
    {
      ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = rw_file().string()}));
      ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
      ARROW_RETURN_NOT_OK(connection->Execute(
          "INSERT INTO t SELECT range AS id, random() AS amount, md5(range::VARCHAR) AS region "
          "FROM range(" +
          std::to_string(first) + ", " + std::to_string(first + n) + ")"));
      ARROW_RETURN_NOT_OK(connection->Execute("CHECKPOINT"));
    }
    ARROW_ASSIGN_OR_RAISE(manager_, ModelManager::Open(options_));
    return WaitIdle();
  }

  /// Waits until the publisher is done with the current version (file in place, archived,
  /// recorded), so that the next measurement starts with it idle. A `snapshot` request asks
  /// for the publication at once instead of at the end of the publisher's interval.
  Status WaitIdle(std::chrono::seconds timeout = std::chrono::minutes(5)) {
    if (manager_->published_version() < manager_->version()) {
      Request snapshot;
      snapshot.request_id = "snapshot-" + std::to_string(++snapshots_);
      snapshot.model = kModel;
      snapshot.op = Op::kSnapshot;
      snapshot.payload_hash = PayloadHash(snapshot);
      ARROW_RETURN_NOT_OK(CheckApplied(manager_->Apply({snapshot}), 0));
    }
    return manager_->WaitPublished(manager_->version(), timeout);
  }

 private:
  BenchModel() = default;
  // Members are destroyed in reverse order: the manager before its directory.
  std::unique_ptr<TempDir> dir_;
  ManagerOptions options_;
  std::unique_ptr<ModelManager> manager_;
  int64_t snapshots_ = 0;
};

/// The baseline: the same table in a fresh DuckDB file of its own, written with DuckDB's
/// appender through the C API, one transaction (appender) per request, like one request per
/// Apply.
class RawAppender {
 public:
  explicit RawAppender(const std::filesystem::path& file) {
    if (duckdb_open(file.c_str(), &db_) == DuckDBError ||
        duckdb_connect(db_, &connection_) == DuckDBError ||
        duckdb_query(connection_, kRawCreateTable, nullptr) == DuckDBError) {
      OrDie(Status::IOError("cannot create the raw DuckDB file ", file.string()));
    }
  }
  ~RawAppender() {
    duckdb_disconnect(&connection_);
    duckdb_close(&db_);
  }
  RawAppender(const RawAppender&) = delete;
  RawAppender& operator=(const RawAppender&) = delete;

  /// Appends rows [first, first + n) and commits them.
  Status Append(int64_t first, int64_t n) {
    duckdb_appender appender;
    if (duckdb_appender_create(connection_, nullptr, kTable, &appender) == DuckDBError) {
      duckdb_appender_destroy(&appender);
      return Status::IOError("cannot create an appender");
    }
    bool ok = true;
    for (int64_t i = first; i < first + n && ok; ++i) {
      ok = duckdb_append_int64(appender, i) == DuckDBSuccess &&
           duckdb_append_double(appender, AmountOf(i)) == DuckDBSuccess &&
           duckdb_append_varchar(appender, RegionOf(i)) == DuckDBSuccess &&
           duckdb_appender_end_row(appender) == DuckDBSuccess;
    }
    // Destroying the appender flushes it: one transaction, committed (to the WAL, synced).
    ok = duckdb_appender_destroy(&appender) == DuckDBSuccess && ok;
    return ok ? Status::OK() : Status::IOError("raw append failed");
  }

  Result<int64_t> CountRows() {
    duckdb_result result;
    if (duckdb_query(connection_, "SELECT count(*) FROM t", &result) == DuckDBError) {
      duckdb_destroy_result(&result);
      return Status::IOError("cannot count rows");
    }
    const int64_t count = duckdb_value_int64(&result, 0, 0);
    duckdb_destroy_result(&result);
    return count;
  }

 private:
  duckdb_database db_ = nullptr;
  duckdb_connection connection_ = nullptr;
};

}  // namespace teatree::bench
