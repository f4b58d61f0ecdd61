#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/read/read_ticket.h"

namespace arrow {
class Schema;
namespace flight {
class FlightClient;
}  // namespace flight
}  // namespace arrow

namespace teatree {

class ModelDirectory;

/// Sends live reads on to the model's manager, for a server that only holds version files
/// (`teatree serve`): the manager has every committed batch, the files lag by a publication.
/// The caller's Authorization header goes along. When the model has no manager, or it cannot
/// be reached, the answer is "not forwarded" and the caller reads its own copy; errors the
/// manager gives (a refused query, say) come back as they are. Thread-safe.
class LiveForwarder {
 public:
  /// `tls_root`: the PEM the managers' certificate is signed with (they share serve's); empty
  /// without TLS.
  LiveForwarder(ModelDirectory& models, std::filesystem::path tls_root);
  ~LiveForwarder();

  /// The live read of `ticket` at its manager, or nullopt when not forwarded (at_version
  /// reads never are).
  Result<std::optional<ReadStream>> Read(const ReadTicket& ticket,
                                         const std::string& authorization);
  /// The schema of `ticket` as its manager describes it, or null when not forwarded.
  Result<std::shared_ptr<arrow::Schema>> Describe(const ReadTicket& ticket,
                                                  const std::string& authorization);
  /// The manager's URL when a live read of `ticket` is forwarded, else "".
  std::string EndpointFor(const ReadTicket& ticket);

 private:
  Result<arrow::flight::FlightClient*> ClientFor(const std::string& url);

  ModelDirectory& models_;
  const std::filesystem::path tls_root_;
  // State below is protected by mutex_. Flight clients are thread-safe once made.
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<arrow::flight::FlightClient>> clients_;
};

}  // namespace teatree
