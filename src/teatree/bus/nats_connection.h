#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

/// How to reach and authenticate to NATS. Defaults suit the private nats-server that
/// `teatree serve` spawns on loopback: no auth, no TLS, reconnect forever.
struct NatsClientOptions {
  /// nats://host:port or tls://host:port (comma-separate several servers of a cluster).
  std::string url;
  /// Shown by the server in its connection list.
  std::string name = "teatree";
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);

  /// Authentication: at most one of a token, a user with password, or an NKey.
  std::string token;
  std::string user;
  std::string password;
  /// NKey authentication: the user's public key ("U...") and the file holding its seed
  /// ("SU..."); nats.c signs the server's nonce with the seed and wipes it from memory.
  std::string nkey;
  std::string nkey_seed_file;
  /// The token or the password in a file instead (its first line), so that it is on no
  /// command line; used when `token` / `password` are empty.
  std::string token_file;
  std::string password_file;
  /// A NATS .creds file (the user's JWT and NKey seed, as `nsc` writes it): decentralized
  /// authentication, the server's account resolver checks the JWT.
  std::string creds_file;

  /// TLS is used when `tls` is set, a URL starts with tls://, or any file below is given.
  bool tls = false;
  /// PEM file of the CA certificates that signed the server's certificate; empty trusts the
  /// system's default CAs.
  std::string tls_ca_file;
  /// PEM client certificate chain and its private key, for servers that verify clients.
  std::string tls_cert_file;
  std::string tls_key_file;

  /// After a lost connection, nats.c reconnects in the background (-1: forever), waiting
  /// `reconnect_wait` between attempts to the same server; publishes made meanwhile are
  /// buffered and fail only when their JetStream ack times out.
  int max_reconnect_attempts = -1;
  std::chrono::milliseconds reconnect_wait = std::chrono::milliseconds(500);
  /// How long JetStream API calls and publish acks may take before they fail.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  /// Copies the streams and KV buckets this connection creates keep (JetStream replicas):
  /// 3 on a 3-node JetStream cluster, so that losing a NATS server loses no request.
  int stream_replicas = 1;
};

/// A connection to NATS with its JetStream context. Thread-safe as nats.c connections are:
/// publish and subscribe from any thread. It reconnects by itself after a server restart.
/// Destroying it closes the connection: every object built on it (RequestQueue,
/// ModelConsumer, Lease) must be destroyed first.
class NatsConnection {
 public:
  /// Connects once: an unreachable server, a malformed URL or refused credentials are an
  /// error here, naming the URL and what to check.
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsClientOptions& options);
  ~NatsConnection();

  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  /// The raw handles stay owned by this object.
  natsConnection* connection() { return connection_; }
  jsCtx* jetstream() { return jetstream_; }
  /// NatsClientOptions::request_timeout: how long JetStream calls may take.
  std::chrono::milliseconds request_timeout() const { return request_timeout_; }
  /// NatsClientOptions::stream_replicas.
  int stream_replicas() const { return stream_replicas_; }

  /// True while connected (false while reconnecting or once closed).
  bool connected();
  /// How often the connection was re-established so far: a change means the server may
  /// have restarted (and lost what it kept only in memory).
  uint64_t reconnects();

 private:
  NatsConnection(natsConnection* connection, jsCtx* jetstream,
                 std::chrono::milliseconds request_timeout, int stream_replicas)
      : connection_(connection),
        jetstream_(jetstream),
        request_timeout_(request_timeout),
        stream_replicas_(stream_replicas) {}
  natsConnection* connection_;
  jsCtx* jetstream_;
  std::chrono::milliseconds request_timeout_;
  int stream_replicas_;
};

}  // namespace teatree
