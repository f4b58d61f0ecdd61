#include "teatree/service/commands.h"

#include <arrow/api.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "teatree/bus/lease.h"
#include "teatree/bus/model_registry.h"
#include "teatree/bus/nats_server.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/table_format.h"
#include "teatree/control/control_store.h"
#include "teatree/read/metrics.h"
#include "teatree/read/model_directory.h"
#include "teatree/request/codec.h"

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
    return known.endpoint;
  }

 private:
  struct Known {
    std::string endpoint;
    std::chrono::steady_clock::time_point looked_up;
  };
  const std::string control_url_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::unique_ptr<ControlStore> control_;
  std::map<std::string, Known> known_;
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

/// The requests to submit. A line of the file the codec refuses is reported on `out` and
/// left out: it could never be applied, and the others can.
Result<std::vector<Request>> RequestsToSubmit(const SubmitOptions& options, std::ostream& out) {
  std::vector<Request> requests;
  if (options.file.empty()) {
    nlohmann::json request = options.request;
    if (!options.model.empty()) request["model"] = options.model;
    if (!request.contains("request_id")) request["request_id"] = NewRequestId();
    ARROW_ASSIGN_OR_RAISE(auto decoded, DecodeRequest(DumpJson(request)));
    requests.push_back(std::move(decoded));
    return requests;
  }
  std::ifstream in(options.file);
  if (!in) return Status::IOError("cannot read ", options.file.string());
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
      out << options.file.string() << ":" << number << ": not submitted: " << refused.message()
          << std::endl;
      continue;
    }
    requests.push_back(std::move(*decoded));
  }
  return requests;
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

Status RunModelCreate(const ClientOptions& options, const std::string& model,
                      const std::string& engine, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options));
  ARROW_ASSIGN_OR_RAISE(bool created, client->models().Create(model, engine));
  out << "model " << model << (created ? " created" : " exists already") << std::endl;
  return Status::OK();
}

Status RunModelList(const ClientOptions& options, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options));
  ARROW_ASSIGN_OR_RAISE(auto names, client->models().List());
  for (const auto& name : names) out << name << "\n";
  out << std::flush;
  return Status::OK();
}

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
  DataDirReplicas models(
      {.data_dir = data_dir, .reader = {.memory_limit = options.read.memory_limit}},
      [endpoints = std::make_shared<CatalogEndpoints>(control_url)](const std::string& model) {
        return (*endpoints)(model);
      });
  NatsSupervisor supervisor(server.get());
  ARROW_ASSIGN_OR_RAISE(auto nats, NatsConnection::Connect({.url = url}));
  ARROW_ASSIGN_OR_RAISE(auto queue, RequestQueue::Make(*nats, {.configure = false}));
  ARROW_ASSIGN_OR_RAISE(auto registry, ModelRegistry::Open(*nats));
  ARROW_RETURN_NOT_OK(registry->SetMaxModels(options.max_models));
  // Models made before the registry existed, or whose NATS store was lost, exist all the same.
  ARROW_RETURN_NOT_OK(RegisterModelsOf(data_dir, *registry));
  ARROW_ASSIGN_OR_RAISE(
      auto read_servers,
      ReadServers::Start(
          options.read, models,
          {.nats = nats.get(), .queue = queue.get(), .registry = registry.get(), .ready = [&] {
             return supervisor.up() && nats->connected();
           }}));
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

  std::vector<std::string> args{"--nats", url, "--data-dir", data_dir.string()};
  args.insert(args.end(), options.manager_args.begin(), options.manager_args.end());
  char self[4096] = {0};
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return Status::IOError("cannot find the teatree binary (/proc/self/exe)");
  ProcessLauncher launcher(std::string(self, static_cast<size_t>(length)), args, data_dir / "logs");
  DispatcherOptions dispatcher = options.dispatcher;
  dispatcher.nats.url = url;
  dispatcher.control_url = control_url;
  // The dispatcher on a thread of its own (its managers die with it, see Subprocess); this
  // thread watches the nats-server it started.
  Status status;
  std::atomic<bool> dispatcher_done{false};
  std::thread dispatching([&] {
    status = RunDispatcher(dispatcher, launcher, stop);
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
  queue.reset();
  nats.reset();
  if (server) ARROW_RETURN_NOT_OK(server->Stop());
  out << "teatree serve: stopped" << std::endl;
  return status;
}

Status RunSubmit(const SubmitOptions& options, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto requests, RequestsToSubmit(options, out));
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options.client));
  std::vector<PublishAck> acks;
  for (const auto& request : requests) {
    ARROW_ASSIGN_OR_RAISE(auto ack, client->Submit(request));
    acks.push_back(ack);
    if (!options.wait) {
      out << request.request_id << " submitted to " << request.model << " (queue position "
          << ack.sequence << (ack.duplicate ? ", duplicate of an earlier submission" : "") << ")"
          << std::endl;
    }
  }
  if (!options.wait) return Status::OK();
  int64_t applied = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& request = requests[i];
    ARROW_ASSIGN_OR_RAISE(auto outcome,
                          client->Wait(request.model, request.request_id, options.timeout));
    out << OutcomeLine(outcome.note)
        << (acks[i].duplicate ? "  (id submitted before, within the duplicate window: this "
                                "submission was dropped; the outcome is the first one's)"
                              : "")
        << std::endl;
    if (outcome.result) {
      ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*outcome.result));
      out << text;
    }
    applied += outcome.applied() ? 1 : 0;
  }
  // A rejection is an answer, not a failure of the command: the lines above say why.
  if (requests.size() > 1) {
    out << applied << " applied, " << requests.size() - applied << " rejected" << std::endl;
  }
  return Status::OK();
}

