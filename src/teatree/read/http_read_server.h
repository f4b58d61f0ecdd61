#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/read/flight_read_server.h"
#include "teatree/read/uploads.h"

namespace teatree {

class LiveForwarder;
class ModelRegistry;
class ModelDirectory;
class NatsConnection;
class RequestQueue;

/// What one HTTP server lets its clients take.
struct HttpLimits {
  /// A request body longer than this is refused with 413, from its Content-Length before any
  /// of it is read, or as soon as a chunked body passes it.
  size_t max_body_bytes = size_t{64} << 20;
  /// Connections served at once; more wait for one to end.
  size_t max_connections = 1024;
  /// Streaming responses (results, notifications) one client address may have open at once.
  int max_streams_per_client = 32;
  /// How long a connection may send nothing (headers, body, next request) or stop reading a
  /// response before it is dropped.
  std::chrono::seconds io_timeout{10};
};

/// The HTTP face of the read path (cpp-httplib), over the same ModelDirectory as Flight:
///   GET  /healthz, /readyz                  liveness; readiness (503 until ready)
///   GET  /metrics                           Prometheus text format (Metrics::Process())
///   GET  /v1/models                         every model: version, tables and row counts
///   GET  /v1/models/{m}                     one model, with its retained versions
///   POST /v1/models/{m}/query               a ReadTicket's JSON (model from the path);
///                                           JSON, CSV or Arrow IPC by the Accept header
///                                           (both take ?min_version=N&wait_ms=MS, or for a
///                                           query the ticket's fields: the answer waits for
///                                           version N or newer, 503 past wait_ms)
///   POST /v1/models/{m}/requests            requests (one JSON object or JSON lines) into
///                                           the queue, through the codec; 202 with their ids
///   POST /v1/models/{m}/uploads             the body as it is (a Parquet, CSV or Arrow file)
///                                           into the model's staging area; 201 with
///                                           {"staged": id, "bytes": N}, for a request's
///                                           "source": {"format": …, "staged": id}
///   GET  /v1/models/{m}/notifications       the model's notifications as server-sent events
///                                           (ids: resume with Last-Event-ID or ?after=ID)
/// Errors are JSON {"error": "..."} with 400 (bad input), 401 (token), 404 (unknown model or
/// version), 413 (body too large), 429 (too many streams from one client, waiting reads
/// included), 503 (no queue, or a min_version that did not come in time) or
/// 500. With a token file every path but /healthz and /readyz needs "Authorization: Bearer
/// <token>". Each connection has a thread of its own (up to max_connections at once, then
/// they wait), so streams and slow clients never keep /healthz from answering; a client that
/// sends nothing for io_timeout, or stops reading for as long, is dropped. Serves in
/// background threads until destroyed.
class HttpReadServer {
 public:
  struct Options {
    /// listen.port is the HTTP port (0: a free one).
    ListenOptions listen;
    ReadLimits limits;
    /// For submitting requests and following notifications (which also wake reads waiting
    /// for a min_version); null: those answer 503.
    NatsConnection* nats = nullptr;
    RequestQueue* queue = nullptr;
    /// The models that exist: requests for others are refused with 404; null: no check.
    ModelRegistry* registry = nullptr;
    /// Readiness; empty: ready once listening.
    std::function<bool()> ready;
    /// Where live reads go when the model's manager runs elsewhere; null: read here.
    LiveForwarder* live = nullptr;
    HttpLimits http;
    /// Where uploads go; its data_dir empty: uploads answer 501.
    UploadOptions uploads;
  };
  /// `models` (and nats, queue) must outlive the server.
  static Result<std::unique_ptr<HttpReadServer>> Start(const Options& options,
                                                       ModelDirectory& models);
  ~HttpReadServer();

  /// http://host:port, or https://host:port with TLS.
  const std::string& url() const;

 private:
  struct Impl;
  explicit HttpReadServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
