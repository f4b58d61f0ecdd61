#include "teatree/read/read_client.h"

#include <arrow/api.h>
#include <arrow/flight/api.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/manager/commands.h"
#include "teatree/read/flight_client_internal.h"
#include "teatree/read/flight_read_server.h"

namespace teatree {
namespace flight = arrow::flight;

struct ReadClient::Impl {
  ReadClientOptions options;
  flight::FlightCallOptions call;
  // Clients by URL: the server asked, and the managers its endpoints point at.
  std::map<std::string, std::unique_ptr<flight::FlightClient>> clients;

  Result<flight::FlightClient*> ClientFor(const std::string& url) {
    auto& client = clients[url];
    if (!client) {
      auto connected = ConnectFlight(url, options.tls_root);
      if (!connected.ok()) {
        clients.erase(url);
        return connected.status().WithMessage("cannot reach the read server at ", url, ": ",
                                              connected.status().message());
      }
      client = std::move(connected).ValueUnsafe();
    }
    return client.get();
  }

  Result<flight::FlightClient*> Main() { return ClientFor(options.url); }

  /// Runs an action and collects its results' bodies.
  Result<std::unique_ptr<flight::ResultStream>> Act(const std::string& type,
                                                    const nlohmann::json& body) {
    ARROW_ASSIGN_OR_RAISE(auto client, Main());
    return client->DoAction(call, flight::Action{type, arrow::Buffer::FromString(DumpJson(body))});
  }
};

namespace {

/// A result with its error's message as the server said it.
template <typename T>
Result<T> Clean(Result<T> result) {
  if (!result.ok()) return WithoutTransportNoise(result.status());
  return result;
}

}  // namespace

ReadClient::ReadClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReadClient::~ReadClient() = default;

Result<std::unique_ptr<ReadClient>> ReadClient::Connect(const ReadClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (!options.token.empty()) {
    impl->call.headers.emplace_back("authorization", "Bearer " + options.token);
  }
  ARROW_RETURN_NOT_OK(impl->Main().status());
  return std::unique_ptr<ReadClient>(new ReadClient(std::move(impl)));
}

Result<QueryResult> ReadClient::Query(const ReadTicket& ticket) { return Clean(QueryRaw(ticket)); }

Result<QueryResult> ReadClient::QueryRaw(const ReadTicket& ticket) {
  ARROW_ASSIGN_OR_RAISE(auto client, impl_->Main());
  ARROW_ASSIGN_OR_RAISE(
      auto info,
      client->GetFlightInfo(impl_->call, flight::FlightDescriptor::Command(ticket.ToJson())));
  if (info->endpoints().empty()) return Status::IOError("the read server returned no endpoint");
  const flight::FlightEndpoint& endpoint = info->endpoints()[0];
  auto stream = [&]() -> Result<std::unique_ptr<flight::FlightStreamReader>> {
    if (!endpoint.locations.empty()) {
      auto elsewhere = impl_->ClientFor(endpoint.locations[0].ToString());
      auto got =
          elsewhere.ok() ? (*elsewhere)->DoGet(impl_->call, endpoint.ticket) : elsewhere.status();
      // A manager gone since the catalog named it: the server asked answers from its copy.
      if (got.ok() || !got.status().IsIOError()) return got;
    }
    return client->DoGet(impl_->call, endpoint.ticket);
  }();
  ARROW_RETURN_NOT_OK(stream.status());
  QueryResult result;
  ARROW_ASSIGN_OR_RAISE(result.table, (*stream)->ToTable());
  ARROW_ASSIGN_OR_RAISE(auto schema, (*stream)->GetSchema());
  result.version = VersionOf(*schema);
  result.table = result.table->ReplaceSchemaMetadata(nullptr);
  return result;
}

Result<std::vector<TableInfo>> ReadClient::Tables(const std::string& model) {
  ARROW_ASSIGN_OR_RAISE(auto client, impl_->Main());
  ARROW_ASSIGN_OR_RAISE(auto listing, client->ListFlights(impl_->call, {}));
  std::vector<TableInfo> tables;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto info, listing->Next());
    if (!info) break;
    const auto& path = info->descriptor().path;
    if (path.size() == 2 && path[0] == model) tables.push_back({path[1], info->total_records()});
  }
  return tables;
}

namespace {

/// An action's body: {"model"} and, with `wanted`, "min_version" and "wait_ms".
nlohmann::json ActionBody(const std::string& model, const std::optional<VersionWanted>& wanted) {
  nlohmann::json body{{"model", model}};
  if (wanted) {
    body["min_version"] = wanted->min_version;
    body["wait_ms"] = wanted->wait.count();
  }
  return body;
}

}  // namespace

Result<std::vector<VersionFileInfo>> ReadClient::Versions(
    const std::string& model, const std::optional<VersionWanted>& wanted) {
  return Clean(VersionsRaw(model, wanted));
}

Result<std::vector<VersionFileInfo>> ReadClient::VersionsRaw(
    const std::string& model, const std::optional<VersionWanted>& wanted) {
  ARROW_ASSIGN_OR_RAISE(auto results, impl_->Act(kVersionsAction, ActionBody(model, wanted)));
  ARROW_ASSIGN_OR_RAISE(auto result, results->Next());
  if (!result) return Status::IOError("the read server sent no version list");
  const auto list =
      ParseJson(result->body->ToString(), "the version list").ValueOr(nlohmann::json());
  std::vector<VersionFileInfo> versions;
  for (const auto& item : list.is_array() ? list : nlohmann::json::array()) {
    versions.push_back(
        {.version = item.value("version", int64_t{0}), .bytes = item.value("bytes", int64_t{0})});
  }
  return versions;
}

