#include "teatree/service/commands.h"

#include <arrow/api.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "teatree/bus/lease.h"
#include "teatree/bus/model_registry.h"
#include "teatree/bus/nats_server.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/failure.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/table_format.h"
#include "teatree/control/control_store.h"
#include "teatree/launch/process_launcher.h"
#include "teatree/read/metrics.h"
#include "teatree/read/model_directory.h"
#include "teatree/request/codec.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

/// Where each model's manager serves live reads, from the catalog (manager_endpoint), looked
/// up at most once a second per model. Thread-safe.
class CatalogEndpoints {
 public:
  explicit CatalogEndpoints(std::string control_url) : control_url_(std::move(control_url)) {}

  std::string operator()(const std::string& model) {
    constexpr auto kFresh = std::chrono::seconds(1);
    std::lock_guard lock(mutex_);
    auto& known = known_[model];
    const auto now = std::chrono::steady_clock::now();
    if (now - known.looked_up < kFresh) return known.endpoint;
    known.looked_up = now;
    if (!control_) {
      auto opened = ControlStore::Open(control_url_);
      if (!opened.ok()) return known.endpoint;
      control_ = std::move(*opened);
    }
    auto record = control_->GetModel(model);
    if (record.ok()) known.endpoint = *record ? (*record)->manager_endpoint : "";
    // A manager that records into a catalog of its own (a pod with the SQLite catalog on its
    // volume) is found through its status note, if it holds the model's lease.
    if (known.endpoint.empty() && nats_ != nullptr) known.endpoint = NotedEndpoint(model);
    return known.endpoint;
  }

  /// Also look for managers' endpoints in their status notes on `nats` (which must outlive
  /// this object's use).
  void UseNats(NatsConnection* nats) {
    std::lock_guard lock(mutex_);
    nats_ = nats;
  }

  /// Whether the catalog answers a query now (asked at most once a second).
  bool Reachable() {
    constexpr auto kFresh = std::chrono::seconds(1);
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - checked_ < kFresh) return reachable_;
    checked_ = now;
    if (!control_) {
      auto opened = ControlStore::Open(control_url_);
      if (opened.ok()) control_ = std::move(*opened);
    }
    reachable_ = control_ && control_->SchemaVersion().ok();
    return reachable_;
  }

 private:
  struct Known {
    std::string endpoint;
    std::chrono::steady_clock::time_point looked_up;
  };
  /// The Flight URL in the status note of the manager that holds `model`'s lease, or "".
  std::string NotedEndpoint(const std::string& model) {
    auto lease = Lease::Inspect(*nats_, model);
    if (!lease.ok() || !*lease) return "";
    auto note = LastNote(*nats_, ManagerStatusSubject(model));
    if (!note.ok() || !*note) return "";
    auto json = ParseJson((*note)->body, "a manager status").ValueOr(nlohmann::json());
    if (!json.is_object() || json.value("holder", "") != (*lease)->holder) return "";
    return json.value("flight_url", "");
  }

  const std::string control_url_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  NatsConnection* nats_ = nullptr;
  std::unique_ptr<ControlStore> control_;
  std::map<std::string, Known> known_;
  std::chrono::steady_clock::time_point checked_;
  bool reachable_ = false;
};

/// Holds an exclusive lock on <data_dir>/serve.lock while it lives.
class DataDirLock {
 public:
  static Result<std::unique_ptr<DataDirLock>> Take(const fs::path& data_dir) {
    const fs::path path = data_dir / "serve.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IOError("cannot open ", path.string(), ": ", strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      auto url = ServedNatsUrl(data_dir);
      return Status::AlreadyExists("another teatree serve is running on ", data_dir.string(),
                                   url.ok() ? " (NATS at " + *url + ")" : std::string(),
                                   ": stop it first, or use another --data-dir");
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
  }
  ~DataDirLock() { ::close(fd_); }

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

/// Keeps serve's private nats-server running: when it dies (kill -9, OOM), starts it again
/// on the same port and store, with backoff, so that clients, managers and the dispatcher
/// reconnect by themselves. Call Check() from the thread that started the server: its child
/// dies with that thread (PR_SET_PDEATHSIG).
class NatsSupervisor {
 public:
  explicit NatsSupervisor(NatsServer* server) : server_(server) {}

