#pragma once

#include <functional>
#include <memory>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/read/flight_read_server.h"
#include "teatree/read/http_read_server.h"
#include "teatree/read/live_forwarder.h"
#include "teatree/read/uploads.h"

namespace teatree {

class ModelDirectory;

/// How a process serves the read path.
struct ReadServingOptions {
  /// Host, token file and TLS of both servers; listen.port is Flight's (0: a free one).
  ListenOptions listen;
  /// The HTTP port (0: a free one; -1: no HTTP).
  int http_port = 0;
  /// Limits on every read.
  ReadLimits limits;
  /// DuckDB memory limit of each version file a replica opens, e.g. "2GB"; empty: DuckDB's.
  std::string memory_limit;
  /// What the HTTP server lets its clients take.
  HttpLimits http;
};

/// What the HTTP server offers besides reads (see HttpReadServer::Options); `nats` also wakes
/// both servers' reads that wait for a min_version.
struct HttpExtras {
  NatsConnection* nats = nullptr;
  RequestQueue* queue = nullptr;
  ModelRegistry* registry = nullptr;
  std::function<bool()> ready;
  /// Where both servers put uploads (none when its data_dir is empty).
  UploadOptions uploads;
};

/// The read servers of one process, Arrow Flight and HTTP, over one ModelDirectory. Stop by
/// destroying.
class ReadServers {
 public:
  /// `models` (and what `extras` points to) must outlive the servers.
  static Result<std::unique_ptr<ReadServers>> Start(const ReadServingOptions& options,
                                                    ModelDirectory& models, HttpExtras extras = {});
  /// grpc://host:port (grpc+tls:// with TLS).
  const std::string& flight_url() const { return flight_->url(); }
  /// http://host:port (https:// with TLS), or "" without HTTP.
  std::string http_url() const { return http_ ? http_->url() : ""; }

 private:
  ReadServers() = default;
  std::unique_ptr<LiveForwarder> live_;  // Used by both servers: declared before them.
  std::unique_ptr<FlightReadServer> flight_;
  std::unique_ptr<HttpReadServer> http_;
};

}  // namespace teatree
