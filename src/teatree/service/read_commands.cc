#include "teatree/service/read_commands.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "teatree/archive/archive.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/json_text.h"
#include "teatree/manager/commands.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/model_directory.h"

namespace teatree {

Status RunQuery(const QueryOptions& options, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, ConnectReads(options.read, options.data_dir));
  ARROW_ASSIGN_OR_RAISE(auto result, client->Query(options.ticket));
  if (options.output_format == OutputFormat::kJson) {
    ARROW_ASSIGN_OR_RAISE(auto rows, WriteResult(*result.table, ResultFormat::kJson));
    ARROW_ASSIGN_OR_RAISE(auto parsed, ParseJson(rows, "the result",
                                                 {.max_bytes = rows.size() + 1, .max_depth = 512}));
    out << DumpJson(nlohmann::json{
               {"model", options.ticket.model}, {"version", result.version}, {"rows", parsed}})
        << std::endl;
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto text, WriteResult(*result.table, options.format));
  out << text;
  if (options.format == ResultFormat::kTable) {
    out << "(model " << options.ticket.model << " at version " << result.version << ")\n";
  }
  out.flush();
  return Status::OK();
}

Status RunPullVersion(const PullVersionOptions& options, std::ostream& out,
                      std::ostream& progress) {
  if (options.output.empty()) return Status::Invalid("pull needs -o FILE.duckdb");
  ARROW_ASSIGN_OR_RAISE(auto client, ConnectReads(options.read, options.data_dir));
  ARROW_ASSIGN_OR_RAISE(auto pulled, client->Pull(options.model, options.version, options.output,
                                                  &progress, options.min_version));
  if (options.output_format == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{{"model", options.model},
                                   {"path", options.output.string()},
                                   {"version", pulled.version},
                                   {"bytes", pulled.bytes},
                                   {"sha256", pulled.sha256}})
        << std::endl;
    return Status::OK();
  }
  out << "pulled model " << options.model << " version " << pulled.version << " (" << pulled.bytes
      << " bytes, sha256 " << pulled.sha256.substr(0, 12) << "… verified) to "
      << options.output.string() << std::endl;
  return Status::OK();
}

namespace {

/// The model's notifications, when a NATS server can be found; null otherwise.
std::unique_ptr<NoteSubscription> SubscribeToVersions(const ReaderOptions& options,
                                                      std::unique_ptr<NatsConnection>& nats) {
  NatsClientOptions nats_options = options.nats;
  if (nats_options.url.empty()) {
    auto served = ServedNatsUrl(options.data_dir);
    if (!served.ok()) return nullptr;
    nats_options.url = *served;
  }
  auto connected = NatsConnection::Connect(nats_options);
  if (!connected.ok()) {
    spdlog::warn("reader: no notifications ({}); looking for new versions every second",
                 connected.status().message());
    return nullptr;
  }
  nats = std::move(*connected);
  auto notes = NoteSubscription::Live(*nats, NoteSubject(options.model));
  return notes.ok() ? std::move(*notes) : nullptr;
}

/// Fetches the archive's newest version of the model into the replica's directory when it
/// is newer than `have`, and removes the replica's older files beyond `keep`.
Status FetchNewest(const ReaderOptions& options, Archive& archive, int64_t have) {
  ARROW_ASSIGN_OR_RAISE(auto versions, archive.ListVersions(options.model));
  if (versions.empty() || versions.back() <= have) return Status::OK();
  std::ostringstream quiet;
  ARROW_RETURN_NOT_OK(
      RunPull({.archive_url = options.from_archive,
               .model = options.model,
               .version = versions.back(),
               .output = VersionFilePath(options.data_dir, options.model, versions.back())},
              quiet));
  ARROW_ASSIGN_OR_RAISE(auto local, ListVersionFiles(options.data_dir, options.model));
  for (size_t i = 0; i + options.keep_versions < local.size(); ++i) {
    std::error_code ignored;  // A read still on it keeps it open until it ends.
    std::filesystem::remove(VersionFilePath(options.data_dir, options.model, local[i]), ignored);
  }
  return Status::OK();
}

}  // namespace

Status RunReader(const ReaderOptions& options, const std::atomic<bool>& stop, std::ostream& out) {
  ModelReadsOptions reads_options{.data_dir = options.data_dir,
                                  .model = options.model,
                                  .reader = {.memory_limit = options.read.memory_limit},
                                  .refresh_interval = std::chrono::seconds(1)};
  std::unique_ptr<Archive> archive;
  if (!options.from_archive.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(
        VersionFilePath(options.data_dir, options.model, 1).parent_path(), ec);
    ARROW_ASSIGN_OR_RAISE(archive, Archive::Open(options.from_archive));
    Status fetched = FetchNewest(options, *archive, 0);
    if (!fetched.ok()) spdlog::warn("reader: {}", fetched.message());
  }
  ARROW_ASSIGN_OR_RAISE(auto reads, ModelReads::Replica(reads_options));
  SingleModel model(std::move(reads));
  // Ready once there is a version file to serve.
  auto ready = [&model] {
    auto published = model.reads().PublishedVersion();
    return published.ok() && *published > 0;
  };
  ARROW_ASSIGN_OR_RAISE(auto servers, ReadServers::Start(options.read, model, {.ready = ready}));
  ARROW_ASSIGN_OR_RAISE(int64_t version, model.reads().Refresh());
  std::unique_ptr<NatsConnection> nats;
  auto notes = SubscribeToVersions(options, nats);
  out << "teatree reader: model " << options.model << " version " << version << "\n"
      << "  flight: " << servers->flight_url() << "\n"
      << "  http:   " << servers->http_url() << "\n"
      << "  follows new versions " << (notes ? "as they are notified" : "every second")
      << "; Ctrl-C stops." << std::endl;
  // A version reaches the archive a little after its notification: an archive is also
  // looked at every few seconds.
  constexpr auto kArchivePoll = std::chrono::seconds(3);
  auto last_fetch = std::chrono::steady_clock::now();
  while (!stop) {
    bool published = false;
    if (notes) {
      auto note = notes->Next(std::chrono::milliseconds(200));
      if (note.ok() && *note) {
        auto json = ParseJson((*note)->body, "a notification").ValueOr(nlohmann::json());
        published = json.is_object() && json.value("type", "") == "version_published";
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(archive ? 200 : 1000));
      published = !archive;
    }
    if (archive && (published || std::chrono::steady_clock::now() - last_fetch > kArchivePoll)) {
      last_fetch = std::chrono::steady_clock::now();
      if (Status fetched = FetchNewest(options, *archive, version); !fetched.ok()) {
        spdlog::warn("reader: {}", fetched.message());
      }
      published = true;
    }
    if (!published) continue;
    auto now = model.reads().Refresh();
    if (!now.ok()) {
      spdlog::warn("reader: {}", now.status().message());
    } else if (*now != version) {
      version = *now;
      spdlog::info("reader: model {} now serves version {}", options.model, version);
    }
  }
  out << "teatree reader: stopped" << std::endl;
  return Status::OK();
}

}  // namespace teatree
