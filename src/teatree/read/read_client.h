#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/staging.h"
#include "teatree/read/model_reads.h"
#include "teatree/read/read_ticket.h"

namespace arrow {
class Table;
}  // namespace arrow

namespace teatree {

struct ReadClientOptions {
  /// A Flight URL: grpc://host:port or grpc+tls://host:port.
  std::string url;
  /// Sent as "Authorization: Bearer <token>" when not empty.
  std::string token;
  /// PEM root certificate to trust for TLS (e.g. a self-signed server's); empty: the
  /// system's roots.
  std::filesystem::path tls_root;
};

/// A read's result and the model version it was read at.
struct QueryResult {
  int64_t version = 0;
  std::shared_ptr<arrow::Table> table;
};

/// A downloaded version file.
struct PulledVersion {
  int64_t version = 0;
  int64_t bytes = 0;
  std::string sha256;
};

/// A client of the read path over Arrow Flight (FlightReadServer): queries, versions, pulls.
/// A read whose endpoint points at another server (a model's manager) follows it there.
/// Not thread-safe: one thread at a time (or one client per thread).
class ReadClient {
 public:
  static Result<std::unique_ptr<ReadClient>> Connect(const ReadClientOptions& options);
  ~ReadClient();

  /// Runs a read: GetFlightInfo for the ticket, then DoGet where its endpoint says.
  Result<QueryResult> Query(const ReadTicket& ticket);
  /// The model's tables and row counts (ListFlights).
  Result<std::vector<TableInfo>> Tables(const std::string& model);
  /// The retained version files of `model`; with `wanted`, once the newest is
  /// wanted->min_version or newer (the server waits, at most wanted->wait).
  Result<std::vector<VersionFileInfo>> Versions(const std::string& model,
                                                const std::optional<VersionWanted>& wanted = {});
  /// Downloads version `version` (or the newest; with `wanted`, once the newest published is
  /// wanted->min_version or newer) of `model` to `output`, checks its SHA-256 and the version
  /// it holds, then moves it into place. Reports progress on `progress` when not null.
  Result<PulledVersion> Pull(const std::string& model, std::optional<int64_t> version,
                             const std::filesystem::path& output, std::ostream* progress,
                             const std::optional<VersionWanted>& wanted = {});
  /// Uploads `in` (`bytes` long, -1 when unknown) into the staging area of `model` (Flight
  /// DoPut, see kUploadCommandKey) and returns the id a request names as `source.staged`.
  /// Reports progress on `progress` when not null.
  Result<StagedFile> Upload(const std::string& model, std::istream& in, int64_t bytes,
                            std::ostream* progress = nullptr);

 private:
  // The calls themselves; the public ones clean their errors' messages.
  Result<QueryResult> QueryRaw(const ReadTicket& ticket);
  Result<std::vector<VersionFileInfo>> VersionsRaw(const std::string& model,
                                                   const std::optional<VersionWanted>& wanted);
  Result<PulledVersion> PullRaw(const std::string& model, std::optional<int64_t> version,
                                const std::filesystem::path& output, std::ostream* progress,
                                const std::optional<VersionWanted>& wanted);
  Result<StagedFile> UploadRaw(const std::string& model, std::istream& in, int64_t bytes,
                               std::ostream* progress);

  struct Impl;
  explicit ReadClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