  /// False while the server is down.
  bool up() const { return up_; }

  void Check() {
    if (server_ == nullptr || server_->process().Running()) return;
    const auto now = std::chrono::steady_clock::now();
    if (up_) {
      spdlog::error("serve: nats-server (port {}) exited; restarting it", server_->port());
      up_ = false;
      delay_ = std::chrono::milliseconds(100);
    }
    if (now < retry_at_) return;
    if (Status restarted = server_->Restart(); !restarted.ok()) {
      spdlog::error("serve: nats-server did not restart ({}); retrying in {} ms",
                    restarted.message(), delay_.count());
      retry_at_ = now + delay_;
      delay_ = std::min<std::chrono::milliseconds>(delay_ * 2, std::chrono::seconds(10));
      return;
    }
    spdlog::info("serve: nats-server is back on port {}", server_->port());
    up_ = true;
  }

 private:
  NatsServer* server_;
  std::atomic<bool> up_{true};
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds delay_{100};
};

std::string NewRequestId() {
  static std::mt19937_64 random(std::random_device{}());
  std::ostringstream id;
  id << "cli-" << std::hex << random();
  return id.str();
}

/// One line about an outcome note, for people.
std::string OutcomeLine(const nlohmann::json& note) {
  std::ostringstream line;
  line << std::left << std::setw(24) << note.value("request_id", "") << " " << std::setw(12)
       << note.value("op", "") << " " << std::setw(9) << note.value("status", "");
  if (note.contains("version") && note["version"].is_number()) {
    line << " v" << note["version"].get<int64_t>();
  }
  line << " rows=" << note.value("rows", 0);
  if (note.contains("duration_ms") && note["duration_ms"].is_number()) {
    line << " " << std::fixed << std::setprecision(1) << note["duration_ms"].get<double>() << " ms";
  }
  if (note.value("duplicate", false)) line << " (duplicate)";
  if (note.contains("error") && note["error"].is_string()) {
    line << "  error: " << note["error"].get<std::string>();
  }
  return line.str();
}

std::string NoteLine(const nlohmann::json& note) {
  if (note.value("type", "") == "version_published") {
    return "version " + std::to_string(note.value("version", 0)) + " published";
  }
  return OutcomeLine(note);
}

/// A line of --file the codec refused: for people, or {"line", "status": "rejected", "error"}
/// as `teatree apply` prints it.
void PrintInvalidLine(const SubmitOptions& options, int number, const Status& refused,
                      std::ostream& out) {
  if (options.output == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{
               {"line", number}, {"status", "rejected"}, {"error", refused.message()}})
        << std::endl;
    return;
  }
  const std::string name = options.file == "-" ? "<stdin>" : options.file.string();
  out << name << ":" << number << ": not submitted: " << refused.message() << std::endl;
}

/// The requests to submit. A line of the file the codec refuses is reported on `out`, counted
/// in `report` and left out: it could never be applied, and the others can.
Result<std::vector<Request>> RequestsToSubmit(const SubmitOptions& options, SubmitReport& report,
                                              std::ostream& out) {
  std::vector<Request> requests;
  if (options.file.empty()) {
    nlohmann::json request = options.request;
    if (!options.model.empty()) request["model"] = options.model;
    if (!request.contains("request_id")) request["request_id"] = NewRequestId();
    auto decoded = DecodeRequest(DumpJson(request));
    // The flags describe a request that cannot be: the command line is at fault.
    if (!decoded.ok()) return MarkFailure(decoded.status(), FailureKind::kUsage);
    requests.push_back(std::move(*decoded));
    return requests;
  }
  std::ifstream file;
  if (options.file != "-") {
    file.open(options.file);
    if (!file) return Status::IOError("cannot read --file ", options.file.string());
  }
  std::istream& in = options.file == "-" ? std::cin : file;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    auto decoded = DecodeRequest(line);
    Status refused = decoded.status();
    if (refused.ok() && !options.model.empty() && decoded->model != options.model) {
      refused = Status::Invalid("request ", decoded->request_id, " is for model ", decoded->model,
                                ", not ", options.model);
    }
    if (!refused.ok()) {
      PrintInvalidLine(options, number, refused, out);
      ++report.invalid;
      continue;
    }
    requests.push_back(std::move(*decoded));
  }
  return requests;
}

