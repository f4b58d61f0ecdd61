#include "teatree/control/sqlite_db.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "teatree/control/control_internal.h"

namespace teatree {
namespace {

bool IsBusy(int code) { return (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED; }

/// The one conversion from SQLite result codes to Status.
Status FromSqlite(int code, sqlite3* db, std::string_view context) {
  if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE) return Status::OK();
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  if (IsBusy(code)) {
    return Status::IOError(context, ": ", message, " (SQLite code ", code,
                           "): another connection kept the file locked (Teatree waits up to ",
                           SqliteDb::kBusyTimeoutMs / 1000,
                           " s); look for a stuck process using the same file");
  }
  return Status::IOError(context, ": ", message, " (SQLite code ", code, ")");
}

/// A statement's text for an error message: on one line, whole if short, else its start.
std::string Abbreviate(std::string_view sql) {
  constexpr size_t kMax = 160;
  std::string text;
  for (char c : sql) {
    const bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (!space) {
      text += c;
    } else if (!text.empty() && text.back() != ' ') {
      text += ' ';
    }
    if (text.size() > kMax) return text.substr(0, kMax) + "...";
  }
  if (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

bool IsInMemory(const std::string& path) { return path.empty() || path == ":memory:"; }

struct StatementDeleter {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// SqliteDb

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int code =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    Status status = FromSqlite(code, raw, "cannot open SQLite database " + path);
    sqlite3_close(raw);
    return status;
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path));
  ARROW_RETURN_NOT_OK(
      WithContext(db->ConfigureForSharing(), "cannot configure SQLite database " + path));
  return db;
}

Status SqliteDb::ConfigureForSharing() {
  // First, so that every later lock waits for other processes instead of failing.
  ARROW_RETURN_NOT_OK(FromSqlite(sqlite3_busy_timeout(db_, kBusyTimeoutMs), db_, "busy timeout"));
  // WAL: readers and the one writer do not block each other, which several processes sharing
  // one catalog need. It persists in the file; an in-memory database reports "memory".
  ARROW_ASSIGN_OR_RAISE(std::string mode, SwitchToWal());
  if (mode != "wal" && !IsInMemory(path_)) {
    return Status::IOError("journal mode is \"", mode,
                           "\", not \"wal\": put the file on a local filesystem (WAL needs "
                           "shared memory, which network filesystems do not offer)");
  }
  // synchronous=FULL, not NORMAL. With WAL, NORMAL syncs only at checkpoints, so a commit
  // that has returned can still be lost to a power cut or OS crash. Teatree acks queue
  // messages and sends notifications after the catalog commit, and readers find versions
  // through it, so a vanished commit would contradict what clients were already told. FULL
  // costs one fsync of the WAL per commit (about 0.35 ms on the dev disk, against 0.06 ms):
  // small next to the DuckDB commit and JetStream ack that each batch already waits for.
  return Execute("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
}

Result<std::string> SqliteDb::SwitchToWal() {
  // Converting a new file to WAL needs an exclusive lock, and SQLite reports a conflict with
  // another connection opening the same file at that moment as SQLITE_BUSY at once, without
  // consulting the busy handler. So retry here, within the same time budget.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  while (true) {
    auto mode = QueryScalar("PRAGMA journal_mode=WAL");
    if (mode.ok() || !IsBusy(sqlite3_errcode(db_)) ||
        std::chrono::steady_clock::now() >= deadline) {
      return mode;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

Status SqliteDb::Execute(const std::string& sql) {
  return FromSqlite(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr), db_,
                    "SQLite statement failed");
}

Result<std::string> SqliteDb::QueryScalar(const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  ARROW_RETURN_NOT_OK(FromSqlite(sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr), db_,
                                 "SQLite query failed"));
  std::unique_ptr<sqlite3_stmt, StatementDeleter> statement(raw);
  int code = sqlite3_step(raw);
  ARROW_RETURN_NOT_OK(FromSqlite(code, db_, "SQLite query failed"));
  if (code != SQLITE_ROW) return Status::KeyError("SQLite query returned no row: ", sql);
  const unsigned char* text = sqlite3_column_text(raw, 0);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

Result<std::unique_ptr<SqliteStatement>> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int code = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  ARROW_RETURN_NOT_OK(
      FromSqlite(code, db_, "cannot prepare SQLite statement \"" + Abbreviate(sql) + "\""));
  if (raw == nullptr) {
    return Status::Invalid("cannot prepare SQLite statement \"", Abbreviate(sql),
                           "\": it contains no statement");
  }
  std::unique_ptr<SqliteStatement> statement(new SqliteStatement(db_, raw));
  std::string_view rest = sql.substr(static_cast<size_t>(tail - sql.data()));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return Status::Invalid("cannot prepare SQLite statement \"", Abbreviate(sql),
                           "\": text follows its first statement; prepare one statement at a "
                           "time, or use Execute() for a script");
  }
  return statement;
}

int64_t SqliteDb::changes() const { return sqlite3_changes64(db_); }

bool SqliteDb::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::string SqliteDb::LibraryVersion() { return sqlite3_libversion(); }

// ---------------------------------------------------------------------------------------------
// SqliteStatement

SqliteStatement::~SqliteStatement() { sqlite3_finalize(statement_); }

Status SqliteStatement::CheckBind(int code, int index) {
  if (code == SQLITE_RANGE) {
    return Status::IndexError(
        "parameter ", index, " is out of range for SQLite statement \"", Abbreviate(sql()),
        "\": it has ", sqlite3_bind_parameter_count(statement_), " parameters, numbered from 1");
  }
  return FromSqlite(code, db_, "cannot bind parameter " + std::to_string(index));
}

Status SqliteStatement::BindInt64(int index, int64_t value) {
  return CheckBind(sqlite3_bind_int64(statement_, index, value), index);
}

Status SqliteStatement::BindDouble(int index, double value) {
  return CheckBind(sqlite3_bind_double(statement_, index, value), index);
}

Status SqliteStatement::BindText(int index, std::string_view value) {
  // A null pointer would bind NULL; an empty string_view must still bind "".
  const char* data = value.data() != nullptr ? value.data() : "";
  return CheckBind(
      sqlite3_bind_text64(statement_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
}

Status SqliteStatement::BindNull(int index) {
  return CheckBind(sqlite3_bind_null(statement_, index), index);
}

Result<bool> SqliteStatement::Step() {
  int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  Status status = FromSqlite(code, db_, "SQLite statement \"" + Abbreviate(sql()) + "\" failed");
  sqlite3_reset(statement_);  // releases what the failed run held; the error is already taken
  return status;
}

void SqliteStatement::Reset() { sqlite3_reset(statement_); }

int SqliteStatement::column_count() const { return sqlite3_column_count(statement_); }

bool SqliteStatement::HasColumn(int column) const {
  return column >= 0 && column < sqlite3_data_count(statement_);
}

bool SqliteStatement::ColumnIsNull(int column) const {
  return !HasColumn(column) || sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

int64_t SqliteStatement::ColumnInt64(int column) const {
  return HasColumn(column) ? sqlite3_column_int64(statement_, column) : 0;
}

double SqliteStatement::ColumnDouble(int column) const {
  return HasColumn(column) ? sqlite3_column_double(statement_, column) : 0.0;
}

std::string SqliteStatement::ColumnText(int column) const {
  if (!HasColumn(column)) return std::string();
  const unsigned char* text = sqlite3_column_text(statement_, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(statement_, column)));
}

std::string_view SqliteStatement::sql() const {
  const char* text = sqlite3_sql(statement_);
  return text != nullptr ? std::string_view(text) : std::string_view();
}

// ---------------------------------------------------------------------------------------------
// SqliteTransaction

Result<std::unique_ptr<SqliteTransaction>> SqliteTransaction::Begin(SqliteDb& db) {
  ARROW_RETURN_NOT_OK(WithContext(db.Execute("BEGIN IMMEDIATE"),
                                  "cannot begin a write transaction on " + db.path()));
  return std::unique_ptr<SqliteTransaction>(new SqliteTransaction(db));
}

Status SqliteTransaction::Commit() {
  if (finished_) {
    return Status::Invalid("transaction on ", db_.path(),
                           " was already committed: Commit() once per transaction");
  }
  Status status = db_.Execute("COMMIT");
  // A failed COMMIT may leave the transaction open (the destructor then rolls it back) or
  // SQLite may already have rolled it back.
  finished_ = status.ok() || !db_.in_transaction();
  return WithContext(status, "cannot commit transaction on " + db_.path());
}

SqliteTransaction::~SqliteTransaction() {
  if (!finished_ && db_.in_transaction()) {
    // A destructor has no one to report to. ROLLBACK fails only on I/O errors, and even then
    // the uncommitted changes never become visible to other connections.
    ARROW_UNUSED(db_.Execute("ROLLBACK"));
  }
}

}  // namespace teatree