Result<PulledVersion> ReadClient::Pull(const std::string& model, std::optional<int64_t> version,
                                       const std::filesystem::path& output, std::ostream* progress,
                                       const std::optional<VersionWanted>& wanted) {
  return Clean(PullRaw(model, version, output, progress, wanted));
}

Result<PulledVersion> ReadClient::PullRaw(const std::string& model, std::optional<int64_t> version,
                                          const std::filesystem::path& output,
                                          std::ostream* progress,
                                          const std::optional<VersionWanted>& wanted) {
  nlohmann::json body = ActionBody(model, wanted);
  if (version) body["version"] = *version;
  ARROW_ASSIGN_OR_RAISE(auto results, impl_->Act(kPullAction, body));
  ARROW_ASSIGN_OR_RAISE(auto first, results->Next());
  if (!first) return Status::IOError("the read server sent nothing for the pull");
  const auto header =
      ParseJson(first->body->ToString(), "the pull header").ValueOr(nlohmann::json());
  if (!header.is_object() || !header.contains("sha256")) {
    return Status::IOError("the read server's pull header is not valid");
  }
  PulledVersion pulled{header.value("version", int64_t{0}), header.value("bytes", int64_t{0}),
                       header.value("sha256", "")};
  // Written beside `output` under a name of its own, renamed only once verified: `output` is
  // the whole file or nothing, and two pulls to one path cannot mix their bytes.
  ARROW_ASSIGN_OR_RAISE(const std::filesystem::path tmp, CreateTempFileBeside(output));
  auto download = [&]() -> Status {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IOError("cannot write ", tmp.string());
    int64_t received = 0;
    int last_percent = -1;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, results->Next());
      if (!chunk) break;
      out.write(reinterpret_cast<const char*>(chunk->body->data()), chunk->body->size());
      received += chunk->body->size();
      const int percent = pulled.bytes > 0 ? static_cast<int>(100 * received / pulled.bytes) : 100;
      if (progress != nullptr && percent / 10 != last_percent / 10) {
        *progress << "pull: " << received << " of " << pulled.bytes << " bytes (" << percent << "%)"
                  << std::endl;
        last_percent = percent;
      }
    }
    out.close();
    if (!out) return Status::IOError("cannot write ", tmp.string());
    if (received != pulled.bytes) {
      return Status::IOError("pull of model ", model, " version ", pulled.version, " ended after ",
                             received, " of ", pulled.bytes, " bytes");
    }
    return KeepVerifiedVersionFile(tmp, {model, pulled.version, pulled.sha256}, output);
  };
  Status status = download();
  std::error_code ignored;
  std::filesystem::remove(tmp, ignored);
  ARROW_RETURN_NOT_OK(status);
  return pulled;
}

Result<StagedFile> ReadClient::Upload(const std::string& model, std::istream& in, int64_t bytes,
                                      std::ostream* progress) {
  return Clean(UploadRaw(model, in, bytes, progress));
}

Result<StagedFile> ReadClient::UploadRaw(const std::string& model, std::istream& in, int64_t bytes,
                                         std::ostream* progress) {
  ARROW_ASSIGN_OR_RAISE(auto client, impl_->Main());
  ARROW_ASSIGN_OR_RAISE(auto put, client->DoPut(impl_->call,
                                                flight::FlightDescriptor::Command(DumpJson(
                                                    nlohmann::json{{kUploadCommandKey, model}})),
                                                arrow::schema({})));
  int64_t sent = 0;
  int last_percent = -1;
  while (in) {
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> chunk,
                          arrow::AllocateResizableBuffer(kUploadChunkBytes));
    in.read(reinterpret_cast<char*>(chunk->mutable_data()), kUploadChunkBytes);
    const int64_t n = in.gcount();
    if (n == 0) break;
    ARROW_RETURN_NOT_OK(chunk->Resize(n));
    // A refusal mid-way (a limit, a full disk) ends the stream: the reader says why.
    Status written = put.writer->WriteMetadata(std::move(chunk));
    if (!written.ok()) {
      (void)put.writer->Close();
      return written;
    }
    sent += n;
    const int percent = bytes > 0 ? static_cast<int>(100 * sent / bytes) : 100;
    if (progress != nullptr && percent / 10 != last_percent / 10) {
      *progress << "upload: " << sent << " of " << bytes << " bytes (" << percent << "%)"
                << std::endl;
      last_percent = percent;
    }
  }
  if (in.bad()) return Status::IOError("cannot read the file to upload");
  ARROW_RETURN_NOT_OK(put.writer->DoneWriting());
  std::shared_ptr<arrow::Buffer> answer;
  ARROW_RETURN_NOT_OK(put.reader->ReadMetadata(&answer));
  ARROW_RETURN_NOT_OK(put.writer->Close());
  const auto json =
      answer ? ParseJson(answer->ToString(), "the upload's answer").ValueOr(nlohmann::json())
             : nlohmann::json();
  if (!json.is_object() || !json.contains("staged") || !json["staged"].is_string()) {
    return Status::IOError("the server did not confirm the upload");
  }
  StagedFile staged{.id = json["staged"].get<std::string>(),
                    .bytes = json.value("bytes", int64_t{-1})};
  if (staged.bytes != sent) {
    return Status::IOError("the server stored ", staged.bytes, " of the ", sent,
                           " bytes sent: upload again");
  }
  return staged;
}

}  // namespace teatree