/// The source format of a file to upload, from its extension.
Result<std::string> UploadFormat(const fs::path& file) {
  static const std::map<std::string, std::string> kFormats{
      {".parquet", "parquet"}, {".pq", "parquet"}, {".csv", "csv"},       {".arrow", "arrow"},
      {".arrows", "arrow"},    {".ipc", "arrow"},  {".feather", "arrow"}, {".json", "json"}};
  const auto found = kFormats.find(file.extension().string());
  if (found != kFormats.end()) return found->second;
  return UsageError("cannot tell the format of ", Quoted(file.string()),
                    " from its name: give --format parquet, csv, arrow or json");
}

/// `submit --upload FILE`: checks the request the flags describe, uploads the file into the
/// model's staging area (progress on `progress`), and makes it the request's source.
Status UploadSource(Client& client, SubmitOptions& options, std::ostream* progress) {
  if (!options.file.empty()) {
    return UsageError(
        "--upload loads a file into one request: give it with an op (append or "
        "upsert), not with --file");
  }
  nlohmann::json& request = options.request;
  const std::string op = request.value("op", "");
  if (op != "append" && op != "upsert") {
    return UsageError("--upload loads rows: use it with append or upsert, not ", Quoted(op));
  }
  if (request.contains("rows")) return UsageError("give --rows or --upload, not both");
  std::string format = options.upload_format;
  if (format.empty()) {
    ARROW_ASSIGN_OR_RAISE(format, UploadFormat(options.upload));
  }
  // Checked before the upload, with a stand-in id: a bad flag costs no transfer.
  request["source"] = {{"format", format}, {"staged", std::string(kStagedIdLength, '0')}};
  request["model"] = options.model;
  if (!request.contains("request_id")) request["request_id"] = NewRequestId();
  if (auto decoded = DecodeRequest(DumpJson(request)); !decoded.ok()) {
    return MarkFailure(decoded.status(), FailureKind::kUsage);
  }
  ARROW_RETURN_NOT_OK(client.models().Admit(options.model, false, ""));
  std::ifstream in(options.upload, std::ios::binary);
  std::error_code ec;
  const auto bytes = fs::file_size(options.upload, ec);
  if (!in || ec || !fs::is_regular_file(options.upload)) {
    return UsageError("cannot read --upload ", Quoted(options.upload.string()),
                      ": give a file on this machine");
  }
  ARROW_ASSIGN_OR_RAISE(auto staged,
                        client.Upload(options.model, in, static_cast<int64_t>(bytes), progress));
  request["source"]["staged"] = staged.id;
  return Status::OK();
}

/// The rows of a result as JSON objects, as `teatree query --format json` writes them.
Result<nlohmann::json> RowsAsJson(const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto text, WriteResult(table, ResultFormat::kJson));
  return ParseJson(text, "the result", {.max_bytes = text.size() + 1, .max_depth = 512});
}

/// Prints that `request` was stored (JetStream's `ack`): a line, or {"request_id", "model",
/// "sequence", "duplicate"} as the HTTP submit endpoint answers.
void PrintSubmitted(const Request& request, const PublishAck& ack, OutputFormat output,
                    std::ostream& out) {
  if (output == OutputFormat::kJson) {
    out << DumpJson(nlohmann::json{{"request_id", request.request_id},
                                   {"model", request.model},
                                   {"sequence", ack.sequence},
                                   {"duplicate", ack.duplicate}})
        << std::endl;
    return;
  }
  out << request.request_id << " submitted to " << request.model << " (queue position "
      << ack.sequence << (ack.duplicate ? ", duplicate of an earlier submission" : "") << ")"
      << std::endl;
}

