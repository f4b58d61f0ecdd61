#include "teatree/read/http_read_server.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "teatree/bus/model_registry.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/request_queue.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/common/net.h"
#include "teatree/common/table_format.h"
#include "teatree/read/access_tokens.h"
#include "teatree/read/connection_threads_internal.h"
#include "teatree/read/live_forwarder.h"
#include "teatree/read/metrics.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_ticket.h"
#include "teatree/read/version_wait.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

constexpr const char* kArrowStreamType = "application/vnd.apache.arrow.stream";
int HttpStatusOf(const Status& status) {
  // A min_version that did not come within wait_ms: try again later.
  if (FailureKindOf(status) == FailureKind::kUnavailable) return 503;
  if (status.IsKeyError()) return 404;
  if (status.IsCapacityError()) return 413;
  if (status.IsInvalid() || status.IsTypeError()) return 400;
  if (status.IsCancelled()) return 499;
  if (status.IsNotImplemented()) return 501;
  return 500;
}

void SendError(httplib::Response& response, int code, const std::string& message) {
  response.status = code;
  response.set_content(DumpJson(nlohmann::json{{"error", message}}) + "\n", "application/json");
}

void SendStatus(httplib::Response& response, const Status& status) {
  SendError(response, HttpStatusOf(status), status.message());
}

void SendJson(httplib::Response& response, const nlohmann::json& body, int code = 200) {
  response.status = code;
  response.set_content(DumpJson(body) + "\n", "application/json");
}

/// Passes the body of `request` to `sink` as it arrives: refused (CapacityError) past
/// `limit`, from its Content-Length before any of it is read when it has one; an error of
/// `sink` ends the read. Any content type is taken as it is: `curl -d` sends JSON as a form.
Status StreamBody(const httplib::Request& request, const httplib::ContentReader& reader,
                  size_t limit, const std::function<Status(std::string_view)>& sink) {
  auto too_large = [&] {
    return Status::CapacityError("the body is larger than ", limit,
                                 " bytes: split it into smaller bodies");
  };
  if (request.has_header("Content-Length")) {
    const std::string length = request.get_header_value("Content-Length");
    size_t declared = 0;
    const auto [end, error] =
        std::from_chars(length.data(), length.data() + length.size(), declared);
    if (error != std::errc() || end != length.data() + length.size()) {
      return Status::Invalid("Content-Length ", Quoted(length), " is not a number");
    }
    if (declared > limit) return too_large();
  }
  size_t received = 0;
  Status status;
  const bool read = reader([&](const char* data, size_t length) {
    received += length;
    status = received > limit ? too_large() : sink(std::string_view(data, length));
    return status.ok();
  });
  ARROW_RETURN_NOT_OK(status);
  if (!read) return Status::Invalid("the body could not be read to its end");
  return Status::OK();
}

/// The body of `request`, whole (StreamBody).
Result<std::string> ReadBody(const httplib::Request& request, const httplib::ContentReader& reader,
                             size_t limit) {
  std::string body;
  ARROW_RETURN_NOT_OK(StreamBody(request, reader, limit, [&](std::string_view data) {
    body.append(data);
    return Status::OK();
  }));
  return body;
}

/// ?min_version=N&wait_ms=MS of `request` into `json` (as numbers, for ParseVersionWanted);
/// a body's own fields win. Anything but digits is refused.
Status AddVersionParams(const httplib::Request& request, nlohmann::json& json) {
  for (const char* name : {"min_version", "wait_ms"}) {
    if (!request.has_param(name) || json.contains(name)) continue;
    const std::string text = request.get_param_value(name);
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
      return Status::Invalid("the parameter ", name, "=", Quoted(text), " is not a number");
    }
    json[name] = value;
  }
  return Status::OK();
}

/// The result format an Accept header asks for: JSON unless CSV or Arrow is preferred.
ResultFormat FormatFor(const std::string& accept) {
  if (accept.find(kArrowStreamType) != std::string::npos) return ResultFormat::kArrow;
  if (accept.find("text/csv") != std::string::npos) return ResultFormat::kCsv;
  return ResultFormat::kJson;
}

/// Streams a read in a ResultFormat as the client takes it, batch by batch.
class ResultBody {
 public:
  static Result<std::shared_ptr<ResultBody>> Make(ReadStream stream, ResultFormat format) {
    auto body = std::make_shared<ResultBody>();
    body->rows_ = std::move(stream.reader);
    ARROW_ASSIGN_OR_RAISE(body->writer_, ResultWriter::Make(format, body->rows_->schema()));
    return body;
  }

