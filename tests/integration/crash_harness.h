#pragma once

// What the crash tests and the crash benchmark (bench/crash_benchmark.cc) share, without
// GoogleTest: one-row requests, fault points armed through the environment, the dispatcher
// in a thread of this process starting real `teatree manager` processes, `teatree serve`
// started as a user runs it, and what the newest published version of a model holds.
// Every target that includes it defines TEATREE_BIN, the teatree binary to run.

#include <arpa/inet.h>
#include <arrow/api.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "teatree/bus/lease.h"
#include "teatree/common/file_util.h"
#include "teatree/common/subprocess.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/launch/process_launcher.h"
#include "teatree/manager/model_manager.h"
#include "teatree/service/dispatcher.h"

namespace teatree::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// Settings that make failures quick to recover from in a test: a dead manager's lease
/// lapses after a second, an unsettled request comes back after two.
inline const std::vector<std::string> kFastManagerArgs = {
    "--lease-ttl-ms", "1000", "--ack-wait-ms", "2000", "--max-wait-ms", "20"};

/// A create_table of `table` (id BIGINT, amount DOUBLE, region VARCHAR) on `engine` ("" for
/// the default). Without `primary_key`, a request applied twice shows as two rows with its id.
inline std::string CreateTableRequest(const std::string& model, const std::string& request_id,
                                      const std::string& table, const std::string& engine,
                                      bool primary_key) {
  return R"({"request_id":")" + request_id + R"(","model":")" + model +
         R"(","op":"create_table","table":")" + table + R"(",)" +
         (engine.empty() ? "" : R"("engine":")" + engine + R"(",)") +
         R"("schema":[{"name":"id","type":"BIGINT"},)"
         R"({"name":"amount","type":"DOUBLE"},{"name":"region","type":"VARCHAR"}])" +
         (primary_key ? R"(,"primary_key":["id"]})" : "}");
}

/// An append of one row (id = `key`) to `table`.
inline std::string AppendRequest(const std::string& model, const std::string& request_id,
                                 int64_t key, const std::string& table = "orders") {
  return R"({"request_id":")" + request_id + R"(","model":")" + model +
         R"(","op":"append","table":")" + table + R"(","rows":[[)" + std::to_string(key) +
         R"(,1.5,"eu"]]})";
}

/// Waits until `done` holds, polling every `every`, up to `timeout`; true if it did.
inline bool Eventually(const std::function<bool()>& done, milliseconds timeout,
                       milliseconds every = milliseconds(100)) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout;
       std::chrono::steady_clock::now() < deadline;) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

/// Sets TEATREE_FAULT for the processes started while it lives (they inherit it). With
/// `once`, only the first process to reach the point creates that file and dies: removing
/// the file arms the point again, even in processes already running.
class FaultEnvironment {
 public:
  FaultEnvironment(const std::string& fault, const fs::path& once) {
    ::setenv("TEATREE_FAULT", fault.c_str(), 1);
    ::setenv("TEATREE_FAULT_ONCE", once.c_str(), 1);
  }
  ~FaultEnvironment() {
    ::unsetenv("TEATREE_FAULT");
    ::unsetenv("TEATREE_FAULT_ONCE");
  }
  FaultEnvironment(const FaultEnvironment&) = delete;
  FaultEnvironment& operator=(const FaultEnvironment&) = delete;
};

/// The dispatcher running in a thread of this process; its managers are `teatree manager`
/// processes (children of this process) sharing `data_dir`. Start() once; Stop() (or
/// destruction) stops the managers cleanly and returns the dispatcher's status.
class DispatcherThread {
 public:
  /// Crashed managers come back within a second: the crash tests kill them on purpose.
  static DispatcherOptions FastOptions(const std::string& nats_url, const fs::path& data_dir) {
    return {.nats = {.url = nats_url},
            .restart_delay = milliseconds(100),
            .max_restart_delay = seconds(1),
            .poll_interval = milliseconds(200),
            .control_url = "sqlite://" + (data_dir / "control.sqlite").string()};
  }

