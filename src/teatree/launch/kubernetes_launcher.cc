#include "teatree/launch/kubernetes_launcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "teatree/common/secret_text.h"

namespace teatree {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr char kSelector[] =
    "app.kubernetes.io/name%3Dteatree%2Capp.kubernetes.io/component%3Dmanager";
constexpr char kModelLabel[] = "teatree.dev/model";

/// What the watch last saw of one manager pod.
struct PodState {
  std::string uid;
  std::string phase;
  bool deleting = false;
  /// The container's exit code once it terminated.
  std::optional<int> exit_code;
  /// Why it is not running yet, e.g. "Unschedulable: 0/3 nodes are available: …".
  std::string waiting;
  std::string ip;
  bool ready = false;
};

PodState StateOf(const Json& pod) {
  PodState state;
  const Json& meta = pod["metadata"];
  state.uid = meta.value("uid", "");
  state.deleting = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
  const Json status = pod.value("status", Json::object());
  state.phase = status.value("phase", "Pending");
  state.ip = status.value("podIP", "");
  for (const auto& condition : status.value("conditions", Json::array())) {
    const std::string type = condition.value("type", "");
    const bool is_true = condition.value("status", "") == "True";
    if (type == "Ready") state.ready = is_true;
    if (type == "PodScheduled" && !is_true) {
      state.waiting = condition.value("reason", "") + ": " + condition.value("message", "");
    }
  }
  for (const auto& container : status.value("containerStatuses", Json::array())) {
    const Json st = container.value("state", Json::object());
    if (st.contains("terminated")) state.exit_code = st["terminated"].value("exitCode", 1);
    if (st.contains("waiting")) {
      state.waiting = st["waiting"].value("reason", "") + ": " + st["waiting"].value("message", "");
    }
  }
  return state;
}

/// Options a pod cannot take from serve: they name serve's own files and addresses.
const std::set<std::string>& HostBoundOptions() {
  static const std::set<std::string> options{
      "--listen",  "--advertise-host", "--data-dir", "--log-file",  "--token-file",  "--tls-cert",
      "--tls-key", "--functions",      "--plugin",   "--input-dir", "--flight-port", "--http-port"};
  return options;
}

/// The image of the pod this process runs in (found by its host name, which is its pod's
/// name), so that managers run the same Teatree as serve without naming it twice.
Result<std::string> OwnImage(KubeClient& client) {
  const char* pod = std::getenv("HOSTNAME");
  if (pod == nullptr || std::getenv("KUBERNETES_SERVICE_HOST") == nullptr) {
    return Status::Invalid("not in a pod");
  }
  ARROW_ASSIGN_OR_RAISE(Json own, client.Get(client.Path("pods", pod)));
  const Json containers = own["spec"].value("containers", Json::array());
  if (containers.empty()) return Status::Invalid("pod ", pod, " has no containers");
  return containers[0].value("image", "");
}

}  // namespace

int64_t GrownVolumeSize(int64_t requested, int64_t used, int64_t size) {
  constexpr int64_t kGi = int64_t{1} << 30;
  if (size <= 0 || used * 5 < size * 4) return 0;
  const int64_t base = std::max(requested, size);
  return (base + base / 2 + kGi - 1) / kGi * kGi;
}

std::string ManagerPodName(const std::string& model) {
  std::string name = "teatree-manager-" + model;
  std::replace(name.begin(), name.end(), '_', '-');  // Model names have no '-': still unique.
  return name;
}

