#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

/// A connection to PostgreSQL through libpqxx. libpqxx throws; this adapter is where its
/// exceptions become Status, so nothing above it sees one. Not thread-safe.
class PgConnection {
 public:
  /// `url` is a libpq connection URI (postgresql://user@host:port/db). Fails with a clear
  /// error, never an exception, when the server is unreachable or refuses.
  static Result<std::unique_ptr<PgConnection>> Connect(
      const std::string& url, std::chrono::seconds timeout = std::chrono::seconds(5));
  ~PgConnection();

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// The first column of the first row as text.
  Result<std::string> QueryScalar(const std::string& sql);
  /// Runs statements outside a transaction (e.g. CREATE DATABASE).
  Status Execute(const std::string& sql);

  /// The libpq version, e.g. "15.14".
  static std::string LibpqVersion();
  /// The libpqxx version, e.g. "7.7.4".
  static std::string LibpqxxVersion();

 private:
  struct Impl;
  explicit PgConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
