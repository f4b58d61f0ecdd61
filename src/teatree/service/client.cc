#include "teatree/service/client.h"

#include <arrow/api.h>
#include <arrow/flight/types.h>

#include <fstream>
#include <sstream>

#include "teatree/bus/model_registry.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/failure.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/request/codec.h"
#include "teatree/service/notes.h"

namespace teatree {

namespace {

/// A URL `teatree serve` wrote into <data_dir>/serve.json.
Result<std::string> ServedUrl(const std::filesystem::path& data_dir, const char* key,
                              const char* flag_hint) {
  const auto path = data_dir / "serve.json";
  auto text = ReadFileToString(path);
  auto json =
      text.ok() ? ParseJson(*text, "serve.json").ValueOr(nlohmann::json()) : nlohmann::json();
  if (!json.is_object() || !json.contains(key) || !json[key].is_string()) {
    return Unavailable("no Teatree server found in ", data_dir.string(), " (", path.string(),
                       " is missing): start one with `teatree serve --data-dir ", data_dir.string(),
                       "`, or give ", flag_hint);
  }
  return json[key].get<std::string>();
}

/// Whether a read server said it waited for a version in vain (and may be asked again).
bool IsTimedOut(const Status& status) {
  auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(status);
  return detail && detail->code() == arrow::flight::FlightStatusCode::TimedOut;
}

}  // namespace

Result<std::string> ServedNatsUrl(const std::filesystem::path& data_dir) {
  return ServedUrl(data_dir, "nats_url", "--nats nats://host:port");
}

Result<std::string> ServedFlightUrl(const std::filesystem::path& data_dir) {
  return ServedUrl(data_dir, "flight_url", "--url grpc://host:port");
}

Result<std::string> ServedHttpUrl(const std::filesystem::path& data_dir) {
  return ServedUrl(data_dir, "http_url", "the server's HTTP URL");
}

Result<std::unique_ptr<ReadClient>> ConnectReads(ReadClientOptions options,
                                                 const std::filesystem::path& data_dir) {
  if (options.url.empty()) {
    ARROW_ASSIGN_OR_RAISE(options.url, ServedFlightUrl(data_dir));
  }
  return ReadClient::Connect(options);
}

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  NatsClientOptions nats_options = options.nats;
  if (nats_options.url.empty()) {
    ARROW_ASSIGN_OR_RAISE(nats_options.url, ServedNatsUrl(options.data_dir));
  }
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(nats_options));
  ARROW_ASSIGN_OR_RAISE(auto queue, RequestQueue::Make(*nats, options.queue));
  ARROW_RETURN_NOT_OK(EnsureNoteStream(*nats));
  ARROW_ASSIGN_OR_RAISE(auto registry, ModelRegistry::Open(*nats));
  return std::unique_ptr<Client>(
      new Client(options, std::move(nats), std::move(queue), std::move(registry)));
}

Client::Client(ClientOptions options, std::unique_ptr<NatsConnection> nats,
               std::unique_ptr<RequestQueue> queue, std::unique_ptr<ModelRegistry> registry)
    : options_(std::move(options)),
      nats_(std::move(nats)),
      queue_(std::move(queue)),
      registry_(std::move(registry)) {}

Client::~Client() = default;

Result<PublishAck> Client::Submit(const Request& request) {
  ARROW_RETURN_NOT_OK(
      registry_->Admit(request.model, request.op == Op::kCreateTable, request.engine));
  std::string body = EncodeRequest(request);
  if (static_cast<int64_t>(body.size()) > queue_->options().max_body_bytes &&
      (!request.rows.is_null() || !request.rows_ipc.empty())) {
    // Too large for the queue: the rows go to the staging area and the request names them.
    Request staged = request;
    std::istringstream rows(request.rows_ipc.empty() ? DumpJson(request.rows) : request.rows_ipc);
    const int64_t bytes = static_cast<int64_t>(rows.view().size());
    ARROW_ASSIGN_OR_RAISE(auto upload, Upload(request.model, rows, bytes));
    staged.source =
        SourceRef{.format = request.rows_ipc.empty() ? "json" : "arrow", .staged = upload.id};
    staged.rows = nullptr;
    staged.rows_ipc.clear();
    body = EncodeRequest(staged);
  }
  return queue_->Submit(request.model, request.request_id, body);
}

Result<StagedFile> Client::Upload(const std::string& model, std::istream& in, int64_t bytes,
                                  std::ostream* progress) {
  // A connection of its own: Submit is thread-safe, the read client is not.
  ARROW_ASSIGN_OR_RAISE(auto reads, ConnectReads(options_.read, options_.data_dir));
  return reads->Upload(model, in, bytes, progress);
}

