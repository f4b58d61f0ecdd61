#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/read/uploads.h"

namespace teatree {

class LiveForwarder;
class ModelDirectory;
class NatsConnection;

/// Where and how a read server listens (Flight and HTTP alike).
struct ListenOptions {
  std::string host = "127.0.0.1";
  /// The host clients are told to use (AdvertisedHost): empty takes `host`, or this
  /// machine's name when `host` is a wildcard address.
  std::string advertise_host;
  /// 0 picks a free port.
  int port = 0;
  /// Bearer tokens required on every call when set (AccessTokens file format).
  std::filesystem::path token_file;
  /// TLS when both are set: PEM certificate chain and private key.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
};

/// The actions DoAction understands.
inline constexpr const char* kVersionsAction = "versions";
/// The longest action body a read server reads.
inline constexpr size_t kMaxActionBytes = size_t{64} << 10;
inline constexpr const char* kPullAction = "pull";
/// Schema metadata key of a DoGet stream: the model version the result was read at.
inline constexpr const char* kVersionMetadataKey = "teatree.version";

/// The Arrow Flight face of the read path, over the models of a ModelDirectory:
/// - ListFlights: every table of every model, with its row count (descriptor path
///   [model, table]).
/// - GetFlightInfo / GetSchema: for a command descriptor holding a ReadTicket's JSON, or a
///   path [model, table]; a live read of a model whose manager runs elsewhere is described
///   by that manager, and its endpoint points there.
/// - DoGet: a ReadTicket; streams the record batches straight from DuckDB, with the version
///   read under kVersionMetadataKey in the schema's metadata. A live read of a model whose
///   manager runs elsewhere is passed on to it (Options::live).
/// - DoAction "versions" {"model"} lists the retained version files; "pull" {"model",
///   "version"?} sends {"model","version","bytes","sha256"} and then the file in chunks.
/// - DoPut {"upload": "<model>"} stores an upload in the model's staging area (see
///   kUploadCommandKey), when Options::uploads has a data directory.
/// A ticket's "min_version" (and an action body's) makes the call wait, at most its
/// "wait_ms", until the model has that version (ReadsAtLeast): live in a manager, published
/// for files; past it the call fails with TimedOut, naming the version the server has.
/// Start() serves in background threads until Shutdown() or destruction.
class FlightReadServer {
 public:
  struct Options {
    ListenOptions listen;
    ReadLimits limits;
    /// Where live reads go when the model's manager runs elsewhere; null: read here.
    LiveForwarder* live = nullptr;
    /// The models' notifications, which wake reads waiting for a min_version; null: those
    /// look for it every 50 ms.
    NatsConnection* nats = nullptr;
    /// Where uploads go (DoPut); its data_dir empty: the server takes none.
    UploadOptions uploads;
  };
  /// `models` must outlive the server.
  static Result<std::unique_ptr<FlightReadServer>> Start(const Options& options,
                                                         ModelDirectory& models);
  ~FlightReadServer();

  /// grpc://host:port, or grpc+tls://host:port with TLS.
  const std::string& url() const;
  int port() const;
  void Shutdown();

 private:
  class Service;
  explicit FlightReadServer(std::unique_ptr<Service> service);
  std::unique_ptr<Service> service_;
  bool stopped_ = false;
};

}  // namespace teatree