  /// Sends the next batch (or the end); false when the read failed or the client left,
  /// which cuts the response (the status line is sent already) and ends the read.
  bool WriteNext(httplib::DataSink& sink) {
    std::shared_ptr<arrow::RecordBatch> batch;
    if (!rows_->ReadNext(&batch).ok()) return false;
    auto text = batch ? writer_->Write(batch) : writer_->Finish();
    if (!text.ok() || (!text->empty() && !sink.write(text->data(), text->size()))) return false;
    if (!batch) sink.done();
    return true;
  }

 private:
  std::unique_ptr<arrow::RecordBatchReader> rows_;
  std::unique_ptr<ResultWriter> writer_;
};

}  // namespace

struct HttpReadServer::Impl {
  Options options;
  ModelDirectory* models = nullptr;
  std::unique_ptr<AccessTokens> tokens;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::string url;
  std::atomic<bool> stopping{false};

  /// Whether the request's token may do `access` to `model` (every request's token is known
  /// by now: the pre-routing handler refused the others); answers 403 when not.
  bool Allowed(const httplib::Request& request, httplib::Response& response, Access access,
               const std::string& model) {
    if (!tokens) return true;
    if (tokens->Check(request.get_header_value("Authorization"), access, model) ==
        Verdict::kAllowed) {
      return true;
    }
    SendError(response, 403, ForbiddenMessage(access, model));
    return false;
  }

  /// One open streaming response of a client; its slot frees when the response is gone.
  struct StreamSlot {
    Impl* impl;
    std::string client;
    ~StreamSlot() {
      std::lock_guard lock(impl->streams_mutex);
      if (--impl->streams[client] == 0) impl->streams.erase(client);
    }
  };
  // State below is protected by streams_mutex.
  std::mutex streams_mutex;
  std::map<std::string, int> streams;  // Open streaming responses by client address.

  /// A slot for one more streaming response of the client of `request`; refuses with 429
  /// (and null) when it has max_streams_per_client open already.
  std::shared_ptr<StreamSlot> TakeStream(const httplib::Request& request,
                                         httplib::Response& response) {
    {
      std::lock_guard lock(streams_mutex);
      int& open = streams[request.remote_addr];
      if (open >= options.http.max_streams_per_client) {
        SendError(response, 429,
                  "this client has " + std::to_string(open) +
                      " streams open already: close one, or wait for it to end");
        return nullptr;
      }
      ++open;
    }
    // Made in place: a copy would free the slot twice.
    return std::shared_ptr<StreamSlot>(new StreamSlot{this, request.remote_addr});
  }

  Result<nlohmann::json> DescribeModel(const std::string& model, bool with_versions,
                                       const std::optional<VersionWanted>& wanted = {}) {
    ARROW_ASSIGN_OR_RAISE(
        auto reads, ReadsAtLeast(*models, model, wanted, VersionSource::kServed, options.nats));
    ARROW_ASSIGN_OR_RAISE(auto reader, reads->At(std::nullopt));
    int64_t version = 0;
    ARROW_ASSIGN_OR_RAISE(auto tables, reader->ListTables(&version));
    nlohmann::json json{
        {"model", model}, {"version", version}, {"tables", nlohmann::json::array()}};
    for (const auto& table : tables) {
      json["tables"].push_back({{"name", table.name}, {"rows", table.rows}});
    }
    if (with_versions) {
      ARROW_ASSIGN_OR_RAISE(auto files, reads->Versions());
      json["versions"] = nlohmann::json::array();
      for (const auto& file : files) {
        json["versions"].push_back({{"version", file.version}, {"bytes", file.bytes}});
      }
      const std::string live = models->LiveEndpoint(model);
      if (!live.empty()) json["live_endpoint"] = live;
    }
    return json;
  }

