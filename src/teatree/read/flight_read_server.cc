#include "teatree/read/flight_read_server.h"

#include <arrow/api.h>
#include <arrow/flight/api.h>
#include <arrow/util/key_value_metadata.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "teatree/common/failure.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/net.h"
#include "teatree/common/sql_quote.h"
#include "teatree/engine/arrow/version_reads.h"
#include "teatree/read/access_tokens.h"
#include "teatree/read/live_forwarder.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_ticket.h"
#include "teatree/read/uploads.h"
#include "teatree/read/version_wait.h"

namespace teatree {
namespace flight = arrow::flight;
namespace {

constexpr int64_t kPullChunkBytes = int64_t{4} << 20;

/// Refuses every call without a valid bearer token.
class TokenCheckFactory final : public flight::ServerMiddlewareFactory {
 public:
  explicit TokenCheckFactory(std::shared_ptr<const AccessTokens> tokens)
      : tokens_(std::move(tokens)) {}
  Status StartCall(const flight::CallInfo&, const flight::ServerCallContext& context,
                   std::shared_ptr<flight::ServerMiddleware>*) override {
    const auto& headers = context.incoming_headers();
    auto it = headers.find("authorization");
    if (it == headers.end() || !tokens_->Accepts(it->second)) {
      return flight::MakeFlightError(flight::FlightStatusCode::Unauthenticated,
                                     kUnauthenticatedMessage);
    }
    return Status::OK();
  }

 private:
  std::shared_ptr<const AccessTokens> tokens_;  // Shared with the service, which checks rights.
};

/// A result as Flight sends it: the model version in the schema's metadata, and DuckDB's
/// 2048-row chunks gathered into batches of about kRows, so that each message carries enough
/// data to be worth its cost. A result larger than one batch gets a thread of its own that
/// reads ahead (up to kAhead batches), so that DuckDB computes the next batches while gRPC
/// sends the last; a small one (a point query) is read on the caller's thread.
class FlightBatches final : public arrow::RecordBatchReader {
 public:
  static constexpr int64_t kRows = 128 * 1024;
  static constexpr size_t kAhead = 3;

  explicit FlightBatches(ReadStream stream) : rows_(std::move(stream.reader)) {
    schema_ = rows_->schema()->WithMetadata(
        arrow::key_value_metadata({kVersionMetadataKey}, {std::to_string(stream.version)}));
  }

  ~FlightBatches() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (reader_.joinable()) reader_.join();
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    if (!started_) {
      started_ = true;
      auto first = Gather();
      if (!first.ok()) {
        finished_ = true;  // No thread runs: a later call must not wait for one.
        status_ = first.status();
        return status_;
      }
      *out = std::move(*first);
      if (*out != nullptr && (*out)->num_rows() >= kRows) {
        reader_ = std::thread([this] { ReadAhead(); });
      } else {
        finished_ = true;  // Everything fit in the first batch; no thread runs yet.
      }
      return Status::OK();
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
    if (ready_.empty()) {
      out->reset();
      return status_;
    }
    *out = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return Status::OK();
  }

 private:
  /// The next gathered batch, or null at the end.
  Result<std::shared_ptr<arrow::RecordBatch>> Gather() {
    arrow::RecordBatchVector gathered;
    int64_t rows = 0;
    while (rows < kRows) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(rows_->ReadNext(&batch));
      if (!batch) break;
      rows += batch->num_rows();
      gathered.push_back(std::move(batch));
    }
    if (gathered.size() <= 1) return gathered.empty() ? nullptr : std::move(gathered[0]);
    return arrow::ConcatenateRecordBatches(gathered);
  }

  void ReadAhead() {
    while (true) {
      auto batch = Gather();
      std::unique_lock lock(mutex_);
      if (!batch.ok() || *batch == nullptr) {
        status_ = batch.status();
        finished_ = true;
        changed_.notify_all();
        return;
      }
      ready_.push_back(std::move(*batch));
      changed_.notify_all();
      changed_.wait(lock, [&] { return ready_.size() < kAhead || stopping_; });
      if (stopping_) return;
    }
  }