/// Prints an outcome: a line (and a query's rows as a table), or the outcome note's fields
/// with "sequence", "published_version" (with --wait=published) and the rows under "result".
/// "duplicate" is true when this submission applied nothing new, whether JetStream dropped it
/// (`ack`) or its manager knew the id.
Status PrintOutcome(const Outcome& outcome, const PublishAck& ack, std::optional<int64_t> published,
                    OutputFormat output, std::ostream& out) {
  if (output == OutputFormat::kJson) {
    nlohmann::json json = outcome.note;
    json["sequence"] = ack.sequence;
    if (published) json["published_version"] = *published;
    json["duplicate"] = ack.duplicate || outcome.note.value("duplicate", false);
    if (outcome.result) {
      ARROW_ASSIGN_OR_RAISE(json["result"], RowsAsJson(*outcome.result));
    }
    out << DumpJson(json) << std::endl;
    return Status::OK();
  }
  out << OutcomeLine(outcome.note)
      << (published ? "  published in v" + std::to_string(*published) : std::string())
      << (ack.duplicate ? "  (id submitted before, within the duplicate window: this "
                          "submission was dropped; the outcome is the first one's)"
                        : "")
      << std::endl;
  if (outcome.result) {
    ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*outcome.result));
    out << text;
  }
  return Status::OK();
}

/// What `teatree status` knows of one model.
struct ModelState {
  ModelRecord record;
  /// Newest committed and newest published versions: the newer of what the catalog and the
  /// manager's last status note say (the catalog follows the manager by a moment, the note
  /// comes every few seconds).
  int64_t committed = 0;
  int64_t published = 0;
  uint64_t backlog = 0;
  std::optional<LeaseInfo> lease;
  /// The manager's last status note ({} without a manager).
  nlohmann::json note = nlohmann::json::object();
};

struct ServeEndpoints {
  std::string flight, http;
};

/// The models of the catalog (`catalog_error` says why none when it does not answer), and
/// those the queue and the leases know.
Result<std::vector<ModelRecord>> StatusModels(Client& client, const ClientOptions& options,
                                              const std::string& control_url,
                                              std::string& catalog_error) {
  std::vector<ModelRecord> models;
  const fs::path catalog = options.data_dir / "control.sqlite";
  if (!control_url.empty() || fs::exists(catalog)) {
    auto listed = [&]() -> Result<std::vector<ModelRecord>> {
      ARROW_ASSIGN_OR_RAISE(
          auto control,
          ControlStore::Open(control_url.empty() ? "sqlite://" + fs::absolute(catalog).string()
                                                 : control_url));
      return control->ListModels();
    }();
    // The catalog may be down while the managers go on: show what the queue knows.
    if (listed.ok()) {
      models = std::move(*listed);
    } else {
      catalog_error = listed.status().message();
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto waiting, client.queue().ModelsWithBacklog());
  ARROW_ASSIGN_OR_RAISE(auto leased, Lease::HeldModels(client.connection()));
  waiting.insert(waiting.end(), leased.begin(), leased.end());
  for (const auto& model : waiting) {
    if (std::none_of(models.begin(), models.end(), [&](const auto& m) { return m.id == model; })) {
      models.push_back({.id = model, .status = "unknown"});
    }
  }
  return models;
}

Result<ModelState> InspectModel(Client& client, const ModelRecord& record) {
  ModelState state{
      .record = record, .committed = record.current_version, .published = record.published_version};
  ARROW_ASSIGN_OR_RAISE(state.backlog, client.queue().Backlog(record.id));
  ARROW_ASSIGN_OR_RAISE(state.lease, Lease::Inspect(client.connection(), record.id));
  if (!state.lease) return state;
  ARROW_ASSIGN_OR_RAISE(auto note, LastNote(client.connection(), ManagerStatusSubject(record.id)));
  auto parsed = note ? ParseJson(note->body, "the manager status").ValueOr(nlohmann::json())
                     : nlohmann::json();
  if (!parsed.is_object()) return state;
  state.note = std::move(parsed);
  state.committed = std::max(state.committed, state.note.value("version", int64_t{0}));
  state.published = std::max(state.published, state.note.value("published_version", int64_t{0}));
  return state;
}

nlohmann::json StatusJson(const std::vector<ModelState>& states, const ServeEndpoints& serve,
                          const std::string& catalog_error) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& state : states) {
    nlohmann::json manager = nullptr;
    if (state.lease) {
      manager = {{"holder", state.lease->holder},
                 {"expires_in_ms", state.lease->expires_in.count()},
                 {"flight_url", state.note.value("flight_url", "")},
                 {"http_url", state.note.value("http_url", "")},
                 {"catalog_backlog", state.note.value("catalog_backlog", int64_t{0})},
                 {"archive_backlog", state.note.value("archive_backlog", int64_t{0})}};
    }
    models.push_back({{"model", state.record.id},
                      {"engine", state.record.engine},
                      {"status", state.record.status},
                      {"pod_class", state.record.pod_class},
                      {"pending_reason", state.record.pending_reason},
                      {"committed_version", state.committed},
                      {"published_version", state.published},
                      {"lag", std::max<int64_t>(0, state.committed - state.published)},
                      {"backlog", state.backlog},
                      {"manager", manager}});
  }
  nlohmann::json json{{"models", models},
                      {"serve", {{"flight_url", serve.flight}, {"http_url", serve.http}}}};
  if (!catalog_error.empty()) json["catalog_error"] = catalog_error;
  return json;
}

