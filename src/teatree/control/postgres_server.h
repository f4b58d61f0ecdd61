#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

class Subprocess;

struct PostgresServerOptions {
  /// Holds the cluster (data/), its socket and postgres.log. Run as root, the `postgres`
  /// user must be able to reach it (its parents searchable by others).
  std::filesystem::path dir;
  /// 0 picks a free loopback port.
  int port = 0;
  /// Where initdb and postgres are; Debian's PostgreSQL 15 by default.
  std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin";
  std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
  /// When set, TCP connections must give this password (SCRAM); otherwise they are trusted.
  std::string password;
};

/// A private PostgreSQL server on 127.0.0.1, for tests and local trials of the PostgreSQL
/// control catalog: a new cluster (initdb, trust authentication on loopback) in a directory
/// of its own. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user
/// that Debian's package creates (the directory is handed to that user). Destruction stops
/// it. Not thread-safe.
class PostgresServer {
 public:
  static Result<std::unique_ptr<PostgresServer>> Start(const PostgresServerOptions& options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// postgresql://<user>[:<password>]@127.0.0.1:<port>/<database>
  std::string url(const std::string& database = "postgres") const;
  /// Creates an empty database.
  Status CreateDatabase(const std::string& name);
  /// Stops the server the way `pg_ctl stop -m immediate` does (no shutdown checkpoint: what
  /// a crash leaves), or cleanly (`-m fast`).
  Status Stop(bool immediate = false);
  /// Starts it again on the same port with the same cluster.
  Status Restart();

 private:
  PostgresServer(PostgresServerOptions options, std::string user);
  Status Launch();

  PostgresServerOptions options_;
  std::string user_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace teatree