  DispatcherThread(const std::string& nats_url, const fs::path& data_dir,
                   const std::vector<std::string>& manager_args, DispatcherOptions options) {
    std::vector<std::string> args{"--nats", nats_url, "--data-dir", data_dir.string()};
    args.insert(args.end(), manager_args.begin(), manager_args.end());
    launcher_ = std::make_unique<ProcessLauncher>(TEATREE_BIN, args, data_dir / "logs");
    thread_ = std::thread([this, options] { status_ = RunDispatcher(options, *launcher_, stop_); });
  }
  ~DispatcherThread() { (void)Stop(); }
  DispatcherThread(const DispatcherThread&) = delete;
  DispatcherThread& operator=(const DispatcherThread&) = delete;

  Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  std::unique_ptr<ProcessLauncher> launcher_;
  std::atomic<bool> stop_{false};
  Status status_;
  std::thread thread_;
};

/// The pid of the manager holding `model`'s lease, or 0.
inline pid_t LeaseHolderPid(NatsConnection& connection, const std::string& model) {
  auto lease = Lease::Inspect(connection, model);
  if (!lease.ok() || !lease->has_value()) return 0;
  const std::string& holder = (*lease)->holder;
  const auto at = holder.rfind("pid ");
  return at == std::string::npos ? 0 : std::stoi(holder.substr(at + 4));
}

/// `teatree serve` as a user runs it in `data` (lease TTL 1 s, batches of up to 1,000, then
/// `extra_args`), its output appended to `log`. Returns once serve.json names it, or once it
/// has exited.
inline Result<std::unique_ptr<Subprocess>> StartServe(
    const fs::path& data, const fs::path& log, const std::vector<std::string>& extra_args = {}) {
  std::vector<std::string> argv{TEATREE_BIN,      "serve", "--data-dir",   data.string(),
                                "--lease-ttl-ms", "1000",  "--batch-size", "1000"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ARROW_ASSIGN_OR_RAISE(auto serve, Subprocess::Spawn({.argv = argv, .log_path = log}));
  // serve.json names the serve that wrote it: a killed one leaves its own behind.
  const bool started = Eventually(
      [&] {
        auto text = ReadFileToString(data / "serve.json");
        auto json = nlohmann::json::parse(text.ValueOr(""), nullptr, false);
        return !serve->Running() || (json.is_object() && json.value("pid", 0) == serve->pid());
      },
      seconds(90), milliseconds(20));
  if (!started) return Status::IOError("teatree serve did not write serve.json; see ", log);
  return serve;
}

/// The pid of `parent`'s child running `name`, or 0.
inline pid_t ChildNamed(pid_t parent, const std::string& name) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (!(stat >> pid >> comm >> state >> ppid)) continue;
    if (ppid == parent && comm == "(" + name + ")") return std::stoi(pid);
  }
  return 0;
}

/// The status code of GET <path> at 127.0.0.1:<port>, or 0 when nothing answers.
inline int HttpStatus(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{.sin_family = AF_INET, .sin_port = htons(static_cast<uint16_t>(port))};
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    char reply[64] = {0};
    if (::write(fd, request.data(), request.size()) > 0 && ::read(fd, reply, 63) > 12) {
      status = std::atoi(reply + 9);  // "HTTP/1.1 200 OK"
    }
  }
  ::close(fd);
  return status;
}

/// The single value `sql` (one row, one column) finds in the newest version file of
/// `model`, as text, read from the file as an outside reader would.
inline Result<std::string> NewestVersionScalar(const fs::path& data, const std::string& model,
                                               const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(data, model));
  if (versions.empty()) return Status::Invalid("model ", model, " has no version file yet");
  ARROW_ASSIGN_OR_RAISE(
      auto db, DuckDatabase::Open({.path = VersionFilePath(data, model, versions.back()).string(),
                                   .read_only = true}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  ARROW_ASSIGN_OR_RAISE(auto rows, connection->QueryTable(sql));
  if (rows->num_rows() != 1 || rows->num_columns() != 1) {
    return Status::Invalid(sql, " returned ", rows->num_rows(), " rows, not one value");
  }
  ARROW_ASSIGN_OR_RAISE(auto value, rows->column(0)->GetScalar(0));
  return value->ToString();
}

}  // namespace teatree::testing
