#pragma once

#include <memory>
#include <string>

#include "teatree/common/status.h"

typedef struct sqlite3 sqlite3;

namespace teatree {

/// An open SQLite database (the embedded control catalog's storage). Not thread-safe: one
/// thread at a time.
class SqliteDb {
 public:
  /// Opens or creates `path` (":memory:" for a private in-memory database).
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  /// Runs one or more statements whose results are not needed.
  Status Execute(const std::string& sql);
  /// The first column of the first row as text; an error when there is no row.
  Result<std::string> QueryScalar(const std::string& sql);
  /// The SQLite library version, e.g. "3.40.1".
  static std::string LibraryVersion();

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace teatree
