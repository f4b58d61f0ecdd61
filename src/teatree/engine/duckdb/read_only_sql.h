#pragma once

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
  /// `remember`: keep the model's tables between checks (readers, which see only committed
  /// tables); the writer reads them for every check, since a batch that rolls back takes its
  /// new tables with it.
  static Result<std::unique_ptr<ReadOnlyCheck>> Make(DuckConnection& connection,
                                                     bool remember = true);
  ~ReadOnlyCheck();

  Status Check(const std::string& sql);

  /// The names a statement may use (defined in the .cc).
  struct Scope;

 private:
  ReadOnlyCheck(DuckConnection& connection, std::unique_ptr<DuckStatement> serialize,
                std::unique_ptr<DuckStatement> scope, bool remember);
  DuckConnection& connection_;
  // Prepared once: the check runs on every read.
  std::unique_ptr<DuckStatement> serialize_;
  std::unique_ptr<DuckStatement> scope_;
  // The model's tables and attachments as last read. Names are only ever added (tables and
  // attachments are not dropped), so a statement that passes with them is checked; one that
  // does not is checked again with them read anew, which costs reads one query only when a
  // table was created since.
  std::unique_ptr<Scope> known_;
  bool remember_;
  Status ReadScope();
};

}  // namespace teatree