void PrintStatus(const std::vector<ModelState>& states, const ServeEndpoints& serve,
                 const std::string& catalog_error, std::ostream& out) {
  if (!catalog_error.empty()) {
    out << "control catalog unreachable (" << catalog_error
        << "); models below come from the queue and the leases\n";
  }
  out << std::left << std::setw(20) << "model" << std::setw(8) << "engine" << std::setw(10)
      << "status" << std::setw(11) << "committed" << std::setw(11) << "published" << std::setw(6)
      << "lag" << std::setw(9) << "backlog"
      << "manager (lease)\n";
  std::vector<std::string> held_back, endpoints;
  if (!serve.flight.empty()) endpoints.push_back("every model (teatree serve): " + serve.flight);
  if (!serve.http.empty()) endpoints.push_back("every model (teatree serve): " + serve.http);
  for (const auto& state : states) {
    const ModelRecord& model = state.record;
    out << std::setw(20) << model.id << std::setw(8) << model.engine << std::setw(10)
        << model.status << std::setw(11) << state.committed << std::setw(11) << state.published
        << std::setw(6) << std::max<int64_t>(0, state.committed - state.published) << std::setw(9)
        << state.backlog
        << (state.lease ? state.lease->holder + " (expires in " +
                              std::to_string(state.lease->expires_in.count()) + " ms)"
                        : std::string("none"))
        << "\n";
    for (const char* url : {"flight_url", "http_url"}) {
      if (!state.note.value(url, "").empty()) {
        endpoints.push_back(model.id + " (live, its manager): " + state.note.value(url, ""));
      }
    }
    if (!model.pending_reason.empty()) {
      held_back.push_back(model.id + ": its manager (pod class " + model.pod_class +
                          ") is not running yet: " + model.pending_reason);
    }
    // What a running manager holds back because its catalog or archive does not answer.
    const int64_t catalog = state.note.value("catalog_backlog", int64_t{0});
    const int64_t archive = state.note.value("archive_backlog", int64_t{0});
    if (catalog > 0 || archive > 0) {
      held_back.push_back(model.id + ": " + std::to_string(catalog) + " catalog updates and " +
                          std::to_string(archive) +
                          " versions to archive are waiting for their backends");
    }
  }
  for (const auto& line : held_back) out << line << "\n";
  if (!endpoints.empty()) out << "read endpoints (Arrow Flight, HTTP):\n";
  for (const auto& line : endpoints) out << "  " << line << "\n";
  if (states.empty()) out << "(no models yet)\n";
}

}  // namespace

const std::atomic<bool>& StopOnSignals() {
  static const bool installed = [] {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    return true;
  }();
  (void)installed;
  return g_stop;
}

