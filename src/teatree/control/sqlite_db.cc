#include "teatree/control/sqlite_db.h"

#include <sqlite3.h>

namespace teatree {
namespace {

/// The one conversion from SQLite result codes to Status.
Status FromSqlite(int code, sqlite3* db, std::string_view context) {
  if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE) return Status::OK();
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  return Status::IOError(context, ": ", message, " (SQLite code ", code, ")");
}

struct StatementDeleter {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};

}  // namespace

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int code = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    Status status = FromSqlite(code, db, "cannot open SQLite database " + path);
    sqlite3_close(db);
    return status;
  }
  return std::unique_ptr<SqliteDb>(new SqliteDb(db));
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

std::string SqliteDb::LibraryVersion() { return sqlite3_libversion(); }

}  // namespace teatree
