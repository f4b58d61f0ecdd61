#pragma once

// The queue-side commands of `teatree`: serve, manager, dispatcher, submit, watch, status.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "teatree/common/output_format.h"
#include "teatree/common/status.h"
#include "teatree/launch/kubernetes_launcher.h"
#include "teatree/read/read_servers.h"
#include "teatree/service/client.h"
#include "teatree/service/dispatcher.h"
#include "teatree/service/manager_service.h"

namespace teatree {

/// Turns true on SIGINT or SIGTERM (handlers installed on the first call).
const std::atomic<bool>& StopOnSignals();

struct ServeOptions {
  std::filesystem::path data_dir = "teatree-data";
  /// An external NATS server; empty spawns a private one on loopback.
  std::string nats_url;
  /// Port of the private nats-server; 0 picks a free one.
  int nats_port = 0;
  /// Passed to every manager (`teatree manager` options other than --model, --nats and
  /// --data-dir), e.g. {"--batch-size", "512"}.
  std::vector<std::string> manager_args;
  DispatcherOptions dispatcher;
  /// The catalog the managers record into (where serve finds their read endpoints); empty:
  /// sqlite://<data_dir>/control.sqlite.
  std::string control_url;
  /// The read path of every model: newest version files here, live reads at the managers.
  ReadServingOptions read;
  /// How many models the server keeps at most (0: no bound).
  int64_t max_models = 1000;
  /// What uploads into the models' staging areas may take (Flight DoPut, HTTP).
  StagingLimits uploads;
  /// How managers are started: "process" (child processes of serve) or "kubernetes" (a pod
  /// per model, through the Kubernetes API).
  std::string launcher = "process";
  /// --launcher kubernetes: the API server and credentials (empty: the pod's service
  /// account), the namespace (empty: the kubeconfig's or the pod's), and the pods.
  std::filesystem::path kubeconfig;
  std::string kube_namespace;
  KubernetesLauncherOptions kubernetes;
};

struct ModelCommandOptions {
  ClientOptions client;
  /// The model to create.
  std::string model;
  /// Its engine: "duckdb", "arrow" or "" for the default.
  std::string engine;
  /// Its pod class (set-class; create: "" leaves it), recorded in the catalog at
  /// `control_url` (empty: sqlite://<data-dir>/control.sqlite), checked against `classes`.
  std::string pod_class;
  std::string control_url;
  PodClasses classes;
  OutputFormat output = OutputFormat::kText;
};

/// `teatree model create`: registers `options.model`; says whether it existed already.
Status RunModelCreate(const ModelCommandOptions& options, std::ostream& out);
/// `teatree model set-class`: records the pod class of a model (its manager's next start
/// takes it).
Status RunModelSetClass(const ModelCommandOptions& options, std::ostream& out);
/// `teatree model list`: the models that exist, one a line (JSON: {"models": [...]}).
Status RunModelList(const ModelCommandOptions& options, std::ostream& out);

/// `teatree serve`: everything on one machine until SIGINT/SIGTERM.
Status RunServe(const ServeOptions& options, std::ostream& out);

/// What `teatree submit` waits for after JetStream stored the requests.
enum class SubmitWait {
  kNone,
  /// Each request's outcome (applied or rejected), with a query's result.
  kApplied,
  /// As kApplied, then until the version of each applied request is published: readable from
  /// version files (pull, replicas, `teatree serve`'s reads when its manager is gone).
  kPublished,
};

struct SubmitOptions {
  ClientOptions client;
  std::string model;
  /// JSON lines to submit ("-": standard input); empty: the one request in `request`.
  std::filesystem::path file;
  /// A request built from the command line (model and, if absent, request_id filled in).
  nlohmann::json request;
  /// A file on this machine (Parquet, CSV, Arrow IPC or JSON rows) that `request`, an append
  /// or upsert, loads: uploaded into the model's staging area first, then named as the
  /// request's source.
  std::filesystem::path upload;
  /// The upload's format: "parquet", "csv", "arrow" or "json"; empty: from its extension.
  std::string upload_format;
  SubmitWait wait = SubmitWait::kNone;
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  OutputFormat output = OutputFormat::kText;
};

/// What became of a submission. A rejection is an answer, not a failure of the command: it
/// is counted here (the exit code tells scripts) rather than returned as an error.
struct SubmitReport {
  /// Requests JetStream stored.
  int64_t submitted = 0;
  /// Lines of the file the codec refused: never submitted.
  int64_t invalid = 0;
  /// With a wait: outcomes applied and rejected.
  int64_t applied = 0;
  int64_t rejected = 0;

  /// Whether any request was refused, by its manager or before it was submitted.
  bool any_rejected() const { return invalid > 0 || rejected > 0; }
};

/// `teatree submit`: prints one line (or JSON object) per request once JetStream stored it,
/// or with a wait its outcome (and a query's result). Errors are failures to submit or to
/// wait; rejections are in the report.
Result<SubmitReport> RunSubmit(const SubmitOptions& options, std::ostream& out);

struct WatchOptions {
  ClientOptions client;
  std::string model;
  /// Where to start: by default the next notification; a time or a sequence replays what the
  /// stream kept since then.
  ReplayFrom from{.only_new = true};
  /// With `from` unset: start with the notifications of this version (replaying the stream
  /// and leaving out those of older versions); 0: none.
  int64_t since_version = 0;
  /// Fail (unavailable) once the server has been unreachable this long.
  std::chrono::milliseconds reconnect_timeout = std::chrono::seconds(30);
  OutputFormat output = OutputFormat::kText;
};

/// `teatree watch`: one line per notification of the model until SIGINT, or an error once
/// the server is gone for longer than options.reconnect_timeout. Resumes without a gap
/// across the server's restarts (it replays from the last notification it printed).
Status RunWatch(const WatchOptions& options, std::ostream& out);

/// `teatree status`: models, their managers (lease holders), queue backlog, versions, and
/// what managers hold back while their catalog or archive does not answer. The catalog is
/// `control_url`, or <data_dir>/control.sqlite when empty.
Status RunStatus(const ClientOptions& options, const std::string& control_url, std::ostream& out,
                 OutputFormat output = OutputFormat::kText);

}  // namespace teatree
