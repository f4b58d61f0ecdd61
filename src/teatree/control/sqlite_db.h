#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "teatree/common/status.h"

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

namespace teatree {

class SqliteStatement;

/// An open SQLite database (the embedded control catalog's storage), set up to be shared by
/// several processes (dispatcher, managers, CLI) on one file: WAL journal, a 10 s busy
/// timeout, synchronous=FULL and foreign keys on (see Open()). Not thread-safe: one thread at
/// a time, including the statements and transactions made from it, which must not outlive it.
class SqliteDb {
 public:
  /// How long a connection waits for another connection's write lock before failing with
  /// "database is locked".
  static constexpr int kBusyTimeoutMs = 10000;

  /// Opens or creates `path` (":memory:" for a private in-memory database). Fails, naming the
  /// path, when the file cannot be opened or a file database cannot use WAL.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  /// Runs one or more statements whose results are not needed.
  Status Execute(const std::string& sql);
  /// The first column of the first row as text; an error when there is no row.
  Result<std::string> QueryScalar(const std::string& sql);
  /// Compiles one statement (trailing text after it is an error). The statement belongs to
  /// this database: use it on the same thread and destroy it first.
  Result<std::unique_ptr<SqliteStatement>> Prepare(std::string_view sql);
  /// Rows inserted, updated or deleted by the most recently completed statement.
  int64_t changes() const;
  /// True while an explicit transaction (BEGIN ... COMMIT/ROLLBACK) is open.
  bool in_transaction() const;
  /// The path given to Open().
  const std::string& path() const { return path_; }

  /// The SQLite library version, e.g. "3.40.1".
  static std::string LibraryVersion();

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status ConfigureForSharing();
  /// The journal mode after asking for WAL.
  Result<std::string> SwitchToWal();

  sqlite3* db_;
  std::string path_;
};

/// One compiled SQL statement of a SqliteDb: bind parameters, Step() through the rows, read
/// columns, Reset() and run again. Parameters are numbered from 1 (as `?1` in SQL), columns
/// from 0, as in SQLite. Not thread-safe; made by SqliteDb::Prepare(), must not outlive it.
class SqliteStatement {
 public:
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  Status BindInt64(int index, int64_t value);
  Status BindDouble(int index, double value);
  Status BindText(int index, std::string_view value);
  Status BindNull(int index);

  /// Runs to the next row: true when a row is available to the column getters, false when
  /// the statement has finished (for INSERT/UPDATE/DELETE, after its one and only step).
  /// Waits up to SqliteDb::kBusyTimeoutMs for another connection's write lock.
  Result<bool> Step();
  /// Rewinds the statement to run again; bindings are kept until rebound. Call it (or destroy
  /// the statement) after reading the rows you need: an unfinished read holds its snapshot.
  void Reset();

  /// Column getters read the current row (after Step() returned true). A NULL reads as 0 or
  /// "", and so does a column index outside [0, column_count()).
  int column_count() const;
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;

  /// The SQL text this statement was compiled from.
  std::string_view sql() const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
  Status CheckBind(int code, int index);
  bool HasColumn(int column) const;

  sqlite3* db_;
  sqlite3_stmt* statement_;
};

/// A write transaction guard. Begin() issues BEGIN IMMEDIATE, taking the write lock up front
/// (waiting up to the busy timeout), so a transaction never fails half-way when another
/// process commits between its reads and its writes. Commit() makes the changes durable; if
/// it was not called or failed, the destructor rolls back. Not thread-safe; must not outlive
/// its database; transactions do not nest.
class SqliteTransaction {
 public:
  static Result<std::unique_ptr<SqliteTransaction>> Begin(SqliteDb& db);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  /// Commits; calling it twice is an error.
  Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb& db) : db_(db) {}
  SqliteDb& db_;
  bool finished_ = false;
};

}  // namespace teatree
