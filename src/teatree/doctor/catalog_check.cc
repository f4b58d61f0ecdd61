// Doctor checks for the control catalog's backends: SQLite and PostgreSQL (libpq/libpqxx).
#include "teatree/common/net.h"
#include "teatree/control/pg_connection.h"
#include "teatree/control/sqlite_db.h"
#include "teatree/doctor/checks_internal.h"

namespace teatree {

Result<CheckOutcome> CheckSqlite(const DoctorOptions&) {
  ARROW_ASSIGN_OR_RAISE(auto db, SqliteDb::Open(":memory:"));
  ARROW_RETURN_NOT_OK(db->Execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2);"));
  ARROW_ASSIGN_OR_RAISE(auto sum, db->QueryScalar("SELECT sum(x) FROM t"));
  if (sum != "3") return Status::Invalid("SQLite computed ", sum, ", expected 3");
  return CheckOutcome{SqliteDb::LibraryVersion(), "in-memory database: create, insert, query"};
}

Result<CheckOutcome> CheckPostgres(const DoctorOptions& options) {
  const std::string version =
      "libpqxx " + PgConnection::LibpqxxVersion() + ", libpq " + PgConnection::LibpqVersion();
  if (!options.postgres_url.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto connection, PgConnection::Connect(options.postgres_url));
    ARROW_ASSIGN_OR_RAISE(auto server, connection->QueryScalar("SHOW server_version"));
    return CheckOutcome{version, "connected; server " + server};
  }
  // No server configured: prove the client libraries work by failing to reach a port where
  // nothing listens, which must come back as a clear error rather than a crash.
  ARROW_ASSIGN_OR_RAISE(int port, FreeLoopbackPort());
  auto connection =
      PgConnection::Connect("postgresql://teatree@127.0.0.1:" + std::to_string(port) + "/teatree",
                            std::chrono::seconds(2));
  if (connection.ok()) return Status::Invalid("connected to a port where nothing listens");
  if (connection.status().message().find("cannot connect to PostgreSQL") == std::string::npos) {
    return connection.status();
  }
  return CheckOutcome{version,
                      "client libraries work; no server given (--postgres URL checks one): "
                      "an unreachable server is reported as a clear error"};
}

}  // namespace teatree