namespace {

/// The launcher `options` ask for: child processes, or pods through the Kubernetes API.
/// `args` are the options every manager gets besides --model.
Result<std::unique_ptr<Launcher>> MakeLauncher(const ServeOptions& options,
                                               std::vector<std::string> args,
                                               const std::string& control_url,
                                               const fs::path& data_dir) {
  if (options.launcher != "kubernetes") {
    ARROW_ASSIGN_OR_RAISE(auto self, SelfPath());
    return std::make_unique<ProcessLauncher>(self.string(), std::move(args), data_dir / "logs");
  }
  if (options.nats_url.empty()) {
    return UsageError(
        "--launcher kubernetes needs --nats: the address of a NATS server the manager pods "
        "can reach (serve's private nats-server listens on loopback)");
  }
  auto config = options.kubeconfig.empty() ? InClusterConfig() : LoadKubeConfig(options.kubeconfig);
  ARROW_RETURN_NOT_OK(config.status());
  if (!options.kube_namespace.empty()) config->name_space = options.kube_namespace;
  const std::string where = config->server + ", namespace " + config->name_space;
  ARROW_ASSIGN_OR_RAISE(auto client, KubeClient::Make(std::move(*config)));
  KubernetesLauncherOptions pods = options.kubernetes;
  pods.args = std::move(args);
  pods.shutdown_timeout =
      std::chrono::duration_cast<std::chrono::seconds>(options.dispatcher.shutdown_timeout);
  // The catalog holds each model's class; it is read at every start of a pod.
  std::shared_ptr<ControlStore> control = ControlStore::Open(control_url).ValueOr(nullptr);
  pods.class_of = [control, control_url](const std::string& model) -> Result<std::string> {
    if (!control) return Status::IOError("cannot open the control catalog ", control_url);
    ARROW_ASSIGN_OR_RAISE(auto record, control->GetModel(model));
    return record ? record->pod_class : std::string();
  };
  ARROW_ASSIGN_OR_RAISE(auto launcher,
                        KubernetesLauncher::Make(std::move(client), std::move(pods)));
  spdlog::info("serve: managers run as pods through the Kubernetes API at {}", where);
  return launcher;
}

}  // namespace