std::string ModelVolumeName(const std::string& model) {
  std::string name = "teatree-model-" + model;
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

struct KubernetesLauncher::Impl {
  std::unique_ptr<KubeClient> client;
  KubernetesLauncherOptions options;

  // State below is protected by mutex.
  std::mutex mutex;
  std::map<std::string, PodState> pods;       // By pod name.
  std::map<std::string, std::string> models;  // Pod name → model.

  std::atomic<bool> stop{false};
  std::thread watcher;

  /// Replaces the cache with a list of the manager pods; returns the list's version.
  Result<std::string> List() {
    ARROW_ASSIGN_OR_RAISE(Json list,
                          client->Get(client->Path("pods") + "?labelSelector=" + kSelector));
    std::lock_guard lock(mutex);
    pods.clear();
    for (const auto& pod : list.value("items", Json::array())) Remember(pod);
    return list["metadata"].value("resourceVersion", "");
  }

  /// Caches `pod` (mutex held).
  void Remember(const Json& pod) {
    const Json& meta = pod["metadata"];
    const std::string name = meta.value("name", "");
    pods[name] = StateOf(pod);
    models[name] = meta.value("labels", Json::object()).value(kModelLabel, "");
  }

  /// Keeps the cache current: watch from the last version; list again when the watch fails.
  void Watch(std::string version) {
    while (!stop) {
      std::string last = version;
      Status watched = client->Watch(
          client->Path("pods") + "?labelSelector=" + kSelector, version, 60,
          [&](const Json& event) {
            const std::string type = event.value("type", "");
            const Json& pod = event["object"];
            last = pod["metadata"].value("resourceVersion", last);
            if (type == "BOOKMARK") return true;
            std::lock_guard lock(mutex);
            if (type == "DELETED") {
              auto found = pods.find(pod["metadata"].value("name", ""));
              if (found != pods.end() && found->second.uid == pod["metadata"].value("uid", "")) {
                pods.erase(found);
              }
            } else {
              Remember(pod);
            }
            return true;
          },
          stop);
      version = last;
      if (watched.ok() || stop) continue;
      spdlog::warn("kubernetes: watching the manager pods: {}; listing them again",
                   watched.message());
      std::this_thread::sleep_for(milliseconds(1000));
      auto listed = List();
      if (listed.ok()) version = *listed;
    }
  }

  std::optional<PodState> Find(const std::string& name) {
    std::lock_guard lock(mutex);
    auto found = pods.find(name);
    if (found == pods.end()) return std::nullopt;
    return found->second;
  }

  /// Creates the model's volume, or grows it to the class's size.
  Status EnsureVolume(const std::string& model, const PodClass& pod_class) {
    const std::string name = ModelVolumeName(model);
    auto existing = client->Get(client->Path("persistentvolumeclaims", name));
    if (existing.ok()) {
      const std::string requested =
          (*existing)["spec"]["resources"]["requests"].value("storage", "0");
      auto bytes = ParseQuantity(requested, false);
      if (bytes.ok() && *bytes >= pod_class.storage_bytes) return Status::OK();
      spdlog::info("kubernetes: growing the volume {} of {} from {} to {}", name, model, requested,
                   ByteQuantity(pod_class.storage_bytes));
      return client
          ->Patch(client->Path("persistentvolumeclaims", name),
                  {{"spec",
                    {{"resources",
                      {{"requests", {{"storage", ByteQuantity(pod_class.storage_bytes)}}}}}}}})
          .status();
    }
    if (!existing.status().IsKeyError()) return existing.status();
    Json claim{
        {"apiVersion", "v1"},
        {"kind", "PersistentVolumeClaim"},
        {"metadata",
         {{"name", name},
          {"labels",
           {{"app.kubernetes.io/name", "teatree"},
            {"app.kubernetes.io/component", "model-volume"},
            {kModelLabel, model}}}}},
        {"spec",
         {{"accessModes", {"ReadWriteOnce"}},
          {"resources", {{"requests", {{"storage", ByteQuantity(pod_class.storage_bytes)}}}}}}}};
    if (!options.storage_class.empty()) {
      claim["spec"]["storageClassName"] = options.storage_class;
    }
    auto created = client->Create(client->Path("persistentvolumeclaims"), claim);
    if (!created.ok() && !created.status().IsAlreadyExists()) return created.status();
    spdlog::info("kubernetes: created the volume {} ({}, storage class {}) for {}", name,
                 ByteQuantity(pod_class.storage_bytes),
                 options.storage_class.empty() ? "the default" : options.storage_class, model);
    return Status::OK();
  }

  /// Waits until the pod `name` is gone from the API, at most `timeout`.
  bool WaitGone(const std::string& name, milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      auto pod = client->Get(client->Path("pods", name));
      if (!pod.ok() && pod.status().IsKeyError()) return true;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return false;
  }
};

namespace {

/// A manager in a pod, as the launcher's watch sees it.
class PodManager : public LaunchedManager {
 public:
  PodManager(KubernetesLauncher::Impl& launcher, std::string name, std::string uid)
      : launcher_(launcher), name_(std::move(name)), uid_(std::move(uid)) {}

  std::optional<int> Exited() override {
    auto state = launcher_.Find(name_);
    if (!state || state->uid != uid_) {
      // Gone: deleted by us (a stop), or by someone else (eviction, a drain, kubectl).
      return stopped_ ? 0 : 137;
    }
    if (state->phase != "Succeeded" && state->phase != "Failed") return std::nullopt;
    // Finished: its name is needed for the next pod of the model.
    (void)launcher_.client->Delete(launcher_.client->Path("pods", name_), 0);
    return state->exit_code.value_or(state->phase == "Succeeded" ? 0 : 1);
  }

  Status Stop() override {
    stopped_ = true;
    const auto grace = launcher_.options.shutdown_timeout.count() + 5;
    return launcher_.client->Delete(launcher_.client->Path("pods", name_), static_cast<int>(grace));
  }

  void Terminate(milliseconds grace) override {
    if (launcher_.WaitGone(name_, grace)) return;
    (void)launcher_.client->Delete(launcher_.client->Path("pods", name_), 0);
  }

  std::string Waiting() const override {
    auto state = launcher_.Find(name_);
    return state && state->phase == "Pending" ? state->waiting : "";
  }

  std::string Describe() const override {
    auto state = launcher_.Find(name_);
    std::string text = "pod " + name_;
    if (!state) return text;
    text += " (" + state->phase;
    if (!state->ip.empty()) text += ", " + state->ip;
    if (state->phase == "Running" && !state->ready) text += ", not ready";
    if (!state->waiting.empty() && state->phase == "Pending") text += ": " + state->waiting;
    return text + ")";
  }

 private:
  KubernetesLauncher::Impl& launcher_;
  std::string name_;
  std::string uid_;
  bool stopped_ = false;
};

}  // namespace

KubernetesLauncher::KubernetesLauncher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KubernetesLauncher::~KubernetesLauncher() {
  impl_->stop = true;
  impl_->client->CancelWatches();
  if (impl_->watcher.joinable()) impl_->watcher.join();
}

std::pair<std::vector<std::string>, std::vector<std::string>> KubernetesLauncher::PodArgs(
    const std::vector<std::string>& args) {
  std::vector<std::string> kept, dropped;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool sqlite_catalog =
        args[i] == "--control" && i + 1 < args.size() && !args[i + 1].starts_with("postgres");
    if (HostBoundOptions().contains(args[i]) || sqlite_catalog) {
      dropped.push_back(args[i]);
      ++i;  // Each of them takes a value.
      continue;
    }
    kept.push_back(args[i]);
  }
  return {kept, dropped};
}

