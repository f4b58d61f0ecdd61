#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

class Subprocess;

struct NatsServerOptions {
  /// The nats-server binary; empty means $TEATREE_NATS_SERVER, else the one installed beside
  /// teatree (libexec/teatree/nats-server: scripts/bootstrap's pinned copy), else PATH's.
  std::string binary;
  /// JetStream storage; nats.conf and nats.log are written beside it.
  std::filesystem::path store_dir;
  /// 0 picks a free loopback port.
  int port = 0;
  /// fsync every write before acknowledging it (`sync_interval: always`): an acknowledged
  /// request survives a power loss, at the price of latency.
  bool sync_always = true;
  /// The largest message clients may publish (nats-server's max_payload; its own default is
  /// 1 MiB). Room for RequestQueueOptions' default 8 MiB request body plus headers.
  int64_t max_payload = 9 << 20;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
};

/// A private nats-server with JetStream, listening on 127.0.0.1. Start() returns once the
/// server accepts connections; destruction stops it. Not thread-safe.
class NatsServer {
 public:
  static Result<std::unique_ptr<NatsServer>> Start(const NatsServerOptions& options);
  ~NatsServer();

  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  /// nats://127.0.0.1:<port>
  std::string url() const;
  int port() const { return port_; }
  /// The server process, e.g. to kill -9 it in a crash test.
  Subprocess& process() { return *process_; }
  /// SIGTERM and wait: JetStream flushes its store.
  Status Stop();
  /// Starts the server again on the same port with the same store, e.g. after
  /// `process().Signal(SIGKILL)` in a crash test; stops it first if it still runs. Clients
  /// that reconnect (NatsClientOptions::max_reconnect_attempts) find it again. Fails if the
  /// port was taken meanwhile.
  Status Restart();

  /// The binary Start() would run for these options.
  static std::string ResolveBinary(const NatsServerOptions& options);
  /// Runs `<binary> --version`; a missing binary is an error that says how to get one.
  static Result<std::string> BinaryVersion(const std::string& binary);

 private:
  NatsServer(std::unique_ptr<Subprocess> process, NatsServerOptions options, int port);
  std::unique_ptr<Subprocess> process_;
  NatsServerOptions options_;
  int port_;
};

}  // namespace teatree