Status RunServe(const ServeOptions& options, std::ostream& out) {
  const auto& stop = StopOnSignals();
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) return Status::IOError("cannot create ", options.data_dir.string(), ": ", ec.message());
  const fs::path data_dir = fs::absolute(options.data_dir);
  ARROW_ASSIGN_OR_RAISE(auto lock, DataDirLock::Take(data_dir));
  std::unique_ptr<NatsServer> server;
  std::string url = options.nats_url;
  if (url.empty()) {
    ARROW_ASSIGN_OR_RAISE(server, NatsServer::Start({.store_dir = data_dir / "nats",
                                                     .port = options.nats_port,
                                                     .sync_always = true}));
    url = server->url();
  }
  const std::string control_url = options.control_url.empty()
                                      ? "sqlite://" + (data_dir / "control.sqlite").string()
                                      : options.control_url;
  std::vector<std::string> args{"--nats", url, "--data-dir", data_dir.string()};
  args.insert(args.end(), options.manager_args.begin(), options.manager_args.end());
  ARROW_ASSIGN_OR_RAISE(auto launcher,
                        MakeLauncher(options, std::move(args), control_url, data_dir));
  auto endpoints = std::make_shared<CatalogEndpoints>(control_url);
  DataDirReplicas models(
      {.data_dir = data_dir, .reader = {.memory_limit = options.read.memory_limit}},
      [endpoints](const std::string& model) { return (*endpoints)(model); });
  NatsSupervisor supervisor(server.get());
  NatsClientOptions client = options.dispatcher.nats;  // Its credentials, if any.
  client.url = url;
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect(client));
  endpoints->UseNats(nats.get());
  ARROW_ASSIGN_OR_RAISE(auto queue, RetryWhileUnavailable("serve", stop, [&] {
                          return RequestQueue::Make(*nats, {.configure = false});
                        }));
  ARROW_ASSIGN_OR_RAISE(auto registry, RetryWhileUnavailable("serve", stop, [&] {
                          return ModelRegistry::Open(*nats);
                        }));
  ARROW_RETURN_NOT_OK(registry->SetMaxModels(options.max_models));
  // Models made before the registry existed, or whose NATS store was lost, exist all the same.
  ARROW_RETURN_NOT_OK(RegisterModelsOf(data_dir, *registry));
  ARROW_ASSIGN_OR_RAISE(auto read_servers,
                        ReadServers::Start(options.read, models,
                                           {.nats = nats.get(),
                                            .queue = queue.get(),
                                            .registry = registry.get(),
                                            .ready =
                                                [&] {
                                                  return supervisor.up() && nats->connected() &&
                                                         endpoints->Reachable() &&
                                                         Writable(data_dir);
                                                },
                                            .uploads = {.data_dir = data_dir,
                                                        .limits = options.uploads,
                                                        .registry = registry.get()}}));
  Metrics::Process().SetCollector([&models, &queue](Metrics& metrics) {
    for (const auto& model : models.Models()) {
      auto backlog = queue->Backlog(model);
      if (backlog.ok()) metrics.SetBacklog(model, static_cast<int64_t>(*backlog));
      auto reads = models.Find(model);
      auto versions = reads.ok() ? (*reads)->Versions() : Result<std::vector<VersionFileInfo>>();
      if (versions.ok() && !versions->empty())
        metrics.SetVersions(model, 0, versions->back().version);
    }
  });
  ARROW_RETURN_NOT_OK(WriteFileAtomically(
      data_dir / "serve.json", DumpJson(nlohmann::json{{"nats_url", url},
                                                       {"flight_url", read_servers->flight_url()},
                                                       {"http_url", read_servers->http_url()},
                                                       {"pid", getpid()},
                                                       {"data_dir", data_dir.string()}},
                                        2) +
                                   "\n"));
  out << "teatree serve: data directory " << data_dir.string() << "\n"
      << "  nats:    " << url
      << (server ? " (private nats-server, JetStream in " + (data_dir / "nats").string() + ")"
                 : " (external)")
      << "\n  flight:  " << read_servers->flight_url()
      << " (reads: newest versions here, live reads at each model's manager)"
      << "\n  http:    " << read_servers->http_url() << " (/v1/models, /metrics, /healthz)"
      << "\n  catalog: " << control_url << "\n"
      << "  logs:    " << (data_dir / "logs").string() << "\n"
      << "Submit with `teatree submit --data-dir " << options.data_dir.string()
      << " --model M …`; Ctrl-C stops." << std::endl;

  DispatcherOptions dispatcher = options.dispatcher;
  dispatcher.nats.url = url;
  dispatcher.control_url = control_url;
  // The dispatcher on a thread of its own (its managers die with it, see Subprocess); this
  // thread watches the nats-server it started.
  Status status;
  std::atomic<bool> dispatcher_done{false};
  std::thread dispatching([&] {
    // Pods outlive serve: of several servers, one dispatches them at a time.
    status = launcher->ManagersOutliveDispatcher()
                 ? RunElectedDispatcher(dispatcher, *launcher, stop)
                 : RunDispatcher(dispatcher, *launcher, stop);
    dispatcher_done = true;
  });
  while (!dispatcher_done) {
    supervisor.Check();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  dispatching.join();
  fs::remove(data_dir / "serve.json", ec);
  Metrics::Process().SetCollector(nullptr);
  read_servers.reset();
  endpoints->UseNats(nullptr);
  queue.reset();
  nats.reset();
  if (server) ARROW_RETURN_NOT_OK(server->Stop());
  out << "teatree serve: stopped" << std::endl;
  return status;
}

