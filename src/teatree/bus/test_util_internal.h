#pragma once

// What bus tests share: a real nats-server per test in a fresh directory, and a connection.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_server.h"
#include "teatree/bus/request_queue.h"
#include "teatree/common/temp_dir.h"

namespace teatree {

/// Each test gets its own nats-server (JetStream, sync_interval: always) on a free loopback
/// port, storing under a TempDir, and a connection to it.
class BusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-bus-test-").ValueOrDie();
    server_ = NatsServer::Start({.store_dir = dir_->path() / "jetstream"}).ValueOrDie();
    connection_ = Connect();
  }

  std::unique_ptr<NatsConnection> Connect() {
    return NatsConnection::Connect({.url = server_->url(),
                                    .reconnect_wait = std::chrono::milliseconds(100),
                                    .request_timeout = std::chrono::seconds(2)})
        .ValueOrDie();
  }

  std::unique_ptr<RequestQueue> Queue(const RequestQueueOptions& options = {}) {
    return RequestQueue::Make(*connection_, options).ValueOrDie();
  }

  NatsConnection& connection() { return *connection_; }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<NatsServer> server_;
  std::unique_ptr<NatsConnection> connection_;
};

/// Milliseconds since `start`.
inline int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

/// Expects `status` to be an error whose message contains `text`.
inline void ExpectError(const Status& status, const std::string& text) {
  EXPECT_FALSE(status.ok()) << "expected an error containing: " << text;
  EXPECT_NE(status.message().find(text), std::string::npos) << status.ToString();
}

}  // namespace teatree