Result<std::unique_ptr<KubernetesLauncher>> KubernetesLauncher::Make(
    std::unique_ptr<KubeClient> client, KubernetesLauncherOptions options) {
  if (options.image.empty()) {
    auto own = OwnImage(*client);
    if (!own.ok() || own->empty()) {
      return Status::Invalid(
          "--launcher kubernetes needs --image: the manager pods' image (the one `make image` "
          "builds, pushed to a registry the cluster pulls from); in a pod it defaults to serve's "
          "own");
    }
    options.image = *own;
  }
  SecretFreeArgs split = MoveSecretsToEnvironment(options.args);
  if (!split.environment.empty() && options.manager_secret.empty()) {
    std::string names;
    for (const auto& [name, value] : split.environment) names += (names.empty() ? "" : ", ") + name;
    return Status::Invalid(
        "the managers need secrets serve was given (", names,
        "), and Teatree never writes secrets into a pod spec: put them in a Secret (keys ", names,
        ") and name it with --manager-secret");
  }
  auto [kept, dropped] = PodArgs(split.args);
  if (!dropped.empty()) {
    std::string names;
    for (const auto& name : dropped) names += (names.empty() ? "" : " ") + name;
    spdlog::info(
        "kubernetes: manager pods do not get serve's {} (they name this machine's files or "
        "addresses); set them for the pods as TEATREE_* keys of --manager-config",
        names);
  }
  options.args = std::move(kept);
  auto impl = std::make_unique<Impl>();
  impl->client = std::move(client);
  impl->options = std::move(options);
  ARROW_ASSIGN_OR_RAISE(std::string version, impl->List());
  Impl* raw = impl.get();
  impl->watcher = std::thread([raw, version] { raw->Watch(version); });
  return std::unique_ptr<KubernetesLauncher>(new KubernetesLauncher(std::move(impl)));
}