  void Query(const httplib::Request& request, httplib::Response& response,
             const httplib::ContentReader& reader) {
    const std::string model = request.matches[1];
    if (!Allowed(request, response, Access::kRead, model)) return;
    auto text = ReadBody(request, reader, std::min(options.http.max_body_bytes, kMaxTicketBytes));
    if (!text.ok()) return SendStatus(response, text.status());
    auto parsed = ParseJson(*text, "the body", {.max_bytes = kMaxTicketBytes, .max_depth = 64});
    if (!parsed.ok() || !parsed->is_object()) {
      return SendError(
          response, 400,
          std::string(R"(the body must be a JSON object such as {"sql": "SELECT ..."})") +
              (parsed.ok() ? "" : ": " + parsed.status().message()));
    }
    nlohmann::json& body = *parsed;
    if (body.contains("model") && body["model"] != model) {
      return SendError(response, 400, "the body names another model than the path");
    }
    body["model"] = model;
    if (Status params = AddVersionParams(request, body); !params.ok()) {
      return SendStatus(response, params);
    }
    auto ticket = ReadTicket::Parse(DumpJson(body));
    if (!ticket.ok()) return SendStatus(response, ticket.status());
    // Taken before the read: a read waiting for its min_version holds this connection's
    // thread, and no client may hold more of them than of streams.
    auto slot = TakeStream(request, response);
    if (!slot) return;
    auto stream = [&]() -> Result<ReadStream> {
      if (options.live != nullptr) {
        ARROW_ASSIGN_OR_RAISE(
            auto forwarded, options.live->Read(*ticket, request.get_header_value("Authorization")));
        if (forwarded) return std::move(*forwarded);
      }
      ARROW_ASSIGN_OR_RAISE(auto reads, ReadsAtLeast(*models, model, ticket->min_version,
                                                     VersionSource::kServed, options.nats));
      ARROW_ASSIGN_OR_RAISE(auto reader, reads->At(ticket->at_version));
      return reader->Read({.sql = ticket->sql,
                           .function = ticket->function,
                           .args = ticket->args,
                           .limits = options.limits});
    }();
    if (!stream.ok()) {
      Metrics::Process().CountRead("http", "refused");
      return SendStatus(response, stream.status());
    }
    response.set_header("Teatree-Version", std::to_string(stream->version));
    const ResultFormat format = FormatFor(request.get_header_value("Accept"));
    auto result = ResultBody::Make(std::move(*stream), format);
    if (!result.ok()) return SendStatus(response, result.status());
    Metrics::Process().CountRead("http", "ok");
    const char* type = format == ResultFormat::kArrow ? kArrowStreamType
                       : format == ResultFormat::kCsv ? "text/csv"
                                                      : "application/json";
    response.set_chunked_content_provider(
        type, [result = *result, slot](size_t, httplib::DataSink& sink) {
          return result->WriteNext(sink);
        });
  }

  void Submit(const httplib::Request& request, httplib::Response& response,
              const httplib::ContentReader& reader) {
    const std::string model = request.matches[1];
    if (!Allowed(request, response, Access::kSubmit, model)) return;
    if (options.queue == nullptr) {
      return SendError(response, 503, "this server has no request queue: submit to teatree serve");
    }
    auto body = ReadBody(request, reader, options.http.max_body_bytes);
    if (!body.ok()) return SendStatus(response, body.status());
    nlohmann::json accepted = nlohmann::json::array();
    std::istringstream lines(*body);
    std::vector<Request> requests;
    int number = 0;
    for (std::string line; std::getline(lines, line);) {
      ++number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      // A line without "model" is for the model in the path.
      auto json = ParseJson(line, "the request", {.max_depth = kMaxRequestJsonDepth})
                      .ValueOr(nlohmann::json());
      if (json.is_object() && !json.contains("model")) json["model"] = model;
      auto decoded = DecodeRequest(json.is_object() ? DumpJson(json) : line);
      if (decoded.ok() && decoded->model != model) {
        decoded = Status::Invalid("request ", decoded->request_id, " is for model ", decoded->model,
                                  ", not ", model);
      }
      // All or nothing: one bad line refuses the whole body, before anything is queued.
      if (!decoded.ok()) {
        return SendError(response, 400,
                         "line " + std::to_string(number) + ": " + decoded.status().message());
      }
      requests.push_back(std::move(*decoded));
    }
    if (requests.empty()) return SendError(response, 400, "no request in the body");
    if (options.registry != nullptr) {
      // A body with a create_table may make the model; any other body needs it to exist.
      auto creates = std::find_if(requests.begin(), requests.end(),
                                  [](const Request& one) { return one.op == Op::kCreateTable; });
      Status admitted = options.registry->Admit(model, creates != requests.end(),
                                                creates != requests.end() ? creates->engine : "");
      if (!admitted.ok()) return SendStatus(response, admitted);
    }
    for (const auto& one : requests) {
      auto ack = options.queue->Submit(model, one.request_id, EncodeRequest(one));
      if (!ack.ok()) return SendStatus(response, ack.status());
      accepted.push_back({{"request_id", one.request_id},
                          {"sequence", ack->sequence},
                          {"duplicate", ack->duplicate}});
    }
    SendJson(response, {{"accepted", accepted}}, 202);
  }

