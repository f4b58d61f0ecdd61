#pragma once

// What the queue tests share: a private nats-server, the dispatcher running in the test
// process and starting real `teatree manager` processes, and a client.

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "teatree/bus/lease.h"
#include "teatree/bus/nats_server.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"
#include "teatree/request/codec.h"
#include "teatree/service/client.h"
#include "teatree/service/dispatcher.h"

namespace teatree::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// Settings that make failures quick to recover from in a test: a dead manager's lease
/// lapses after a second, an unsettled request comes back after two.
inline const std::vector<std::string> kFastManagerArgs = {
    "--lease-ttl-ms", "1000", "--ack-wait-ms", "2000", "--max-wait-ms", "20"};

class QueueFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-queue-test-").ValueOrDie();
    data_ = dir_->path() / "data";
    server_ = NatsServer::Start({.store_dir = dir_->path() / "nats"}).ValueOrDie();
    client_ = Client::Connect({.nats = {.url = server_->url()}}).ValueOrDie();
  }

  void TearDown() override {
    StopDispatcher();
    client_.reset();
    server_.reset();
  }

  /// Runs the dispatcher in a thread; its managers are `teatree manager` processes.
  void StartDispatcher(std::vector<std::string> manager_args = kFastManagerArgs,
                       RequestQueueOptions queue = {}) {
    std::vector<std::string> args{"--nats", server_->url(), "--data-dir", data_.string()};
    args.insert(args.end(), manager_args.begin(), manager_args.end());
    launcher_ = std::make_unique<ProcessLauncher>(TEATREE_BIN, args, data_ / "logs");
    stop_ = false;
    // Crashed managers come back within a second: the crash tests kill them on purpose.
    DispatcherOptions options{.nats = {.url = server_->url()},
                              .queue = queue,
                              .idle_stop = idle_stop_,
                              .restart_delay = milliseconds(100),
                              .max_restart_delay = seconds(1),
                              .poll_interval = milliseconds(200),
                              .control_url = "sqlite://" + (data_ / "control.sqlite").string()};
    dispatcher_ = std::thread([this, options] {
      Status status = RunDispatcher(options, *launcher_, stop_);
      EXPECT_TRUE(status.ok()) << status.ToString();
    });
  }

  void StopDispatcher() {
    stop_ = true;
    if (dispatcher_.joinable()) dispatcher_.join();
  }

  /// Shared by the test's threads (Submit is thread-safe; Wait and Watch subscribe anew).
  Client& client() { return *client_; }

  static Request Parse(const std::string& json) {
    auto request = DecodeRequest(json);
    EXPECT_TRUE(request.ok()) << json << ": " << request.status().ToString();
    return *request;
  }

  /// Submits and waits for the outcome; fails the test on a transport error.
  Outcome Run(const std::string& json, milliseconds timeout = seconds(60)) {
    auto outcome = client().SubmitAndWait(Parse(json), timeout);
    EXPECT_TRUE(outcome.ok()) << json << ": " << outcome.status().ToString();
    return outcome.ok() ? *outcome : Outcome{};
  }

  /// The pid of the manager holding `model`'s lease, or 0.
  pid_t ManagerPid(const std::string& model) {
    auto lease = Lease::Inspect(client().connection(), model);
    if (!lease.ok() || !lease->has_value()) return 0;
    const std::string& holder = (*lease)->holder;
    const auto at = holder.rfind("pid ");
    return at == std::string::npos ? 0 : std::stoi(holder.substr(at + 4));
  }

  /// The single value of a one-row, one-column query result, as text.
  std::string Scalar(const std::string& model, const std::string& sql) {
    static std::atomic<int> counter{0};
    Outcome outcome = Run(R"({"request_id":"q)" + std::to_string(counter++) + "-" +
                          std::to_string(::getpid()) + R"(","model":")" + model +
                          R"(","op":"query","sql":)" + nlohmann::json(sql).dump() + "}");
    if (!outcome.result || outcome.result->num_rows() != 1) return "<no result>";
    return outcome.result->column(0)->GetScalar(0).ValueOrDie()->ToString();
  }

  static std::string CreateTable(const std::string& model, const std::string& id = "create") {
    return R"({"request_id":")" + id + R"(","model":")" + model +
           R"(","op":"create_table","table":"orders","schema":[{"name":"id","type":"BIGINT"},)"
           R"({"name":"amount","type":"DOUBLE"},{"name":"region","type":"VARCHAR"}],)"
           R"("primary_key":["id"]})";
  }

  static std::string Append(const std::string& model, const std::string& id, int64_t key) {
    return R"({"request_id":")" + id + R"(","model":")" + model +
           R"(","op":"append","table":"orders","rows":[[)" + std::to_string(key) +
           R"(,1.5,"eu"]]})";
  }

  std::unique_ptr<TempDir> dir_;
  fs::path data_;
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<ProcessLauncher> launcher_;
  milliseconds idle_stop_ = std::chrono::minutes(5);  // Before StartDispatcher().
  std::atomic<bool> stop_{false};
  std::thread dispatcher_;
  std::unique_ptr<Client> client_;
};

}  // namespace teatree::testing