Status RunWatch(const ClientOptions& options, const std::string& model, bool json,
                std::ostream& out) {
  const auto& stop = StopOnSignals();
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options));
  ARROW_ASSIGN_OR_RAISE(auto notes, client->Watch(model));
  while (!stop) {
    ARROW_ASSIGN_OR_RAISE(auto note, notes->Next(std::chrono::milliseconds(200)));
    if (!note) continue;
    auto parsed = ParseJson(note->body, "a notification").ValueOr(nlohmann::json());
    out << (json || !parsed.is_object() ? note->body : NoteLine(parsed)) << std::endl;
  }
  return Status::OK();
}

Status RunStatus(const ClientOptions& options, const std::string& control_url, std::ostream& out) {
  ARROW_ASSIGN_OR_RAISE(auto client, Client::Connect(options));
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
      out << "control catalog unreachable (" << listed.status().message()
          << "); models below come from the queue and the leases\n";
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto waiting, client->queue().ModelsWithBacklog());
  ARROW_ASSIGN_OR_RAISE(auto leased, Lease::HeldModels(client->connection()));
  waiting.insert(waiting.end(), leased.begin(), leased.end());
  for (const auto& model : waiting) {
    if (std::none_of(models.begin(), models.end(), [&](const auto& m) { return m.id == model; })) {
      models.push_back({.id = model, .status = "unknown"});
    }
  }
  out << std::left << std::setw(20) << "model" << std::setw(8) << "engine" << std::setw(10)
      << "status" << std::setw(10) << "version" << std::setw(11) << "published" << std::setw(9)
      << "backlog"
      << "manager (lease)\n";
  std::vector<std::string> held_back;
  std::vector<std::string> endpoints;
  if (auto served = ServedFlightUrl(options.data_dir); served.ok()) {
    endpoints.push_back("every model (teatree serve): " + *served);
  }
  if (auto served = ServedHttpUrl(options.data_dir); served.ok() && !served->empty()) {
    endpoints.push_back("every model (teatree serve): " + *served);
  }
  for (const auto& model : models) {
    ARROW_ASSIGN_OR_RAISE(auto backlog, client->queue().Backlog(model.id));
    ARROW_ASSIGN_OR_RAISE(auto lease, Lease::Inspect(client->connection(), model.id));
    out << std::setw(20) << model.id << std::setw(8) << model.engine << std::setw(10)
        << model.status << std::setw(10) << model.current_version << std::setw(11)
        << model.published_version << std::setw(9) << backlog
        << (lease ? lease->holder + " (expires in " + std::to_string(lease->expires_in.count()) +
                        " ms)"
                  : std::string("none"))
        << "\n";
    // What a running manager holds back because its catalog or archive does not answer.
    if (!lease) continue;
    ARROW_ASSIGN_OR_RAISE(auto note,
                          LastNote(client->connection(), ManagerStatusSubject(model.id)));
    auto state = note ? ParseJson(note->body, "the manager status").ValueOr(nlohmann::json())
                      : nlohmann::json();
    if (!state.is_object()) continue;
    for (const char* url : {"flight_url", "http_url"}) {
      if (!state.value(url, "").empty()) {
        endpoints.push_back(model.id + " (live, its manager): " + state.value(url, ""));
      }
    }
    const int64_t catalog = state.value("catalog_backlog", int64_t{0});
    const int64_t archive = state.value("archive_backlog", int64_t{0});
    if (catalog > 0 || archive > 0) {
      held_back.push_back(model.id + ": " + std::to_string(catalog) + " catalog updates and " +
                          std::to_string(archive) +
                          " versions to archive are waiting for their backends");
    }
  }
  for (const auto& line : held_back) out << line << "\n";
  if (!endpoints.empty()) out << "read endpoints (Arrow Flight, HTTP):\n";
  for (const auto& line : endpoints) out << "  " << line << "\n";
  if (models.empty()) out << "(no models yet)\n";
  return Status::OK();
}

}  // namespace teatree
