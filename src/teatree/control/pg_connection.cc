#include "teatree/control/pg_connection.h"

#include <libpq-fe.h>

#include <pqxx/pqxx>

#include "teatree/control/control_internal.h"

namespace teatree {

struct PgConnection::Impl {
  explicit Impl(const std::string& options) : connection(options) {}
  pqxx::connection connection;
};

PgConnection::PgConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgConnection::~PgConnection() = default;

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& url,
                                                            std::chrono::seconds timeout) {
  const std::string separator = url.find('?') == std::string::npos ? "?" : "&";
  const std::string options =
      url + separator + "connect_timeout=" + std::to_string(timeout.count());
  try {
    return std::unique_ptr<PgConnection>(new PgConnection(std::make_unique<Impl>(options)));
  } catch (const std::exception& e) {
    return Status::IOError("cannot connect to PostgreSQL at ", RedactUrl(url), ": ", e.what(),
                           " (is the server running, and are the host, port, user and "
                           "database right?)");
  }
}

Result<std::string> PgConnection::QueryScalar(const std::string& sql) {
  try {
    pqxx::nontransaction tx(impl_->connection);
    return tx.exec1(sql)[0].as<std::string>();
  } catch (const std::exception& e) {
    return Status::IOError("PostgreSQL query failed: ", e.what());
  }
}

Status PgConnection::Execute(const std::string& sql) {
  try {
    pqxx::nontransaction tx(impl_->connection);
    tx.exec(sql);
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::IOError("PostgreSQL statement failed: ", e.what());
  }
}

std::string PgConnection::LibpqVersion() {
  const int v = PQlibVersion();  // e.g. 150014 for 15.14
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

std::string PgConnection::LibpqxxVersion() { return PQXX_VERSION; }

}  // namespace teatree