Result<Outcome> Client::Wait(const std::string& model, const std::string& request_id,
                             std::chrono::milliseconds timeout) {
  const std::string subject = RequestNoteSubject(model, request_id);
  auto replay = NoteSubscription::Replay(*nats_, subject);
  if (!replay.ok()) {
    // A restarted server has lost the notification stream: make it again.
    ARROW_RETURN_NOT_OK(EnsureNoteStream(*nats_));
    replay = NoteSubscription::Replay(*nats_, subject);
  }
  ARROW_ASSIGN_OR_RAISE(auto notes, std::move(replay));
  return Collect(*notes, model, request_id, timeout);
}

Result<Outcome> Client::SubmitAndWait(const Request& request, std::chrono::milliseconds timeout) {
  // Listening before submitting cannot miss the outcome (the subscription reaches the server
  // before the request does), and hears it sooner than a replay of the stream would.
  ARROW_ASSIGN_OR_RAISE(
      auto notes,
      NoteSubscription::Live(*nats_, RequestNoteSubject(request.model, request.request_id)));
  ARROW_ASSIGN_OR_RAISE(auto ack, Submit(request));
  // Stored before, within the duplicate window: its outcome may be out already.
  if (ack.duplicate) return Wait(request.model, request.request_id, timeout);
  return Collect(*notes, request.model, request.request_id, timeout);
}

Result<Outcome> Client::Collect(NoteSubscription& notes, const std::string& model,
                                const std::string& request_id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<nlohmann::json> pages;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    ARROW_ASSIGN_OR_RAISE(auto note, notes.Next(left));
    if (!note) break;
    auto json = ParseJson(note->body, "a notification").ValueOr(nlohmann::json());
    if (!json.is_object()) continue;
    const std::string type = json.value("type", "");
    if (type == "page") {
      pages.push_back(std::move(json));
      continue;
    }
    if (type != "outcome") continue;
    Outcome outcome{.note = std::move(json)};
    if (outcome.note.value("pages", 0) > 0) {
      ARROW_ASSIGN_OR_RAISE(outcome.result, AssemblePages(pages));
    }
    return outcome;
  }
  return Unavailable("no outcome for request ", request_id, " of model ", model, " within ",
                     timeout.count(),
                     " ms: is a manager running for it (teatree status)? The request is "
                     "queued and will be applied when one is");
}

Result<ReadClient*> Client::reads() {
  if (!reads_) {
    ARROW_ASSIGN_OR_RAISE(reads_, ConnectReads(options_.read, options_.data_dir));
  }
  return reads_.get();
}

Result<QueryResult> Client::Query(const ReadTicket& ticket) {
  ARROW_ASSIGN_OR_RAISE(auto reads, this->reads());
  return reads->Query(ticket);
}

Result<PulledVersion> Client::Pull(const std::string& model, std::optional<int64_t> version,
                                   const std::filesystem::path& output, std::ostream* progress,
                                   const std::optional<VersionWanted>& wanted) {
  ARROW_ASSIGN_OR_RAISE(auto reads, this->reads());
  return reads->Pull(model, version, output, progress, wanted);
}

Result<int64_t> Client::WaitPublished(const std::string& model, int64_t version,
                                      std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  ARROW_ASSIGN_OR_RAISE(auto reads, this->reads());
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    // The server waits at most kMaxVersionWait per call: ask again while time is left.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const VersionWanted wanted{
        .min_version = version,
        .wait = std::clamp(left, std::chrono::milliseconds(0), kMaxVersionWait)};
    auto versions = reads->Versions(model, wanted);
    if (versions.ok() && !versions->empty() && versions->back().version >= version) {
      return versions->back().version;
    }
    if (Clock::now() >= deadline) {
      if (!versions.ok()) return versions.status();
      return Unavailable("version ", version, " of model ", model, " was not published within ",
                         timeout.count(), " ms");
    }
    if (!versions.ok() && !IsTimedOut(versions.status())) return versions.status();
  }
}

Result<std::unique_ptr<NoteSubscription>> Client::Watch(const std::string& model,
                                                        const ReplayFrom& from) {
  return NoteSubscription::Replay(*nats_, NoteSubject(model), from);
}

Result<std::unique_ptr<NoteSubscription>> Client::Watch(const std::string& model) {
  return NoteSubscription::Live(*nats_, NoteSubject(model));
}

}  // namespace teatree
