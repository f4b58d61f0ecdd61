#pragma once

#include <memory>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/read/flight_read_server.h"

namespace teatree {

class ModelDirectory;

/// How a process serves the read path.
struct ReadServingOptions {
  /// Host, token file and TLS of both servers; listen.port is Flight's (0: a free one).
  ListenOptions listen;
  /// Limits on every read.
  ReadLimits limits;
  /// DuckDB memory limit of each version file a replica opens, e.g. "2GB"; empty: DuckDB's.
  std::string memory_limit;
};

/// The read servers of one process (Flight now) over a ModelDirectory. Stop by destroying.
class ReadServers {
 public:
  /// `models` must outlive the servers.
  static Result<std::unique_ptr<ReadServers>> Start(const ReadServingOptions& options,
                                                    ModelDirectory& models);
  /// grpc://host:port (grpc+tls:// with TLS).
  const std::string& flight_url() const { return flight_->url(); }

 private:
  explicit ReadServers(std::unique_ptr<FlightReadServer> flight) : flight_(std::move(flight)) {}
  std::unique_ptr<FlightReadServer> flight_;
};

}  // namespace teatree
