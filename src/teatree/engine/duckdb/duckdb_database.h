#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "teatree/common/status.h"

namespace arrow {
class RecordBatch;
class RecordBatchReader;
class Schema;
class Table;
}  // namespace arrow

namespace teatree {

class DuckConnection;

struct DuckDatabaseOptions {
  /// A file path, or ":memory:" (the default) for an in-memory database.
  std::string path = ":memory:";
  bool read_only = false;
  /// Further DuckDB settings by name, e.g. {"threads", "2"}, applied at open.
  std::map<std::string, std::string> settings;
};

/// An open DuckDB database (through DuckDB's stable C API). Thread-safe: connections from
/// Connect() may be used on different threads, each by one thread at a time. The database
/// closes when it and every connection made from it are gone.
class DuckDatabase : public std::enable_shared_from_this<DuckDatabase> {
 public:
  static Result<std::shared_ptr<DuckDatabase>> Open(const DuckDatabaseOptions& options);
  ~DuckDatabase();

  DuckDatabase(const DuckDatabase&) = delete;
  DuckDatabase& operator=(const DuckDatabase&) = delete;

  /// A new connection; it keeps the database alive.
  Result<std::unique_ptr<DuckConnection>> Connect();
  /// The version of the libduckdb actually loaded, e.g. "v1.4.4".
  static std::string LibraryVersion();

 private:
  friend class DuckConnection;
  struct Impl;
  explicit DuckDatabase(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A value bound to a prepared statement's parameter: NULL, BOOLEAN, BIGINT, DOUBLE or text
/// (text is cast by DuckDB to the parameter's type, e.g. DATE or DECIMAL).
using DuckParam = std::variant<std::monostate, bool, int64_t, double, std::string>;
/// Parameters by name, for statements that use `$name` placeholders.
using DuckParams = std::map<std::string, DuckParam>;

/// A statement prepared once and run many times with different parameters: parsing,
/// binding and planning are paid once. Belongs to its connection and must not outlive it.
class DuckStatement {
 public:
  ~DuckStatement();
  DuckStatement(const DuckStatement&) = delete;
  DuckStatement& operator=(const DuckStatement&) = delete;

  /// Runs the statement with `params` bound; the result is dropped.
  Status Execute(const DuckParams& params = {});
  /// Runs the statement with `params` bound; returns its result as a table.
  Result<std::shared_ptr<arrow::Table>> Query(const DuckParams& params = {});

 private:
  friend class DuckConnection;
  struct Impl;
  explicit DuckStatement(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Tables DuckDB scans through the Arrow C data interface (DuckConnection::RegisterArrowScan).
/// Called from DuckDB's threads, so implementations must be thread-safe.
class ArrowTables {
 public:
  virtual ~ArrowTables() = default;
  /// The columns of `table`; an error, shown to the user, when there is no such table.
  virtual Result<std::shared_ptr<arrow::Schema>> Schema(const std::string& table) const = 0;
  /// The rows of `table`: only `columns`, in that order (none: batches of row counts only).
  virtual Result<std::shared_ptr<arrow::RecordBatchReader>> Scan(
      const std::string& table, const std::vector<std::string>& columns) const = 0;
};

/// One DuckDB connection: its own transaction state. Not thread-safe: one thread at a time.
class DuckConnection {
 public:
  ~DuckConnection();
  DuckConnection(const DuckConnection&) = delete;
  DuckConnection& operator=(const DuckConnection&) = delete;

  /// Runs statements whose results are not needed (DDL, DML, SET, ...).
  Status Execute(const std::string& sql);
  /// Runs one statement and returns the number of rows it inserted, updated or deleted.
  Result<int64_t> ExecuteCount(const std::string& sql);
  /// Prepares one statement with `$name` parameters for repeated use.
  Result<std::unique_ptr<DuckStatement>> Prepare(const std::string& sql);
  /// Runs one statement with `$name` parameters bound (never spliced into the text); returns
  /// its result as a table (for DML: one column "Count").
  Result<std::shared_ptr<arrow::Table>> QueryParams(const std::string& sql,
                                                    const DuckParams& params);
  /// True when `sql` is exactly one SELECT statement (no writes, no stacked statements).
  /// Binds the statement, so the tables it names must exist.
  Result<bool> IsSingleSelect(const std::string& sql);
  /// How many statements `sql` holds; parses without binding. A syntax error is an error.
  Result<size_t> CountStatements(const std::string& sql);
  /// Runs a query; its result leaves as Arrow record batches through the C data interface,
  /// one batch per DuckDB chunk. The reader owns the result.
  Result<std::unique_ptr<arrow::RecordBatchReader>> Query(const std::string& sql);
  /// Runs one statement with `$name` parameters bound and streams its result: DuckDB computes
  /// chunks as the reader asks for them, so a large result is never materialized. The
  /// connection must not run anything else until the reader is gone.
  Result<std::unique_ptr<arrow::RecordBatchReader>> Stream(const std::string& sql,
                                                           const DuckParams& params = {});
  /// The Arrow schema of a statement's result, from binding it without running it.
  Result<std::shared_ptr<arrow::Schema>> Describe(const std::string& sql);
  /// Stops what runs on this connection: the statement or stream fails with an interrupt
  /// error. The only member safe to call from another thread while the connection is in use.
  void Interrupt();
  /// Query() collected into one table.
  Result<std::shared_ptr<arrow::Table>> QueryTable(const std::string& sql);
  /// Appends `rows` (whose columns match the table's, in order) to `table` with DuckDB's
  /// appender, converting through the C data interface chunk by chunk, as the rows lie (no
  /// copy into one batch first): no SQL, no view. Runs inside the connection's open
  /// transaction, if any. Returns the rows appended.
  Result<int64_t> AppendArrow(const std::string& table, const arrow::Table& rows);
  /// Makes an Arrow stream scannable from SQL as the view `name`. The stream is consumed by
  /// the first query that scans it and lives as long as the connection. Scan every column:
  /// DuckDB 1.4 reads the wrong columns of such a view when a query uses only some of them
  /// (e.g. `SELECT b FROM view` gets column a's data), so copy it whole (`SELECT *`) first.
  Status RegisterArrowView(const std::string& name,
                           std::shared_ptr<arrow::RecordBatchReader> reader);
  /// Registers, in the connection's database, the table function `function(table)` that
  /// reads `tables` through the Arrow C data interface, as many times as queries ask: the
  /// columns a query uses are pushed into ArrowTables::Scan(), its filters apply after.
  Status RegisterArrowScan(const std::string& function, std::shared_ptr<const ArrowTables> tables);
  /// Makes `reader` scannable as the view `name` while `body` runs (it may scan it once),
  /// then drops the view and releases the stream.
  Status WithArrowView(const std::string& name, std::shared_ptr<arrow::RecordBatchReader> reader,
                       const std::function<Status()>& body);

 private:
  friend class DuckDatabase;
  struct Impl;
  explicit DuckConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