  std::unique_ptr<arrow::RecordBatchReader> rows_;  // Read by the first ReadNext, then reader_.
  std::shared_ptr<arrow::Schema> schema_;
  bool started_ = false;  // Touched only by the caller's thread.
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<arrow::RecordBatch>> ready_;
  Status status_;
  bool finished_ = false;
  bool stopping_ = false;
  std::thread reader_;  // Last: starts once the above exist.
};

/// DoAction "pull": a header, then the version file in chunks, read as the client asks.
class FileResultStream final : public flight::ResultStream {
 public:
  FileResultStream(std::string header, const std::filesystem::path& file)
      : header_(std::move(header)), in_(file, std::ios::binary) {}
  Result<std::unique_ptr<flight::Result>> Next() override {
    auto result = std::make_unique<flight::Result>();
    if (!header_sent_) {
      header_sent_ = true;
      result->body = arrow::Buffer::FromString(header_);
      return result;
    }
    ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateResizableBuffer(kPullChunkBytes));
    in_.read(reinterpret_cast<char*>(buffer->mutable_data()), kPullChunkBytes);
    const auto got = in_.gcount();
    if (got <= 0) {
      if (in_.bad()) return Status::IOError("cannot read the version file");
      return nullptr;
    }
    ARROW_RETURN_NOT_OK(buffer->Resize(got));
    result->body = std::move(buffer);
    return result;
  }

 private:
  std::string header_;
  std::ifstream in_;  // Opened at once: the file may be removed later, the data stays ours.
  bool header_sent_ = false;
};

/// A failure of the server's own files while preparing a pull: logged in full here, sent to
/// the client without the server's paths (they are none of its business).
Status ServerSide(const Status& status, const std::string& model, int64_t version) {
  spdlog::error("pull of model {} version {}: {}", model, version, status.message());
  return Status(status.code(), "version " + std::to_string(version) + " of model " + model +
                                   " cannot be sent: the server failed to read or export it "
                                   "(its log says why); try again or pull another version");
}

Result<std::string> ReadChecksum(const std::filesystem::path& version_file) {
  std::ifstream in(version_file.string() + ".sha256");
  std::string hex;
  if (!(in >> hex) || hex.size() != 64) {
    // Clients read this: the file's name, not where the server keeps it.
    return Status::IOError("version file ", version_file.filename().string(),
                           " has no valid checksum: it cannot be pulled");
  }
  return hex;
}

/// The ticket a descriptor stands for: a command holds a ticket's JSON; a path is [model]
/// (its tables are listed by ListFlights) or [model, table].
Result<ReadTicket> TicketOf(const flight::FlightDescriptor& descriptor) {
  if (descriptor.type == flight::FlightDescriptor::CMD) return ReadTicket::Parse(descriptor.cmd);
  if (descriptor.path.size() != 2) {
    return Status::Invalid("a path descriptor is [model, table], got ", descriptor.path.size(),
                           " parts");
  }
  ReadTicket ticket{.model = descriptor.path[0],
                    .sql = "SELECT * FROM " + SqlIdentifier(descriptor.path[1])};
  ARROW_RETURN_NOT_OK(ReadTicket::Parse(ticket.ToJson()).status());
  return ticket;
}

/// A status as Flight clients should see it: a wait that ran out is TimedOut (a server that
/// does not answer is Unavailable already), so that clients can tell it from a refusal.
Status ToFlight(const Status& status) {
  if (FailureKindOf(status) != FailureKind::kUnavailable) return status;
  return flight::MakeFlightError(flight::FlightStatusCode::TimedOut, status.message());
}

flight::FlightEndpoint EndpointFor(const ReadTicket& ticket) {
  return flight::FlightEndpoint(flight::Ticket{ticket.ToJson()}, {}, std::nullopt, "");
}

ReadRequest RequestOf(const ReadTicket& ticket, const ReadLimits& limits) {
  return {.sql = ticket.sql, .function = ticket.function, .args = ticket.args, .limits = limits};
}

}  // namespace

class FlightReadServer::Service final : public flight::FlightServerBase {
 public:
  Service(const Options& options, ModelDirectory& models) : options_(options), models_(models) {}

  Status Begin() {
    const auto& listen = options_.listen;
    const bool tls = !listen.tls_cert.empty() && !listen.tls_key.empty();
    if (listen.tls_cert.empty() != listen.tls_key.empty()) {
      return Status::Invalid("TLS needs both a certificate and a key (--tls-cert, --tls-key)");
    }
    ARROW_ASSIGN_OR_RAISE(auto location,
                          tls ? flight::Location::ForGrpcTls(listen.host, listen.port)
                              : flight::Location::ForGrpcTcp(listen.host, listen.port));
    flight::FlightServerOptions server_options(location);
    if (tls) {
      flight::CertKeyPair pair;
      ARROW_ASSIGN_OR_RAISE(pair.pem_cert, ReadFileToString(listen.tls_cert));
      ARROW_ASSIGN_OR_RAISE(pair.pem_key, ReadFileToString(listen.tls_key));
      server_options.tls_certificates.push_back(std::move(pair));
    }
    if (!listen.token_file.empty()) {
      ARROW_ASSIGN_OR_RAISE(tokens_, AccessTokens::Load(listen.token_file));
      server_options.middleware.emplace_back("teatree-token",
                                             std::make_shared<TokenCheckFactory>(tokens_));
    }
    ARROW_RETURN_NOT_OK(Init(server_options));
    url_ = std::string(tls ? "grpc+tls://" : "grpc://") +
           AdvertisedHost(listen.host, listen.advertise_host) + ":" + std::to_string(port());
    return Status::OK();
  }