  /// The body, as it is, into the model's staging area: 201 {"staged": id, "bytes": N}.
  void Upload(const httplib::Request& request, httplib::Response& response,
              const httplib::ContentReader& reader) {
    const std::string model = request.matches[1];
    if (!Allowed(request, response, Access::kSubmit, model)) return;
    auto upload = BeginUpload(options.uploads, model);
    if (!upload.ok()) return SendStatus(response, upload.status());
    Status streamed =
        StreamBody(request, reader, static_cast<size_t>(options.uploads.limits.max_bytes),
                   [&](std::string_view data) { return (*upload)->Write(data); });
    if (!streamed.ok()) return SendStatus(response, streamed);
    auto staged = (*upload)->Finish();
    if (!staged.ok()) return SendStatus(response, staged.status());
    spdlog::info("model {}: staged upload {} ({} bytes)", model, staged->id, staged->bytes);
    SendJson(response, {{"staged", staged->id}, {"bytes", staged->bytes}}, 201);
  }

  void Notifications(const httplib::Request& request, httplib::Response& response) {
    if (options.nats == nullptr) {
      return SendError(response, 503, "this server has no NATS connection for notifications");
    }
    const std::string model = request.matches[1];
    if (!Allowed(request, response, Access::kRead, model)) return;
    // A client that reconnects sends the id of the last event it saw and gets what followed;
    // a new one starts with the next notification.
    ReplayFrom from{.only_new = true};
    const std::string last = request.has_header("Last-Event-ID")
                                 ? request.get_header_value("Last-Event-ID")
                                 : request.get_param_value("after");
    if (!last.empty()) {
      if (last.size() > 19 || !std::all_of(last.begin(), last.end(), ::isdigit)) {
        return SendError(response, 400,
                         "Last-Event-ID (or ?after=) must be the id of an event this stream "
                         "sent, a number; got " +
                             Quoted(last));
      }
      from.after_sequence = std::stoull(last);
    }
    auto subscription = NoteSubscription::Replay(*options.nats, NoteSubject(model), from);
    if (!subscription.ok()) return SendStatus(response, subscription.status());
    std::shared_ptr<NoteSubscription> notes = std::move(*subscription);
    auto slot = TakeStream(request, response);
    if (!slot) return;
    response.set_header("Cache-Control", "no-cache");
    response.set_chunked_content_provider(
        "text/event-stream", [this, notes, slot](size_t, httplib::DataSink& sink) {
          if (stopping) return false;
          auto note = notes->Next(std::chrono::seconds(1));
          if (!note.ok() || stopping) return false;
          std::string event = ": keep-alive\n\n";  // Also finds out when the client left.
          if (*note) {
            auto json = ParseJson((*note)->body, "a notification").ValueOr(nlohmann::json());
            const std::string type = json.is_object() ? json.value("type", "note") : "note";
            event = "id: " + std::to_string((*note)->sequence) + "\nevent: " + type +
                    "\ndata: " + (*note)->body + "\n\n";
          }
          return sink.write(event.data(), event.size());
        });
  }

