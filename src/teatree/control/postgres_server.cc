#include "teatree/control/postgres_server.h"

#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>
#include <vector>

#include "teatree/common/net.h"
#include "teatree/common/subprocess.h"
#include "teatree/control/pg_connection.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

/// The account PostgreSQL runs as: `postgres` when we are root, else ourselves.
Result<struct passwd> RunAs() {
  struct passwd* entry = ::geteuid() == 0 ? ::getpwnam("postgres") : ::getpwuid(::geteuid());
  if (entry == nullptr) {
    return Status::IOError(
        "PostgreSQL cannot run as root and there is no postgres user: install postgresql-15 "
        "(scripts/bootstrap does) or run as another user");
  }
  return *entry;
}

/// argv run as `user` (through setpriv when we are root and `user` is not us).
std::vector<std::string> AsUser(const struct passwd& user, std::vector<std::string> argv) {
  if (::geteuid() == user.pw_uid) return argv;
  std::vector<std::string> wrapped{"setpriv", "--reuid=" + std::to_string(user.pw_uid),
                                   "--regid=" + std::to_string(user.pw_gid), "--clear-groups",
                                   "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

/// Hands `dir` and what is in it to `user`.
Status GiveTo(const fs::path& dir, const struct passwd& user) {
  if (::geteuid() != 0) return Status::OK();
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    (void)::chown(it->path().c_str(), user.pw_uid, user.pw_gid);
  }
  if (::chown(dir.c_str(), user.pw_uid, user.pw_gid) != 0) {
    return Status::IOError("cannot give ", dir.string(), " to user ", user.pw_name);
  }
  return Status::OK();
}

}  // namespace

PostgresServer::PostgresServer(PostgresServerOptions options, std::string user)
    : options_(std::move(options)), user_(std::move(user)) {}

PostgresServer::~PostgresServer() { (void)Stop(); }

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    const PostgresServerOptions& options) {
  ARROW_ASSIGN_OR_RAISE(struct passwd user, RunAs());
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Status::IOError("cannot create ", options.dir.string(), ": ", ec.message());
  ARROW_RETURN_NOT_OK(GiveTo(options.dir, user));
  const fs::path log = options.dir / "postgres.log";
  std::vector<std::string> initdb_argv{(options.bin_dir / "initdb").string(),
                                       "-D",
                                       (options.dir / "data").string(),
                                       "-U",
                                       user.pw_name,
                                       "--auth-local=trust",
                                       "--no-sync",
                                       "-E",
                                       "UTF8"};
  if (options.password.empty()) {
    initdb_argv.emplace_back("--auth-host=trust");
  } else {
    const fs::path pwfile = options.dir / "pwfile";
    std::ofstream(pwfile) << options.password << "\n";
    ARROW_RETURN_NOT_OK(GiveTo(options.dir, user));
    initdb_argv.emplace_back("--auth-host=scram-sha-256");
    initdb_argv.push_back("--pwfile=" + pwfile.string());
  }
  ARROW_ASSIGN_OR_RAISE(auto initdb,
                        Subprocess::Spawn({.argv = AsUser(user, initdb_argv), .log_path = log}));
  ARROW_ASSIGN_OR_RAISE(int code, initdb->Wait(options.start_timeout));
  if (code != 0) {
    return Status::IOError("initdb failed with code ", code, ": see ", log.string());
  }
  PostgresServerOptions resolved = options;
  if (resolved.port == 0) {
    ARROW_ASSIGN_OR_RAISE(resolved.port, FreeLoopbackPort());
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer(resolved, user.pw_name));
  ARROW_RETURN_NOT_OK(server->Launch());
  return server;
}

Status PostgresServer::Launch() {
  ARROW_ASSIGN_OR_RAISE(struct passwd user, RunAs());
  const fs::path data = options_.dir / "data";
  ARROW_ASSIGN_OR_RAISE(
      process_, Subprocess::Spawn(
                    {.argv = AsUser(user, {(options_.bin_dir / "postgres").string(), "-D",
                                           data.string(), "-p", std::to_string(options_.port), "-k",
                                           data.string(), "-c", "listen_addresses=127.0.0.1"}),
                     .log_path = options_.dir / "postgres.log"}));
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (;;) {
    auto connection = PgConnection::Connect(url(), std::chrono::seconds(1));
    if (connection.ok()) return Status::OK();
    if (!process_->Running() || std::chrono::steady_clock::now() > deadline) {
      return Status::IOError("PostgreSQL did not start on port ", options_.port, ": ",
                             connection.status().message(), "; see ",
                             (options_.dir / "postgres.log").string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string PostgresServer::url(const std::string& database) const {
  const std::string password = options_.password.empty() ? "" : ":" + options_.password;
  return "postgresql://" + user_ + password + "@127.0.0.1:" + std::to_string(options_.port) + "/" +
         database;
}

Status PostgresServer::CreateDatabase(const std::string& name) {
  ARROW_ASSIGN_OR_RAISE(auto connection, PgConnection::Connect(url()));
  return connection->Execute("CREATE DATABASE \"" + name + "\"");
}

Status PostgresServer::Stop(bool immediate) {
  if (!process_ || !process_->Running()) return Status::OK();
  // postgres: SIGINT is a fast shutdown, SIGQUIT an immediate one.
  ARROW_RETURN_NOT_OK(process_->Signal(immediate ? SIGQUIT : SIGINT));
  auto code = process_->Wait(std::chrono::seconds(60));
  if (!code.ok()) (void)process_->Stop(std::chrono::seconds(1));
  return Status::OK();
}

Status PostgresServer::Restart() {
  ARROW_RETURN_NOT_OK(Stop());
  return Launch();
}

}  // namespace teatree