  const std::string& url() const { return url_; }

  Status ListFlights(const flight::ServerCallContext& context, const flight::Criteria*,
                     std::unique_ptr<flight::FlightListing>* listings) override {
    std::vector<flight::FlightInfo> flights;
    for (const auto& model : models_.Models()) {
      if (!Authorize(context, Access::kRead, model).ok()) continue;  // Only what it may read.
      ARROW_ASSIGN_OR_RAISE(auto reads, models_.Find(model));
      ARROW_ASSIGN_OR_RAISE(auto reader, reads->At(std::nullopt));
      ARROW_ASSIGN_OR_RAISE(auto tables, reader->ListTables());
      for (const auto& table : tables) {
        auto descriptor = flight::FlightDescriptor::Path({model, table.name});
        ARROW_ASSIGN_OR_RAISE(auto ticket, TicketOf(descriptor));
        ARROW_ASSIGN_OR_RAISE(auto schema, reader->Describe(RequestOf(ticket, options_.limits)));
        ARROW_ASSIGN_OR_RAISE(
            auto info,
            flight::FlightInfo::Make(*schema, descriptor, {EndpointFor(ticket)}, table.rows, -1));
        flights.push_back(std::move(info));
      }
    }
    *listings = std::make_unique<flight::SimpleFlightListing>(std::move(flights));
    return Status::OK();
  }

