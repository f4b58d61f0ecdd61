#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/functions/function_context.h"

namespace arrow {
class RecordBatchReader;
class Schema;
}  // namespace arrow

namespace teatree {

class DuckDatabase;
class FunctionRegistry;

/// What every database the read path reads sets once open: times with zones in UTC, as they
/// were written, whatever the host's zone; then no setting can change.
inline constexpr const char* kReadSettingsSql =
    "SET GLOBAL TimeZone = 'UTC'; SET lock_configuration = true;";
/// kReadSettingsSql without the lock.
inline constexpr const char* kUnlockedReadSettingsSql = "SET GLOBAL TimeZone = 'UTC';";

/// The SQL that confines a database that runs clients' SQL: DuckDB may read and write files
/// only under `allowed_dirs` (the model's own files are its business and stay reachable),
/// spills to `temp_dir` and nowhere else (an in-memory database would spill into the working
/// directory), and reaches no URL; no INSTALL, LOAD or COPY out; then kReadSettingsSql, after
/// which no setting can change, external access included. The one place these settings are
/// made. A model's writer, which sets its checkpoint threshold per commit, passes
/// `lock = false`: external access cannot be turned back on all the same, and no SET reaches
/// it from a client (ReadOnlyCheck lets only SELECT through).
std::string ConfineFileAccessSql(const std::vector<std::filesystem::path>& allowed_dirs,
                                 const std::filesystem::path& temp_dir, bool lock = true);

/// Bounds on one read.
struct ReadLimits {
  /// A read still running after this long is interrupted (zero: no limit). Counts from the
  /// start of the query to the last batch, streaming included.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  /// A result that grows past this many bytes of Arrow data fails (zero: no limit).
  int64_t max_result_bytes = int64_t{8} << 30;
};

/// One read: SQL, or a read function (one without `write`) called with arguments.
struct ReadRequest {
  std::string sql;
  std::string function;
  nlohmann::json args = nlohmann::json::object();
  ReadLimits limits;
  /// Polled while the read runs; returning true stops it (e.g. the client went away).
  std::function<bool()> cancelled;
  /// The engine runs a function that writes a table (invoke) and writes its result itself;
  /// a read refuses such functions otherwise.
  bool writing = false;
};

/// A read's result as it streams, and the model version it reads.
struct ReadStream {
  int64_t version = 0;
  std::unique_ptr<arrow::RecordBatchReader> reader;
};

/// A user table and its row count.
struct TableInfo {
  std::string name;
  int64_t rows = 0;
};

struct DuckReaderOptions {
  /// Functions a read may call; null: the built-ins.
  const FunctionRegistry* functions = nullptr;
  /// Connections kept for reads; more concurrent reads wait for one.
  int connections = 8;
  /// DuckDB's memory limit for a version file opened by OpenFile() (e.g. "2GB"); empty:
  /// DuckDB's default (80% of RAM).
  std::string memory_limit;
  /// Where native functions read the model's tables; empty: through the read's own DuckDB
  /// connection (each table read whole). The Arrow engine scans its datasets instead.
  std::function<std::unique_ptr<FunctionContext>(nlohmann::json args, StepRecorder& steps)>
      native_context;
  /// The live model's: the newest version at which its writer dropped a table (see
  /// ReadOnlyCheck::Options); null for a version file. Shared with the writer, which stores it.
  std::shared_ptr<const std::atomic<int64_t>> tables_dropped_at;
};

/// Serves the read path of one model database, live or a published version file: each read
/// passes CheckReadOnlySql, runs in its own transaction on a pooled connection and streams
/// Arrow record batches through the C data interface, within its ReadLimits. Thread-safe.
/// Shared: every ReadStream's reader holds the DuckReader (and so the database) open until the
/// reader is destroyed, which is how a replacing version file closes after its last query.
class DuckReader : public std::enable_shared_from_this<DuckReader> {
 public:
  /// Reads a published version file: opened read-only, external access off, configuration
  /// locked.
  static Result<std::shared_ptr<DuckReader>> OpenFile(const std::filesystem::path& file,
                                                      const DuckReaderOptions& options);
  /// Reads the live database `db`, which the writer shares.
  static std::shared_ptr<DuckReader> Make(std::shared_ptr<DuckDatabase> db,
                                          const DuckReaderOptions& options);
  ~DuckReader();

  /// Starts a read; errors (refused SQL, unknown function, bind errors) come back here, errors
  /// while streaming (time limit, size limit, cancelled) from the reader.
  Result<ReadStream> Read(const ReadRequest& request);
  /// The schema a read would return, without running it.
  Result<std::shared_ptr<arrow::Schema>> Describe(const ReadRequest& request);
  /// The user tables with their row counts, and the version they were counted at.
  Result<std::vector<TableInfo>> ListTables(int64_t* version = nullptr);

 private:
  struct Impl;
  explicit DuckReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