  void Route() {
    server->set_pre_routing_handler(
        [this](const httplib::Request& request, httplib::Response& response) {
          // The library reads the bodies of POSTs it has no reading handler for, whole: none
          // are taken (an upload's body may be as long as the library allows).
          static const std::regex kPosts(R"(/v1/models/[^/]+/(query|requests|uploads))");
          const bool reads = request.method == "GET" || request.method == "HEAD";
          if (!reads && !(request.method == "POST" && std::regex_match(request.path, kPosts))) {
            SendError(response, request.method == "POST" ? 404 : 405,
                      "no such endpoint: POST goes to /v1/models/{model}/query, /requests or "
                      "/uploads; everything else is a GET");
            return httplib::Server::HandlerResponse::Handled;
          }
          if (!tokens || request.path == "/healthz" || request.path == "/readyz") {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          if (tokens->Accepts(request.get_header_value("Authorization"))) {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          SendError(response, 401, kUnauthenticatedMessage);
          return httplib::Server::HandlerResponse::Handled;
        });
    server->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain");
    });
    server->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
      const bool ready = !options.ready || options.ready();
      response.status = ready ? 200 : 503;
      response.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
    });
    server->Get("/metrics", [this](const httplib::Request& request, httplib::Response& response) {
      if (!Allowed(request, response, Access::kAdmin, "")) return;
      response.set_content(Metrics::Process().Render(), "text/plain; version=0.0.4");
    });
    server->Get("/v1/models", [this](const httplib::Request& request, httplib::Response& response) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& model : models->Models()) {
        // Only the models this token may read.
        if (tokens && tokens->Check(request.get_header_value("Authorization"), Access::kRead,
                                    model) != Verdict::kAllowed) {
          continue;
        }
        auto described = DescribeModel(model, false);
        if (described.ok()) list.push_back(*described);
      }
      SendJson(response, {{"models", list}});
    });
    server->Get(R"(/v1/models/([^/]+))",
                [this](const httplib::Request& request, httplib::Response& response) {
                  if (!Allowed(request, response, Access::kRead, request.matches[1])) return;
                  nlohmann::json params = nlohmann::json::object();
                  std::optional<VersionWanted> wanted;
                  Status parsed = AddVersionParams(request, params);
                  if (parsed.ok()) parsed = ParseVersionWanted(params, wanted);
                  if (!parsed.ok()) return SendStatus(response, parsed);
                  auto slot = wanted ? TakeStream(request, response) : nullptr;
                  if (wanted && !slot) return;
                  auto described = DescribeModel(request.matches[1], true, wanted);
                  if (!described.ok()) return SendStatus(response, described.status());
                  SendJson(response, *described);
                });
    // Bodies are read by the handlers, bounded as they arrive, never whole by the library.
    server->Post(
        R"(/v1/models/([^/]+)/query)",
        [this](const httplib::Request& request, httplib::Response& response,
               const httplib::ContentReader& reader) { Query(request, response, reader); });
    server->Post(
        R"(/v1/models/([^/]+)/requests)",
        [this](const httplib::Request& request, httplib::Response& response,
               const httplib::ContentReader& reader) { Submit(request, response, reader); });
    server->Post(
        R"(/v1/models/([^/]+)/uploads)",
        [this](const httplib::Request& request, httplib::Response& response,
               const httplib::ContentReader& reader) { Upload(request, response, reader); });
    server->Get(R"(/v1/models/([^/]+)/notifications)",
                [this](const httplib::Request& request, httplib::Response& response) {
                  Notifications(request, response);
                });
  }
};

HttpReadServer::HttpReadServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpReadServer::~HttpReadServer() {
  impl_->stopping = true;  // Event streams end; then the server's threads can.
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<HttpReadServer>> HttpReadServer::Start(const Options& options,
                                                              ModelDirectory& models) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->models = &models;
  const auto& listen = options.listen;
  if (listen.tls_cert.empty() != listen.tls_key.empty()) {
    return Status::Invalid("TLS needs both a certificate and a key (--tls-cert, --tls-key)");
  }
  const bool tls = !listen.tls_cert.empty();
  if (tls) {
    impl->server =
        std::make_unique<httplib::SSLServer>(listen.tls_cert.c_str(), listen.tls_key.c_str());
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  if (!impl->server->is_valid()) {
    return Status::Invalid("cannot serve HTTPS with ", listen.tls_cert.string(), " and ",
                           listen.tls_key.string(), ": check the certificate and key");
  }
  if (!listen.token_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(impl->tokens, AccessTokens::Load(listen.token_file));
  }
  // A connection holds a thread for as long as it lasts: one each, not a fixed pool.
  impl->server->new_task_queue = [max = options.http.max_connections] {
    return new ConnectionThreads(max);
  };
  // Each handler bounds its own body: a request's or query's by max_body_bytes, an upload's
  // by the staging limits.
  impl->server->set_payload_max_length(std::max<size_t>(
      options.http.max_body_bytes, options.uploads.data_dir.empty()
                                       ? 0
                                       : static_cast<size_t>(options.uploads.limits.max_bytes)));
  impl->server->set_read_timeout(options.http.io_timeout);
  impl->server->set_write_timeout(options.http.io_timeout);
  impl->server->set_keep_alive_timeout(5);
  impl->server->set_keep_alive_max_count(1000);
  impl->Route();
  int port = listen.port;
  if (port == 0) {
    port = impl->server->bind_to_any_port(listen.host);
  } else if (!impl->server->bind_to_port(listen.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return Status::IOError("cannot listen for HTTP on ", listen.host, ":", listen.port,
                           ": is the port taken? choose another with --http-port");
  }
  impl->url = std::string(tls ? "https://" : "http://") +
              AdvertisedHost(listen.host, listen.advertise_host) + ":" + std::to_string(port);
  httplib::Server* server = impl->server.get();
  // Bound and listening already: connections wait in the backlog until the loop accepts.
  impl->thread = std::thread([server] { server->listen_after_bind(); });
  return std::unique_ptr<HttpReadServer>(new HttpReadServer(std::move(impl)));
}

const std::string& HttpReadServer::url() const { return impl_->url; }

}  // namespace teatree