  Status GetFlightInfo(const flight::ServerCallContext& context,
                       const flight::FlightDescriptor& request,
                       std::unique_ptr<flight::FlightInfo>* info) override {
    ARROW_ASSIGN_OR_RAISE(auto ticket, TicketOf(request));
    ARROW_RETURN_NOT_OK(Authorize(context, Access::kRead, ticket.model));
    std::string live;
    ARROW_ASSIGN_OR_RAISE(auto schema, Describe(ticket, context, &live));
    flight::FlightEndpoint endpoint = EndpointFor(ticket);
    // A live read belongs to the model's manager when it runs elsewhere.
    if (!live.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto location, flight::Location::Parse(live));
      endpoint.locations.push_back(std::move(location));
    }
    ARROW_ASSIGN_OR_RAISE(auto made,
                          flight::FlightInfo::Make(*schema, request, {endpoint}, -1, -1));
    *info = std::make_unique<flight::FlightInfo>(std::move(made));
    return Status::OK();
  }

  Status GetSchema(const flight::ServerCallContext& context,
                   const flight::FlightDescriptor& request,
                   std::unique_ptr<flight::SchemaResult>* result) override {
    ARROW_ASSIGN_OR_RAISE(auto ticket, TicketOf(request));
    ARROW_RETURN_NOT_OK(Authorize(context, Access::kRead, ticket.model));
    ARROW_ASSIGN_OR_RAISE(auto schema, Describe(ticket, context, nullptr));
    ARROW_ASSIGN_OR_RAISE(*result, flight::SchemaResult::Make(*schema));
    return Status::OK();
  }

  Status DoGet(const flight::ServerCallContext& context, const flight::Ticket& request,
               std::unique_ptr<flight::FlightDataStream>* stream) override {
    ARROW_ASSIGN_OR_RAISE(auto ticket, ReadTicket::Parse(request.ticket));
    ARROW_RETURN_NOT_OK(Authorize(context, Access::kRead, ticket.model));
    if (options_.live != nullptr) {
      auto forwarded = options_.live->Read(ticket, Authorization(context));
      if (!forwarded.ok()) return ToFlight(forwarded.status());
      if (*forwarded) {
        *stream = std::make_unique<flight::RecordBatchStream>(
            std::make_shared<FlightBatches>(std::move(**forwarded)));
        return Status::OK();
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto reads, Reads(ticket.model, ticket.min_version));
    ARROW_ASSIGN_OR_RAISE(auto reader, reads->At(ticket.at_version));
    ReadRequest read = RequestOf(ticket, options_.limits);
    read.cancelled = [&context] { return context.is_cancelled(); };
    ARROW_ASSIGN_OR_RAISE(auto result, reader->Read(read));
    *stream = std::make_unique<flight::RecordBatchStream>(
        std::make_shared<FlightBatches>(std::move(result)));
    return Status::OK();
  }

  Status DoAction(const flight::ServerCallContext& context, const flight::Action& action,
                  std::unique_ptr<flight::ResultStream>* result) override {
    const auto body = ParseJson(action.body ? action.body->ToString() : "", "the action body",
                                {.max_bytes = kMaxActionBytes})
                          .ValueOr(nlohmann::json());
    if (!body.is_object() || !body.contains("model") || !body["model"].is_string()) {
      return Status::Invalid("action ", action.type, R"( needs a body {"model":"m"})");
    }
    const std::string model = body["model"].get<std::string>();
    ARROW_RETURN_NOT_OK(Authorize(context, Access::kRead, model));
    std::optional<VersionWanted> wanted;
    if (Status parsed = ParseVersionWanted(body, wanted); !parsed.ok()) {
      return parsed.WithMessage("action ", action.type, ": ", parsed.message());
    }
    ARROW_ASSIGN_OR_RAISE(auto reads, Reads(model, wanted, VersionSource::kPublished));
    if (action.type == kVersionsAction) {
      ARROW_ASSIGN_OR_RAISE(auto files, reads->Versions());
      nlohmann::json list = nlohmann::json::array();
      for (const auto& file : files) {
        list.push_back({{"version", file.version}, {"bytes", file.bytes}});
      }
      std::vector<flight::Result> results(1);
      results[0].body = arrow::Buffer::FromString(DumpJson(list));
      *result = std::make_unique<flight::SimpleResultStream>(std::move(results));
      return Status::OK();
    }
    if (action.type == kPullAction) {
      std::optional<int64_t> version;
      if (body.contains("version")) {
        if (!body["version"].is_number_integer()) {
          return Status::Invalid("pull: \"version\" must be a version number");
        }
        version = body["version"].get<int64_t>();
      }
      ARROW_ASSIGN_OR_RAISE(auto file, reads->VersionFile(version));
      // An Arrow-engine version is exported for the trip; the export goes once it is open.
      auto exported = ShippableVersionFile(file.path);
      if (!exported.ok()) return ServerSide(exported.status(), model, file.version);
      auto& shipped = *exported;
      Status streamed = [&]() -> Status {
        ARROW_ASSIGN_OR_RAISE(
            auto sha256, shipped.temporary ? Sha256File(shipped.path) : ReadChecksum(file.path));
        std::error_code ec;
        const auto bytes = std::filesystem::file_size(shipped.path, ec);
        if (ec) {
          return Status::IOError("cannot read version ", file.version, ": ", ec.message());
        }
        nlohmann::json header{{"model", reads->model()},
                              {"version", file.version},
                              {"bytes", bytes},
                              {"sha256", sha256}};
        *result = std::make_unique<FileResultStream>(DumpJson(header), shipped.path);
        return Status::OK();
      }();
      std::error_code ignored;
      if (shipped.temporary) std::filesystem::remove(shipped.path, ignored);
      return streamed.ok() ? streamed : ServerSide(streamed, model, file.version);
    }
    return Status::NotImplemented("unknown action ", action.type, ": use ", kVersionsAction, " or ",
                                  kPullAction);
  }

  /// An upload into a model's staging area (kUploadCommandKey): the bytes of metadata-only
  /// messages, in order, into one staged file; answers {"staged": id, "bytes": N}.
  Status DoPut(const flight::ServerCallContext& context,
               std::unique_ptr<flight::FlightMessageReader> reader,
               std::unique_ptr<flight::FlightMetadataWriter> writer) override {
    const auto& descriptor = reader->descriptor();
    const auto command =
        descriptor.type == flight::FlightDescriptor::CMD
            ? ParseJson(descriptor.cmd, "the DoPut command", {.max_bytes = kMaxActionBytes})
                  .ValueOr(nlohmann::json())
            : nlohmann::json();
    if (!command.is_object() || command.size() != 1 || !command.contains(kUploadCommandKey) ||
        !command[kUploadCommandKey].is_string()) {
      return Status::Invalid(
          R"(DoPut takes uploads only: a command descriptor {"upload": "<model>"} and the )"
          "file's bytes as metadata-only messages");
    }
    const std::string model = command[kUploadCommandKey].get<std::string>();
    ARROW_RETURN_NOT_OK(Authorize(context, Access::kSubmit, model));
    ARROW_ASSIGN_OR_RAISE(auto upload, BeginUpload(options_.uploads, model));
    for (;;) {
      if (context.is_cancelled()) return Status::Cancelled("the upload was cancelled");
      ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
      if (chunk.data != nullptr) {
        return Status::Invalid(
            "an upload carries the file's bytes in metadata-only messages, not record batches");
      }
      if (chunk.app_metadata == nullptr) break;  // The end of the stream.
      ARROW_RETURN_NOT_OK(upload->Write(std::string_view(*chunk.app_metadata)));
    }
    ARROW_ASSIGN_OR_RAISE(StagedFile staged, upload->Finish());
    spdlog::info("model {}: staged upload {} ({} bytes)", model, staged.id, staged.bytes);
    return writer->WriteMetadata(
        *arrow::Buffer::FromString(DumpJson({{"staged", staged.id}, {"bytes", staged.bytes}})));
  }

  Status ListActions(const flight::ServerCallContext&,
                     std::vector<flight::ActionType>* actions) override {
    *actions = {{kVersionsAction, R"(the retained version files of {"model":"m"}, once one is )"
                                  R"("min_version" or newer when the body says)"},
                {kPullAction, R"(a version file of {"model":"m","version":N}: a JSON header )"
                              "(version, bytes, sha256), then the file in chunks; with "
                              R"("min_version", once that version is published)"}};
    return Status::OK();
  }

 private:
  static std::string Authorization(const flight::ServerCallContext& context) {
    const auto& headers = context.incoming_headers();
    auto it = headers.find("authorization");
    return it == headers.end() ? "" : std::string(it->second);
  }

  /// The reads of `model` once they have `wanted` (ReadsAtLeast); a wait that ran out is a
  /// Flight TimedOut.
  Result<ModelReads*> Reads(const std::string& model, const std::optional<VersionWanted>& wanted,
                            VersionSource source = VersionSource::kServed) {
    auto reads = ReadsAtLeast(models_, model, wanted, source, options_.nats);
    if (!reads.ok()) return ToFlight(reads.status());
    return reads;
  }

  /// The schema of a read: from the model's manager when the read is live there (its URL
  /// goes to `live`), else from this server's copy.
  Result<std::shared_ptr<arrow::Schema>> Describe(const ReadTicket& ticket,
                                                  const flight::ServerCallContext& context,
                                                  std::string* live) {
    if (options_.live != nullptr) {
      auto schema = options_.live->Describe(ticket, Authorization(context));
      if (!schema.ok()) return ToFlight(schema.status());
      if (*schema) {
        if (live != nullptr) *live = options_.live->EndpointFor(ticket);
        return *schema;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto reads, Reads(ticket.model, ticket.min_version));
    ARROW_ASSIGN_OR_RAISE(auto reader, reads->At(ticket.at_version));
    return reader->Describe(RequestOf(ticket, options_.limits));
  }

  Options options_;
  /// OK when the call's token may do `access` to `model` (or no token file is in use).
  Status Authorize(const flight::ServerCallContext& context, Access access,
                   const std::string& model) const {
    if (!tokens_) return Status::OK();
    switch (tokens_->Check(Authorization(context), access, model)) {
      case Verdict::kAllowed:
        return Status::OK();
      case Verdict::kUnauthenticated:
        return flight::MakeFlightError(flight::FlightStatusCode::Unauthenticated,
                                       kUnauthenticatedMessage);
      case Verdict::kForbidden:
        break;
    }
    return flight::MakeFlightError(flight::FlightStatusCode::Unauthorized,
                                   ForbiddenMessage(access, model));
  }

  ModelDirectory& models_;
  std::string url_;
  std::shared_ptr<const AccessTokens> tokens_;  // Null without a token file.
};

FlightReadServer::FlightReadServer(std::unique_ptr<Service> service)
    : service_(std::move(service)) {}

FlightReadServer::~FlightReadServer() { Shutdown(); }

Result<std::unique_ptr<FlightReadServer>> FlightReadServer::Start(const Options& options,
                                                                  ModelDirectory& models) {
  auto service = std::make_unique<Service>(options, models);
  ARROW_RETURN_NOT_OK(service->Begin());
  return std::unique_ptr<FlightReadServer>(new FlightReadServer(std::move(service)));
}

const std::string& FlightReadServer::url() const { return service_->url(); }
int FlightReadServer::port() const { return service_->port(); }

void FlightReadServer::Shutdown() {
  if (!service_ || stopped_) return;
  stopped_ = true;
  (void)service_->Shutdown();
  (void)service_->Wait();
}

}  // namespace teatree