Json KubernetesLauncher::PodSpec(const std::string& model, const PodClass& pod_class) const {
  const KubernetesLauncherOptions& o = impl_->options;
  Json args = {"manager", "--model", model, "--data-dir", std::string(kPodDataDir)};
  for (const auto& arg : o.args) args.push_back(arg);
  auto field = [](const char* name, const char* path) {
    return Json{{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
  };
  auto resource = [](const char* name, const char* what, const char* divisor) {
    return Json{{"name", name},
                {"valueFrom",
                 {{"resourceFieldRef",
                   {{"containerName", "manager"}, {"resource", what}, {"divisor", divisor}}}}}};
  };
  Json env = {
      // The pod's own address: where it listens and what it tells clients.
      field("TEATREE_LISTEN", "status.podIP"),
      field("TEATREE_ADVERTISE_HOST", "status.podIP"),
      {{"name", "TEATREE_FLIGHT_PORT"}, {"value", std::to_string(kPodFlightPort)}},
      {{"name", "TEATREE_HTTP_PORT"}, {"value", std::to_string(kPodHttpPort)}},
      // What the manager may use, for DuckDB's threads and memory limit.
      resource("TEATREE_POD_CPU_LIMIT", "limits.cpu", "1m"),
      resource("TEATREE_POD_MEMORY_LIMIT", "limits.memory", "1"),
  };
  Json env_from = Json::array();
  if (!o.manager_config.empty()) {
    env_from.push_back({{"configMapRef", {{"name", o.manager_config}, {"optional", true}}}});
  }
  if (!o.manager_secret.empty()) {
    env_from.push_back({{"secretRef", {{"name", o.manager_secret}}}});
  }
  const Json resources = {{"cpu", CpuQuantity(pod_class.cpu_millis)},
                          {"memory", ByteQuantity(pod_class.memory_bytes)}};
  auto probe = [](const char* path, int period, int failures) {
    return Json{{"httpGet", {{"path", path}, {"port", "http"}}},
                {"periodSeconds", period},
                {"timeoutSeconds", 3},
                {"failureThreshold", failures}};
  };
  Json container = {{"name", "manager"},
                    {"image", o.image},
                    {"imagePullPolicy", o.image_pull_policy},
                    {"args", args},
                    {"env", env},
                    {"envFrom", env_from},
                    {"ports",
                     {{{"name", "flight"}, {"containerPort", kPodFlightPort}},
                      {{"name", "http"}, {"containerPort", kPodHttpPort}}}},
                    {"resources", {{"requests", resources}, {"limits", resources}}},
                    {"readinessProbe", probe("/readyz", 2, 3)},
                    // Generous: a manager recovering a large model is busy, not dead.
                    {"livenessProbe", probe("/healthz", 10, 6)},
                    {"securityContext",
                     {{"allowPrivilegeEscalation", false},
                      {"readOnlyRootFilesystem", true},
                      {"capabilities", {{"drop", {"ALL"}}}}}},
                    {"volumeMounts",
                     {{{"name", "data"}, {"mountPath", std::string(kPodDataDir)}},
                      {{"name", "tmp"}, {"mountPath", "/tmp"}}}}};
  return Json{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", ManagerPodName(model)},
        {"labels",
         {{"app.kubernetes.io/name", "teatree"},
          {"app.kubernetes.io/component", "manager"},
          {"app.kubernetes.io/managed-by", "teatree-serve"},
          {kModelLabel, model},
          {"teatree.dev/pod-class", pod_class.name}}}}},
      {"spec",
       {{"restartPolicy", "Never"},  // The dispatcher replaces a crashed manager, with backoff.
        {"automountServiceAccountToken", false},
        {"enableServiceLinks", false},
        {"terminationGracePeriodSeconds", o.shutdown_timeout.count() + 5},
        {"securityContext",
         {{"runAsNonRoot", true},
          {"runAsUser", 65532},
          {"runAsGroup", 65532},
          {"fsGroup", 65532},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
        {"containers", {container}},
        {"volumes",
         {{{"name", "data"}, {"persistentVolumeClaim", {{"claimName", ModelVolumeName(model)}}}},
          {{"name", "tmp"}, {"emptyDir", Json::object()}}}}}}};
}

Result<std::unique_ptr<LaunchedManager>> KubernetesLauncher::Launch(const std::string& model) {
  Impl& impl = *impl_;
  std::string class_name(kDefaultPodClass);
  if (impl.options.class_of) {
    auto found = impl.options.class_of(model);
    if (found.ok() && !found->empty()) {
      class_name = *found;
    } else if (!found.ok()) {
      spdlog::warn("kubernetes: cannot read the pod class of {} ({}); using {}", model,
                   found.status().message(), class_name);
    }
  }
  ARROW_ASSIGN_OR_RAISE(PodClass pod_class, impl.options.classes.Find(class_name));
  const std::string name = ManagerPodName(model);
  if (auto existing = impl.Find(name)) {
    if (existing->phase == "Succeeded" || existing->phase == "Failed") {
      ARROW_RETURN_NOT_OK(impl.client->Delete(impl.client->Path("pods", name), 0));
      impl.WaitGone(name, std::chrono::seconds(10));
    } else if (existing->deleting) {
      // Its manager has exited (it no longer holds the lease): the pod goes in a moment.
      if (!impl.WaitGone(name, std::chrono::seconds(10))) {
        return Status::IOError("the previous pod of ", model, " is still stopping");
      }
    } else {
      return std::unique_ptr<LaunchedManager>(new PodManager(impl, name, existing->uid));
    }
  }
  ARROW_RETURN_NOT_OK(impl.EnsureVolume(model, pod_class));
  auto created = impl.client->Create(impl.client->Path("pods"), PodSpec(model, pod_class));
  if (!created.ok() && created.status().IsAlreadyExists()) {
    created = impl.client->Get(impl.client->Path("pods", name));  // Another server's: adopt.
  }
  ARROW_RETURN_NOT_OK(created.status());
  {
    std::lock_guard lock(impl.mutex);
    impl.Remember(*created);
  }
  return std::unique_ptr<LaunchedManager>(
      new PodManager(impl, name, (*created)["metadata"].value("uid", "")));
}

void KubernetesLauncher::NoteDiskUse(const std::string& model, int64_t used, int64_t size) {
  Impl& impl = *impl_;
  const std::string name = ModelVolumeName(model);
  auto claim = impl.client->Get(impl.client->Path("persistentvolumeclaims", name));
  if (!claim.ok()) return;
  auto requested =
      ParseQuantity((*claim)["spec"]["resources"]["requests"].value("storage", "0"), false);
  const int64_t grown = GrownVolumeSize(requested.ValueOr(0), used, size);
  if (grown == 0 || grown <= requested.ValueOr(0)) return;
  spdlog::info("kubernetes: the volume {} of {} is {}% full; growing it to {}", name, model,
               used * 100 / size, ByteQuantity(grown));
  auto patched = impl.client->Patch(
      impl.client->Path("persistentvolumeclaims", name),
      {{"spec", {{"resources", {{"requests", {{"storage", ByteQuantity(grown)}}}}}}}});
  if (!patched.ok()) {
    spdlog::warn(
        "kubernetes: cannot grow the volume {} ({}): does its storage class allow "
        "volume expansion?",
        name, patched.status().message());
  }
}

Result<std::vector<std::pair<std::string, std::unique_ptr<LaunchedManager>>>>
KubernetesLauncher::Adopt() {
  std::vector<std::pair<std::string, std::unique_ptr<LaunchedManager>>> adopted;
  std::lock_guard lock(impl_->mutex);
  for (const auto& [name, state] : impl_->pods) {
    const std::string& model = impl_->models[name];
    if (model.empty() || state.deleting || state.phase == "Succeeded" || state.phase == "Failed") {
      continue;
    }
    adopted.emplace_back(model, std::make_unique<PodManager>(*impl_, name, state.uid));
  }
  return adopted;
}

}  // namespace teatree
