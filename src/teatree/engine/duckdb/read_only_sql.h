#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

class DuckConnection;
class DuckStatement;

/// The statement check of every SQL path that clients reach (reads, the `query` op, SQL
/// functions): accepts exactly one SELECT that names only the model's own tables (by plain
/// name, or in `main`), CTEs it defines, tables of the model's attachments (as
/// `<attachment>.<table>`), and the table functions range, generate_series and unnest; it
/// refuses with a message saying why everything else: writes, DDL, ATTACH, COPY, EXPORT,
/// PRAGMA, SET, INSTALL/LOAD, CALL, stacked statements, every file, URL or SQL reader such as
/// read_csv('/etc/passwd'), FROM 'data.parquet' or query('…'), DuckDB's catalog views
/// (information_schema, pg_catalog, duckdb_settings, …), Teatree's bookkeeping tables, and
/// the functions that show settings or the environment (current_setting, getenv). Parses with
/// DuckDB's own parser (json_serialize_sql) and binds nothing; the model's tables and
/// attachments are read in the connection's current transaction. Belongs to its connection:
/// one thread at a time, and must not outlive it.
class ReadOnlyCheck {
 public:
  struct Options {
    /// Keep the model's tables between checks (readers, which see only committed tables); the
    /// writer reads them for every check, since a batch that rolls back takes its new tables
    /// with it.
    bool remember = true;
    /// A live model's (null for a version file, whose tables never change): the newest
    /// version at which the writer dropped a table, stored before that version commits.
    /// Remembered tables are used only for a version at least as new as they were read at and
    /// no older than the last drop: a dropped table's name could otherwise pass, and resolve
    /// to one of DuckDB's catalog views of the same name (duckdb_databases shows paths).
    /// Shared by the engine's writer, which stores it, and the read connections.
    std::shared_ptr<const std::atomic<int64_t>> tables_dropped_at;
  };

  static Result<std::unique_ptr<ReadOnlyCheck>> Make(DuckConnection& connection, Options options);
  static Result<std::unique_ptr<ReadOnlyCheck>> Make(DuckConnection& connection) {
    return Make(connection, Options());
  }
  ~ReadOnlyCheck();

  /// Checks `sql` as read at model `version` (the version the connection's transaction sees;
  /// any value for a version file).
  Status Check(const std::string& sql, int64_t version = 0);

  /// The names a statement may use (defined in the .cc).
  struct Scope;

 private:
  ReadOnlyCheck(DuckConnection& connection, std::unique_ptr<DuckStatement> serialize,
                std::unique_ptr<DuckStatement> scope, Options options);
  /// Whether known_ still holds at `version`: no table dropped since it was read.
  bool KnownHolds(int64_t version) const;
  Status ReadScope();

  DuckConnection& connection_;
  // Prepared once: the check runs on every read.
  std::unique_ptr<DuckStatement> serialize_;
  std::unique_ptr<DuckStatement> scope_;
  // The model's tables and attachments as last read, at known_version_. While no table is
  // dropped (KnownHolds), names are only added, so a statement that passes with them is
  // checked; one that does not is checked again with them read anew, which costs reads one
  // query only when a table was created or dropped since.
  std::unique_ptr<Scope> known_;
  int64_t known_version_ = 0;
  Options options_;
};

}  // namespace teatree
