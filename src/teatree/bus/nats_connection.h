#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

struct NatsClientOptions {
  /// nats://host:port (comma-separate several servers of a cluster).
  std::string url;
  /// Shown by the server in its connection list.
  std::string name = "teatree";
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
};

/// A connection to NATS with its JetStream context. Thread-safe as nats.c connections are:
/// publish and subscribe from any thread. Destroying it closes the connection.
class NatsConnection {
 public:
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsClientOptions& options);
  ~NatsConnection();

  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  /// The raw handles stay owned by this object.
  natsConnection* connection() { return connection_; }
  jsCtx* jetstream() { return jetstream_; }

 private:
  NatsConnection(natsConnection* connection, jsCtx* jetstream)
      : connection_(connection), jetstream_(jetstream) {}
  natsConnection* connection_;
  jsCtx* jetstream_;
};

}  // namespace teatree