Result<SubmitReport> RunSubmit(const SubmitOptions& options, std::ostream& out) {
  SubmitReport report;
  std::unique_ptr<Client> client;
  SubmitOptions submitted = options;
  if (!options.upload.empty()) {
    ARROW_ASSIGN_OR_RAISE(client, Client::Connect(options.client));
    ARROW_RETURN_NOT_OK(UploadSource(*client, submitted,
                                     options.output == OutputFormat::kText ? &std::cerr : nullptr));
  }
  ARROW_ASSIGN_OR_RAISE(auto requests, RequestsToSubmit(submitted, report, out));
  if (requests.empty()) return report;
  if (!client) {
    ARROW_ASSIGN_OR_RAISE(client, Client::Connect(options.client));
  }
  std::vector<PublishAck> acks;
  for (const auto& request : requests) {
    ARROW_ASSIGN_OR_RAISE(auto ack, client->Submit(request));
    acks.push_back(ack);
    ++report.submitted;
    if (options.wait == SubmitWait::kNone) PrintSubmitted(request, ack, options.output, out);
  }
  if (options.wait == SubmitWait::kNone) return report;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& request = requests[i];
    ARROW_ASSIGN_OR_RAISE(auto outcome,
                          client->Wait(request.model, request.request_id, options.timeout));
    std::optional<int64_t> published;
    if (options.wait == SubmitWait::kPublished && outcome.applied()) {
      ARROW_ASSIGN_OR_RAISE(
          published, client->WaitPublished(request.model, outcome.note.value("version", int64_t{0}),
                                           options.timeout));
    }
    ARROW_RETURN_NOT_OK(PrintOutcome(outcome, acks[i], published, options.output, out));
    (outcome.applied() ? report.applied : report.rejected) += 1;
  }
  if (requests.size() > 1 && options.output == OutputFormat::kText) {
    out << report.applied << " applied, " << report.rejected << " rejected" << std::endl;
  }
  return report;
}

Status RunWatch(const WatchOptions& options, std::ostream& out) {
  const auto& stop = StopOnSignals();
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options.client));
  ReplayFrom from = options.from;
  if (options.since_version > 0 && !from.since && from.after_sequence == 0) from = ReplayFrom{};
  ARROW_ASSIGN_OR_RAISE(auto notes, client->Watch(options.model, from));
  auto connected_at = std::chrono::steady_clock::now();
  while (!stop) {
    if (client->connection().connected()) {
      connected_at = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - connected_at > options.reconnect_timeout) {
      return Unavailable("the server of model ", options.model, " has been unreachable for ",
                         options.reconnect_timeout.count() / 1000,
                         " s: is it running (teatree status)? Watch again with --since to "
                         "resume where this stopped");
    }
    auto note = notes->Next(std::chrono::milliseconds(200));
    if (!note.ok()) continue;  // Reconnecting: the ordered consumer resumes by itself.
    if (!*note) continue;
    auto parsed = ParseJson((*note)->body, "a notification").ValueOr(nlohmann::json());
    if (options.since_version > 0 && parsed.is_object() && parsed.contains("version") &&
        parsed["version"].is_number_integer() &&
        parsed["version"].get<int64_t>() < options.since_version) {
      continue;
    }
    const bool json = options.output == OutputFormat::kJson || !parsed.is_object();
    out << (json ? (*note)->body : NoteLine(parsed)) << std::endl;
  }
  return Status::OK();
}

Status RunStatus(const ClientOptions& options, const std::string& control_url, std::ostream& out,
                 OutputFormat output) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options));
  std::string catalog_error;
  ARROW_ASSIGN_OR_RAISE(auto models, StatusModels(*client, options, control_url, catalog_error));
  std::vector<ModelState> states;
  for (const auto& model : models) {
    ARROW_ASSIGN_OR_RAISE(auto state, InspectModel(*client, model));
    states.push_back(std::move(state));
  }
  ServeEndpoints serve;
  if (auto served = ServedFlightUrl(options.data_dir); served.ok()) serve.flight = *served;
  if (auto served = ServedHttpUrl(options.data_dir); served.ok()) serve.http = *served;
  if (output == OutputFormat::kJson) {
    out << DumpJson(StatusJson(states, serve, catalog_error)) << std::endl;
  } else {
    PrintStatus(states, serve, catalog_error, out);
  }
  return Status::OK();
}

}  // namespace teatree
