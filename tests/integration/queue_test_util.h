#pragma once

// What the queue tests share: a private nats-server, the dispatcher running in the test
// process and starting real `teatree manager` processes (crash_harness.h), and a client.

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "crash_harness.h"
#include "teatree/bus/nats_server.h"
#include "teatree/common/temp_dir.h"
#include "teatree/request/codec.h"
#include "teatree/service/client.h"

namespace teatree::testing {

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
    DispatcherOptions options = DispatcherThread::FastOptions(server_->url(), data_);
    options.queue = queue;
    options.idle_stop = idle_stop_;
    dispatcher_ = std::make_unique<DispatcherThread>(server_->url(), data_, manager_args, options);
  }

  void StopDispatcher() {
    if (!dispatcher_) return;
    Status status = dispatcher_->Stop();
    EXPECT_TRUE(status.ok()) << status.ToString();
    dispatcher_.reset();
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
    return LeaseHolderPid(client().connection(), model);
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
    return CreateTableRequest(model, id, "orders", /*engine=*/"", /*primary_key=*/true);
  }

  static std::string Append(const std::string& model, const std::string& id, int64_t key) {
    return AppendRequest(model, id, key);
  }

  std::unique_ptr<TempDir> dir_;
  fs::path data_;
  std::unique_ptr<NatsServer> server_;
  milliseconds idle_stop_ = std::chrono::minutes(5);  // Before StartDispatcher().
  std::unique_ptr<DispatcherThread> dispatcher_;
  std::unique_ptr<Client> client_;
};

}  // namespace teatree::testing
