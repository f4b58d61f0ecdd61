#include "teatree/cli/service_commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "teatree/cli/options.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/common/ticker.h"
#include "teatree/launch/process_launcher.h"
#include "teatree/service/commands.h"

namespace teatree::cli {
namespace {

using std::chrono::milliseconds;

/// Everything the commands' flags parse into; lives as long as the returned function.
struct Flags {
  std::chrono::milliseconds manager_shutdown_timeout = std::chrono::seconds(25);
  // serve
  ServeOptions serve;
  ManagerOptions serve_models;
  int64_t idle_stop_s = 300;
  int64_t max_upload_mb = StagingLimits{}.max_bytes >> 20,
          uploads_keep_h =
              std::chrono::duration_cast<std::chrono::hours>(StagingLimits{}.keep).count();
  // manager
  ManagerServiceOptions manager;
  int64_t max_wait_ms = 200, ack_wait_ms = 30'000, lease_ttl_ms = 10'000, idle_exit_ms = 0,
          duplicate_window_ms = 120'000;
  // dispatcher
  DispatcherOptions dispatcher;
  std::filesystem::path dispatcher_data_dir = "teatree-data";
  std::vector<std::string> dispatcher_manager_args;
  // clients
  SubmitOptions submit;
  std::string op, table, rows, schema, primary_key, engine, set, where, sql, function, args, id,
      changes;
  int64_t page_rows = 0, timeout_s = 60;
  std::string wait = "none";
  ClientOptions watch_client, status_client;
  ModelCommandOptions model;
  std::string watch_model, status_control, watch_since;
  int64_t watch_reconnect_s = 30;
  bool watch_json = false;
};

/// --data-dir and the NATS flags of a client command.
void AddClientOptions(CLI::App& command, ClientOptions& options) {
  command
      .add_option("--data-dir,-d", options.data_dir,
                  "data directory of a local `teatree serve` (to find its NATS server)")
      ->capture_default_str();
  AddNatsOptions(command, options.nats);
}

/// --pod-class: entries of the class table, checked as they are parsed.
void AddPodClassOption(CLI::App& command, PodClasses& classes) {
  command
      .add_option_function<std::vector<std::string>>(
          "--pod-class",
          [&classes](const std::vector<std::string>& specs) {
            for (const auto& spec : specs) {
              Status set = classes.Set(spec);
              if (!set.ok()) throw CLI::ValidationError("--pod-class", set.message());
            }
          },
          "a class of the pod class table as NAME=CPU,MEMORY[,STORAGE] (repeatable), e.g. "
          "medium=4,8Gi,100Gi; the defaults: small=2,2Gi,20Gi medium=4,4Gi,50Gi "
          "large=8,16Gi,200Gi xlarge=16,64Gi,500Gi")
      ->type_name("NAME=CPU,MEMORY[,STORAGE]");
}

/// How serve starts managers: --launcher and what the Kubernetes launcher needs.
void AddLauncherOptions(CLI::App& serve, ServeOptions& options) {
  serve
      .add_option("--launcher", options.launcher,
                  "how managers are started: process (child processes of serve) or kubernetes "
                  "(a pod per model, sized by its pod class, its data on a volume of its own)")
      ->check(CLI::IsMember({"process", "kubernetes"}))
      ->capture_default_str();
  serve.add_option("--kubeconfig", options.kubeconfig,
                   "kubernetes: kubeconfig file of the API server (default: the service account "
                   "of the pod serve runs in)");
  serve.add_option("--namespace", options.kube_namespace,
                   "kubernetes: namespace of the manager pods (default: the kubeconfig "
                   "context's, or serve's own pod's)");
  KubernetesLauncherOptions& k = options.kubernetes;
  serve.add_option("--image", k.image,
                   "kubernetes: image of the manager pods (the one `make image` builds, in a "
                   "registry the cluster pulls from; default: serve's own, when serve runs in "
                   "a pod)");
  serve
      .add_option("--storage-class", k.storage_class,
                  "kubernetes: storage class of the model volumes (\"\": the cluster's default)")
      ->capture_default_str();
  serve.add_option("--manager-config", k.manager_config,
                   "kubernetes: ConfigMap whose keys (TEATREE_* settings) every manager pod gets "
                   "as environment");
  serve.add_option("--manager-secret", k.manager_secret,
                   "kubernetes: Secret whose keys every manager pod gets as environment (NATS "
                   "credentials, the catalog URL with its password)");
  AddPodClassOption(serve, k.classes);
}

/// The manager flags `serve` passes on to every manager it starts.
std::vector<std::string> ManagerArgs(const ManagerOptions& models, size_t batch_size,
                                     int64_t lease_ttl_ms) {
  std::vector<std::string> args{"--batch-size", std::to_string(batch_size), "--lease-ttl-ms",
                                std::to_string(lease_ttl_ms)};
  if (!models.control_url.empty()) args.insert(args.end(), {"--control", models.control_url});
  if (!models.archive_url.empty()) args.insert(args.end(), {"--archive", models.archive_url});
  for (const auto& dir : models.input_dirs) args.insert(args.end(), {"--input-dir", dir.string()});
  if (models.mirror_versions) args.emplace_back("--mirror-versions");
  if (!models.functions_file.empty()) {
    args.insert(args.end(), {"--functions", models.functions_file.string()});
  }
  for (const auto& plugin : models.plugins) args.insert(args.end(), {"--plugin", plugin.string()});
  if (!models.memory_limit.empty())
    args.insert(args.end(), {"--memory-limit", models.memory_limit});
  const char* publish[] = {"every", "coalesce", "auto"};
  args.insert(
      args.end(),
      {"--publish", publish[static_cast<int>(models.publish)], "--keep-versions",
       std::to_string(models.keep_versions), "--keep-versions-for-s",
       std::to_string(
           std::chrono::duration_cast<std::chrono::seconds>(models.retention_grace).count())});
  if (models.hot_bytes != ManagerOptions{}.hot_bytes) {
    args.insert(args.end(), {"--hot-mb", std::to_string(models.hot_bytes >> 20)});
  }
  return args;
}

/// The request the sugar flags of `submit` describe.
Result<nlohmann::json> SugarRequest(const Flags& f) {
  nlohmann::json request{{"op", f.op}};
  auto json_flag = [&](const char* key, const std::string& text, const char* flag) -> Status {
    if (text.empty()) return Status::OK();
    auto parsed = ParseJson(text, flag);
    if (!parsed.ok()) return MarkFailure(parsed.status(), FailureKind::kUsage);
    request[key] = std::move(*parsed);
    return Status::OK();
  };
  if (!f.id.empty()) request["request_id"] = f.id;
  if (!f.table.empty()) request["table"] = f.table;
  if (!f.engine.empty()) request["engine"] = f.engine;
  if (!f.sql.empty()) request["sql"] = f.sql;
  if (!f.function.empty()) request["function"] = f.function;
  if (f.page_rows > 0) request["page_rows"] = f.page_rows;
  if (!f.primary_key.empty()) {
    nlohmann::json keys = nlohmann::json::array();
    std::stringstream list(f.primary_key);
    for (std::string key; std::getline(list, key, ',');) keys.push_back(key);
    request["primary_key"] = keys;
  }
  ARROW_RETURN_NOT_OK(json_flag("rows", f.rows, "--rows"));
  ARROW_RETURN_NOT_OK(json_flag("schema", f.schema, "--schema"));
  ARROW_RETURN_NOT_OK(json_flag("set", f.set, "--set"));
  ARROW_RETURN_NOT_OK(json_flag("where", f.where, "--where"));
  ARROW_RETURN_NOT_OK(json_flag("args", f.args, "--args"));
  ARROW_RETURN_NOT_OK(json_flag("changes", f.changes, "--changes"));
  return request;
}

/// `teatree submit` from its flags.
Result<SubmitReport> Submit(Flags& f, OutputFormat output) {
  if (f.submit.file.empty()) {
    if (f.submit.model.empty() || f.op.empty()) {
      return UsageError(
          "submit needs --file requests.jsonl, or --model and an op (e.g. `teatree submit "
          "--model sales query --sql 'SELECT 1'`)");
    }
    ARROW_ASSIGN_OR_RAISE(f.submit.request, SugarRequest(f));
  } else if (!f.op.empty()) {
    return UsageError("submit takes --file or an op (", f.op, "), not both");
  }
  f.submit.wait = f.wait == "published" ? SubmitWait::kPublished
                  : f.wait == "applied" ? SubmitWait::kApplied
                                        : SubmitWait::kNone;
  f.submit.timeout = std::chrono::seconds(f.timeout_s);
  f.submit.output = output;
  return RunSubmit(f.submit, std::cout);
}

/// Reads `watch --since`: a version, a UTC time or a time ago, into `options`.
Status ParseSince(const std::string& text, WatchOptions& options) {
  if (text.empty()) return Status::OK();
  const auto digits = [](std::string_view part) {
    return !part.empty() && part.size() < 16 &&
           std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (digits(text)) {
    options.since_version = std::stoll(text);
    return Status::OK();
  }
  static const std::map<char, int64_t> kUnits{{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  if (const auto unit = kUnits.find(text.back());
      unit != kUnits.end() && digits(std::string_view(text).substr(0, text.size() - 1))) {
    options.from = ReplayFrom{
        .since = std::chrono::system_clock::now() -
                 std::chrono::seconds(std::stoll(text.substr(0, text.size() - 1)) * unit->second)};
    return Status::OK();
  }
  std::tm time{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &time);
  if (end != nullptr && (*end == '\0' || std::string_view(end) == "Z")) {
    options.from = ReplayFrom{.since = std::chrono::system_clock::from_time_t(timegm(&time))};
    return Status::OK();
  }
  return UsageError("--since ", Quoted(text),
                    " is not a version (42), a UTC time (2026-12-07T10:00:00Z) or a time ago "
                    "(90s, 15m, 2h, 3d)");
}

/// What a process that starts managers passes on to each besides the model's options: its
/// NATS credentials (which the launcher moves off the command line), its log flags and its
/// shutdown bound.
std::vector<std::string> PassedOnArgs(const DispatcherOptions& dispatcher, const LogOptions& log) {
  std::vector<std::string> args = NatsAuthArgs(dispatcher.nats);
  auto log_args = LogArgs(log);
  args.insert(args.end(), log_args.begin(), log_args.end());
  args.insert(
      args.end(),
      {"--shutdown-timeout-s",
       std::to_string(
           std::chrono::duration_cast<std::chrono::seconds>(dispatcher.shutdown_timeout).count()),
       "--stream-replicas", std::to_string(dispatcher.nats.stream_replicas)});
  return args;
}

/// Bounds a process's shutdown: once `stop` is set, the process has `timeout` to finish
/// (this object's destruction); past it, it logs why and exits 1 at once. What it did not
/// finish is what a crash leaves, and recovery handles it.
class ExitIfStuck {
 public:
  ExitIfStuck(const std::atomic<bool>& stop, std::chrono::milliseconds timeout, std::string what)
      : ticker_(std::chrono::milliseconds(100),
                [&stop, timeout, what = std::move(what),
                 stopped = std::optional<std::chrono::steady_clock::time_point>()]() mutable {
                  if (!stop) return;
                  if (!stopped) stopped = std::chrono::steady_clock::now();
                  if (std::chrono::steady_clock::now() - *stopped < timeout) return;
                  spdlog::error(
                      "{} did not stop within {} s of the signal; exiting now (committed "
                      "work is published at the next start)",
                      what, std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
                  spdlog::default_logger()->flush();
                  std::_Exit(1);
                }) {}

 private:
  Ticker ticker_;
};

}  // namespace

std::function<Result<ExitCode>()> AddServiceCommands(CLI::App& app, OutputFormat& output,
                                                     const LogOptions& log) {
  auto f = std::make_shared<Flags>();

  auto* serve = app.add_subcommand(
      "serve",
      "Run Teatree on this machine: a private nats-server (or --nats), the dispatcher, and a\n"
      "manager process per model with work. Writes <data-dir>/serve.json so that clients\n"
      "find it with --data-dir; SIGINT/SIGTERM stop everything cleanly");
  serve->add_option("--nats", f->serve.nats_url,
                    "use this NATS server instead of spawning one, e.g. nats://host:4222");
  serve->add_option("--nats-port", f->serve.nats_port,
                    "port of the private nats-server (default: a free one)");
  AddNatsAuthOptions(*serve, f->serve.dispatcher.nats);
  AddStreamReplicasOption(*serve, f->serve.dispatcher.nats);
  serve
      ->add_option_function<int64_t>(
          "--shutdown-timeout-s",
          [f](int64_t seconds) {
            f->serve.dispatcher.shutdown_timeout = std::chrono::seconds(seconds);
          },
          "on SIGTERM, how long managers get to finish their batch, publish, acknowledge and "
          "release their lease before they are killed")
      ->default_str("25")
      ->check(CLI::PositiveNumber);
  AddModelOptions(*serve, f->serve_models);
  AddLauncherOptions(*serve, f->serve);
  AddReadServingOptions(*serve, f->serve.read);
  AddNoteStreamOptions(*serve, f->serve.dispatcher.notes);
  serve->add_option("--batch-size", f->manager.batch_size, "requests group-committed together")
      ->capture_default_str();
  serve
      ->add_option("--idle-stop-s", f->idle_stop_s,
                   "stop a model's manager after this many seconds without requests")
      ->capture_default_str();
  serve
      ->add_option("--max-models", f->serve.max_models,
                   "how many models this server keeps at most (0: no bound); creating one more "
                   "is refused")
      ->capture_default_str();
  serve
      ->add_option("--lease-ttl-ms", f->lease_ttl_ms,
                   "how long a dead manager's lease keeps others out")
      ->capture_default_str();
  serve
      ->add_option("--max-upload-mb", f->max_upload_mb,
                   "the largest file a client may upload for a request (submit --upload, and "
                   "requests too large for the queue, which clients upload by themselves)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--uploads-keep-h", f->uploads_keep_h,
                   "how long an upload waits for the request that names it before it is "
                   "removed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  auto* manager = app.add_subcommand(
      "manager",
      "Run the single writer of one model on the queue (the dispatcher starts these): fetch,\n"
      "group-commit, notify, ack; refuses to start while another manager holds the lease");
  manager->add_option("--model,-m", f->manager.manager.model, "model name")->required();
  AddModelOptions(*manager, f->manager.manager);
  AddReadServingOptions(*manager, f->manager.read);
  AddNoteStreamOptions(*manager, f->manager.notes);
  AddNatsOptions(*manager, f->manager.nats);
  AddStreamReplicasOption(*manager, f->manager.nats);
  manager->add_option("--batch-size", f->manager.batch_size, "requests group-committed together")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  manager->add_option("--max-wait-ms", f->max_wait_ms, "how long a fetch waits for requests")
      ->capture_default_str();
  manager
      ->add_option("--ack-wait-ms", f->ack_wait_ms,
                   "a request not acknowledged within this time is redelivered")
      ->capture_default_str();
  manager
      ->add_option("--max-deliver", f->manager.consumer.max_deliver,
                   "deliveries of a failing request before it is dead-lettered")
      ->capture_default_str();
  manager->add_option("--lease-ttl-ms", f->lease_ttl_ms, "lease time to live")
      ->capture_default_str();
  manager
      ->add_option("--idle-exit-ms", f->idle_exit_ms,
                   "exit after this long without requests (0: never)")
      ->capture_default_str();
  manager
      ->add_option_function<int64_t>(
          "--shutdown-timeout-s",
          [f](int64_t seconds) { f->manager_shutdown_timeout = std::chrono::seconds(seconds); },
          "on SIGTERM, finish the batch, publish, acknowledge and release the lease within "
          "this many seconds, or exit 1 (committed work is published at the next start)")
      ->default_str("25")
      ->check(CLI::PositiveNumber);
  manager
      ->add_option("--duplicate-window-ms", f->duplicate_window_ms,
                   "JetStream duplicate window of the request stream")
      ->capture_default_str();

  auto* dispatcher = app.add_subcommand(
      "dispatcher",
      "Start a manager process for every model with queued requests, restart crashed ones\n"
      "with backoff, stop idle ones (teatree serve runs one)");
  AddNatsOptions(*dispatcher, f->dispatcher.nats);
  AddStreamReplicasOption(*dispatcher, f->dispatcher.nats);
  dispatcher
      ->add_option_function<int64_t>(
          "--shutdown-timeout-s",
          [f](int64_t seconds) { f->dispatcher.shutdown_timeout = std::chrono::seconds(seconds); },
          "on SIGTERM, how long managers get to finish their batch, publish, acknowledge and "
          "release their lease before they are killed")
      ->default_str("25")
      ->check(CLI::PositiveNumber);
  dispatcher->add_option("--data-dir,-d", f->dispatcher_data_dir, "data directory of the managers")
      ->capture_default_str();
  dispatcher
      ->add_option("--idle-stop-s", f->idle_stop_s,
                   "stop a manager after this many seconds without requests")
      ->capture_default_str();
  dispatcher
      ->add_option("--duplicate-window-ms", f->duplicate_window_ms,
                   "a request id submitted again within this window is stored once")
      ->capture_default_str();
  dispatcher->add_option(
      "--control", f->dispatcher.control_url,
      "control catalog of the managers (default: sqlite://<data-dir>/control.sqlite): models "
      "whose manager did not stop cleanly get one at start, to publish their work");
  AddNoteStreamOptions(*dispatcher, f->dispatcher.notes);
  dispatcher->add_option("--manager-arg", f->dispatcher_manager_args,
                         "extra flag passed to every manager (repeatable)");

  auto* submit = app.add_subcommand(
      "submit",
      "Submit requests through the durable queue: --file requests.jsonl, or one request from\n"
      "flags, e.g. `submit --model sales append --table orders --rows '[[1,2.0,\"eu\"]]'`.\n"
      "Returns once JetStream stored them; --wait prints each outcome (and query results)");
  AddClientOptions(*submit, f->submit.client);
  submit->add_option("--model,-m", f->submit.model, "model name (required without --file)");
  submit->add_option("--file,-f", f->submit.file, "JSON lines, one request each (- for stdin)");
  submit->add_option("op", f->op,
                     "create_table, append, upsert, update, delete, invoke, query, snapshot, "
                     "drop_table, alter_table");
  submit->add_option("--id", f->id, "request id (default: a new random one)");
  submit->add_option("--table", f->table, "table name");
  submit->add_option("--rows", f->rows, "rows as JSON: [[1,2.0,\"eu\"]] or [{\"id\":1}]");
  submit->add_option("--upload", f->submit.upload,
                     "append/upsert: a file on this machine to load (Parquet, CSV, Arrow IPC or "
                     "JSON rows, any size): uploaded to the server first, with progress");
  submit
      ->add_option("--format", f->submit.upload_format,
                   "the --upload file's format (default: from its extension)")
      ->check(CLI::IsMember({"parquet", "csv", "arrow", "json"}));
  submit->add_option("--schema", f->schema, "create_table schema as JSON");
  submit->add_option("--primary-key", f->primary_key, "create_table key columns, comma-separated");
  submit->add_option("--engine", f->engine,
                     "create_table of a new model: its engine, duckdb (the default) or arrow "
                     "(Parquet datasets computed on with Arrow)");
  submit->add_option("--set", f->set, "update: {\"column\": expression} as JSON");
  submit->add_option("--where", f->where, "update/delete: predicate expression as JSON");
  submit->add_option("--sql", f->sql, "query: one SELECT");
  submit->add_option("--function", f->function, "invoke: function name");
  submit->add_option("--args", f->args, "invoke: arguments as a JSON object");
  submit->add_option("--changes", f->changes,
                     "alter_table: the changes as JSON, e.g. "
                     "'[{\"add_column\":\"note\",\"type\":\"VARCHAR\"}]'");
  submit->add_option("--page-rows", f->page_rows, "query: rows per result page");
  submit
      ->add_flag("--wait{applied},-w{applied}", f->wait,
                 "wait for each outcome and print it (--wait=applied, the same); "
                 "--wait=published: then until each applied request's version is published "
                 "(readable from version files), printing that version")
      ->check(CLI::IsMember({"applied", "published"}));
  submit->add_option("--timeout-s", f->timeout_s, "how long --wait waits")->capture_default_str();
  AddOutputOption(*submit, output);

  auto* watch = app.add_subcommand("watch", "Print a model's notifications live, one line each");
  AddClientOptions(*watch, f->watch_client);
  watch->add_option("--model,-m", f->watch_model, "model name")->required();
  watch->add_option("--since", f->watch_since,
                    "replay what the server kept (7 days by default) from here on, then go on "
                    "live: a version (42), a UTC time (2026-12-07T10:00:00Z) or a time ago "
                    "(90s, 15m, 2h, 3d)");
  watch
      ->add_option("--reconnect-timeout", f->watch_reconnect_s,
                   "exit (code 4) once the server has been unreachable this many seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  watch->add_flag("--json", f->watch_json,
                  "print the notification JSON as received (--output json)");
  AddOutputOption(*watch, output);

  auto* status = app.add_subcommand(
      "status", "Models, their managers (lease holders), queue backlog and versions");
  AddClientOptions(*status, f->status_client);
  status->add_option("--control", f->status_control,
                     "control catalog URL (default: sqlite://<data-dir>/control.sqlite)");
  AddOutputOption(*status, output);

  auto* model = app.add_subcommand(
      "model",
      "Create or list models. A request for a model that does not exist is refused; a\n"
      "model is made here or by its first create_table");
  model->require_subcommand(1);
  auto* model_create = model->add_subcommand("create", "Create a model (no tables yet)");
  AddClientOptions(*model_create, f->model.client);
  model_create->add_option("--model,-m", f->model.model, "model name")->required();
  model_create->add_option("--engine", f->model.engine, "duckdb (default) or arrow");
  model_create->add_option("--class", f->model.pod_class,
                           "its pod class on Kubernetes (default small; see model set-class)");
  model_create->add_option("--control", f->model.control_url,
                           "control catalog URL (default: sqlite://<data-dir>/control.sqlite)");
  AddPodClassOption(*model_create, f->model.classes);
  AddOutputOption(*model_create, output);
  auto* model_set_class = model->add_subcommand(
      "set-class",
      "Set the pod class of a model: the CPU, memory and volume size of its manager pod on\n"
      "Kubernetes (small 2 CPU/2 GiB, medium 4/4, large 8/16, xlarge 16/64), taken at the\n"
      "manager's next start. Recorded in the control catalog");
  AddClientOptions(*model_set_class, f->model.client);
  model_set_class->add_option("model", f->model.model, "model name")->required();
  model_set_class->add_option("class", f->model.pod_class, "pod class")->required();
  model_set_class->add_option("--control", f->model.control_url,
                              "control catalog URL (default: sqlite://<data-dir>/control.sqlite)");
  AddPodClassOption(*model_set_class, f->model.classes);
  AddOutputOption(*model_set_class, output);
  auto* model_list = model->add_subcommand("list", "List the models that exist");
  AddClientOptions(*model_list, f->model.client);
  AddOutputOption(*model_list, output);

  auto run_clients = [=, &output]() -> Result<ExitCode> {
    f->model.output = output;
    if (model_create->parsed()) ARROW_RETURN_NOT_OK(RunModelCreate(f->model, std::cout));
    if (model_list->parsed()) ARROW_RETURN_NOT_OK(RunModelList(f->model, std::cout));
    if (model_set_class->parsed()) ARROW_RETURN_NOT_OK(RunModelSetClass(f->model, std::cout));
    if (submit->parsed()) {
      ARROW_ASSIGN_OR_RAISE(auto report, Submit(*f, output));
      if (report.any_rejected()) return ExitCode::kRejected;
    }
    if (watch->parsed()) {
      WatchOptions watch_options{.client = f->watch_client,
                                 .model = f->watch_model,
                                 .reconnect_timeout = std::chrono::seconds(f->watch_reconnect_s),
                                 .output = f->watch_json ? OutputFormat::kJson : output};
      ARROW_RETURN_NOT_OK(ParseSince(f->watch_since, watch_options));
      ARROW_RETURN_NOT_OK(RunWatch(watch_options, std::cout));
    }
    if (status->parsed()) {
      ARROW_RETURN_NOT_OK(RunStatus(f->status_client, f->status_control, std::cout, output));
    }
    return ExitCode::kOk;
  };

  const LogOptions* parsed_log = &log;  // The lambdas copy what they capture: not this.
  auto run_servers = [=]() -> Status {
    if (serve->parsed()) {
      f->serve.data_dir = f->serve_models.data_dir;
      f->serve.manager_args = ManagerArgs(f->serve_models, f->manager.batch_size, f->lease_ttl_ms);
      auto read_args = ReadServingArgs(f->serve.read);
      f->serve.manager_args.insert(f->serve.manager_args.end(), read_args.begin(), read_args.end());
      auto note_args = NoteStreamArgs(f->serve.dispatcher.notes);
      f->serve.manager_args.insert(f->serve.manager_args.end(), note_args.begin(), note_args.end());
      auto passed_on = PassedOnArgs(f->serve.dispatcher, *parsed_log);
      f->serve.manager_args.insert(f->serve.manager_args.end(), passed_on.begin(), passed_on.end());
      f->serve.control_url = f->serve_models.control_url;
      f->serve.dispatcher.idle_stop = std::chrono::seconds(f->idle_stop_s);
      f->serve.dispatcher.lease_ttl = milliseconds(f->lease_ttl_ms);
      f->serve.uploads = {.max_bytes = f->max_upload_mb << 20,
                          .keep = std::chrono::hours(f->uploads_keep_h)};
      f->serve.dispatcher.queue.duplicate_window = milliseconds(f->duplicate_window_ms);
      return RunServe(f->serve, std::cout);
    }
    if (manager->parsed()) {
      ManagerServiceOptions& o = f->manager;
      o.max_wait = milliseconds(f->max_wait_ms);
      o.consumer.ack_wait = milliseconds(f->ack_wait_ms);
      o.lease_ttl = milliseconds(f->lease_ttl_ms);
      o.idle_exit = milliseconds(f->idle_exit_ms);
      if (o.nats.url.empty()) {
        ARROW_ASSIGN_OR_RAISE(o.nats.url, ServedNatsUrl(o.manager.data_dir));
      }
      const auto& stop = StopOnSignals();
      ExitIfStuck deadline(stop, f->manager_shutdown_timeout, "manager of " + o.manager.model);
      return RunManagerService(o, stop);
    }
    if (dispatcher->parsed()) {
      DispatcherOptions& o = f->dispatcher;
      if (o.nats.url.empty()) {
        ARROW_ASSIGN_OR_RAISE(o.nats.url, ServedNatsUrl(f->dispatcher_data_dir));
      }
      o.idle_stop = std::chrono::seconds(f->idle_stop_s);
      o.queue.duplicate_window = milliseconds(f->duplicate_window_ms);
      o.data_dir = f->dispatcher_data_dir;
      std::vector<std::string> args{"--nats", o.nats.url, "--data-dir",
                                    std::filesystem::absolute(f->dispatcher_data_dir).string()};
      if (o.control_url.empty()) {
        o.control_url =
            "sqlite://" +
            std::filesystem::absolute(f->dispatcher_data_dir / "control.sqlite").string();
      } else {
        args.insert(args.end(), {"--control", o.control_url});
      }
      auto note_args = NoteStreamArgs(o.notes);
      args.insert(args.end(), note_args.begin(), note_args.end());
      auto passed_on = PassedOnArgs(o, *parsed_log);
      args.insert(args.end(), passed_on.begin(), passed_on.end());
      args.insert(args.end(), f->dispatcher_manager_args.begin(), f->dispatcher_manager_args.end());
      ProcessLauncher launcher("/proc/self/exe", args, f->dispatcher_data_dir / "logs");
      return RunDispatcher(o, launcher, StopOnSignals());
    }
    return Status::OK();
  };

  return [=]() -> Result<ExitCode> {
    ARROW_RETURN_NOT_OK(run_servers());
    return run_clients();
  };
}

}  // namespace teatree::cli
