#pragma once

#include <arrow/type_fwd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/request_queue.h"
#include "teatree/common/status.h"
#include "teatree/read/read_client.h"
#include "teatree/request/request.h"

namespace teatree {

class ModelRegistry;

struct ClientOptions {
  /// The NATS server; when its url is empty, the one `teatree serve` wrote into data_dir.
  NatsClientOptions nats;
  std::filesystem::path data_dir = "teatree-data";
  RequestQueueOptions queue{.configure = false};
  /// The read path; when its url is empty, the Flight URL `teatree serve` wrote into
  /// data_dir.
  ReadClientOptions read;
};

/// What became of a request: its outcome notification and, for a query or a function that
/// returns rows, the result reassembled from its pages.
struct Outcome {
  /// {type:"outcome", model, request_id, op, status, version, rows, duration_ms, error?, ...}
  nlohmann::json note;
  std::shared_ptr<arrow::Table> result;

  bool applied() const { return note.value("status", "") == "applied"; }
};

/// A Teatree client: submit requests, wait for their outcomes and watch a model over NATS;
/// query models and pull versions over the read path (Arrow Flight, connected on first use).
/// Thread-safe for Submit; use Wait and Watch subscriptions from one thread each, and Query
/// and Pull from one thread at a time.
class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  /// Encodes `request` with the codec and submits it; returns once JetStream stored it.
  /// Requests built with DecodeRequest are valid as far as the codec can tell; the manager
  /// checks them against the model (a bad one comes back rejected). A request for a model
  /// that does not exist is refused here (KeyError), unless it is a create_table, which
  /// creates the model.
  /// A request larger than the queue takes (RequestQueueOptions::max_body_bytes) that
  /// carries rows is sent in two steps: its rows are uploaded into the model's staging area
  /// and the request names them (`source.staged`); any other oversize request is refused
  /// here, naming the limit.
  Result<PublishAck> Submit(const Request& request);
  /// Uploads `in` (`bytes` long, -1 when unknown: a Parquet, CSV, Arrow IPC or JSON rows
  /// file) into the staging area of `model` over the read path's Flight server; a request
  /// names the returned id as "source": {"format": …, "staged": id}. Thread-safe.
  Result<StagedFile> Upload(const std::string& model, std::istream& in, int64_t bytes,
                            std::ostream* progress = nullptr);
  /// The outcome of request `request_id` of `model`, notified before or after the call, or
  /// an error after `timeout`.
  Result<Outcome> Wait(const std::string& model, const std::string& request_id,
                       std::chrono::milliseconds timeout);
  /// Submit, then wait for the outcome: read-your-writes.
  Result<Outcome> SubmitAndWait(const Request& request, std::chrono::milliseconds timeout);
  /// Every notification of `model` from now on (outcomes and version_published).
  Result<std::unique_ptr<NoteSubscription>> Watch(const std::string& model);
  /// The notifications of `model` the stream kept, from `from` on, then new ones.
  Result<std::unique_ptr<NoteSubscription>> Watch(const std::string& model, const ReplayFrom& from);

  /// Runs a read on the model (live, or at_version) and returns its rows and version.
  Result<QueryResult> Query(const ReadTicket& ticket);
  /// Downloads a version file of `model` (the newest when `version` is empty) to `output`,
  /// checksum-verified; see ReadClient::Pull.
  Result<PulledVersion> Pull(const std::string& model, std::optional<int64_t> version,
                             const std::filesystem::path& output, std::ostream* progress = nullptr,
                             const std::optional<VersionWanted>& wanted = {});
  /// Waits until version `version` of `model` (or a newer one) is published, i.e. readable
  /// from version files, and returns the newest published version; an error marked
  /// kUnavailable after `timeout`. Asks the read path, which waits on the notifications.
  Result<int64_t> WaitPublished(const std::string& model, int64_t version,
                                std::chrono::milliseconds timeout);
  /// The read client, connected on first use.
  Result<ReadClient*> reads();

  NatsConnection& connection() { return *nats_; }
  RequestQueue& queue() { return *queue_; }
  ModelRegistry& models() { return *registry_; }

 private:
  /// Reads `notes` until the outcome of the request arrives, with its result pages.
  static Result<Outcome> Collect(NoteSubscription& notes, const std::string& model,
                                 const std::string& request_id, std::chrono::milliseconds timeout);

  Client(ClientOptions options, std::unique_ptr<NatsConnection> nats,
         std::unique_ptr<RequestQueue> queue, std::unique_ptr<ModelRegistry> registry);
  ClientOptions options_;
  std::unique_ptr<NatsConnection> nats_;
  std::unique_ptr<RequestQueue> queue_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<ReadClient> reads_;
};

/// The NATS URL `teatree serve` wrote into `data_dir` (serve.json), or an error saying to
/// start it or to pass --nats.
Result<std::string> ServedNatsUrl(const std::filesystem::path& data_dir);
/// The Flight URL of the read path `teatree serve` wrote into `data_dir`, or an error saying
/// to start it or to pass --url.
Result<std::string> ServedFlightUrl(const std::filesystem::path& data_dir);
/// The HTTP URL of the read path `teatree serve` wrote into `data_dir` ("" without HTTP).
Result<std::string> ServedHttpUrl(const std::filesystem::path& data_dir);
/// A read client for `options` (its url from serve.json in `data_dir` when empty).
Result<std::unique_ptr<ReadClient>> ConnectReads(ReadClientOptions options,
                                                 const std::filesystem::path& data_dir);

}  // namespace teatree
