#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "teatree/launch/kube_client.h"
#include "teatree/launch/launcher.h"
#include "teatree/launch/pod_class.h"

namespace teatree {

/// Where a manager pod keeps its model: the mount path of the model's volume.
inline constexpr std::string_view kPodDataDir = "/var/lib/teatree";
/// The ports of a manager pod's read servers (probes use the HTTP one).
inline constexpr int kPodFlightPort = 8815;
inline constexpr int kPodHttpPort = 8080;

struct KubernetesLauncherOptions {
  /// The image of the manager pods (the one `make image` builds).
  std::string image;
  std::string image_pull_policy = "IfNotPresent";
  /// `teatree manager` options every pod gets besides --model and --data-dir. Options that
  /// name this machine's files or addresses (--listen, --token-file, --input-dir, a SQLite
  /// --control, …) are left out: a pod gets them from its ConfigMap. Secrets are never put
  /// in a pod spec: they must come from `manager_secret`.
  std::vector<std::string> args;
  /// A ConfigMap and a Secret whose keys become every manager's environment (TEATREE_*
  /// settings, credentials); empty: none.
  std::string manager_config;
  std::string manager_secret;
  /// The storage class of new model volumes (Longhorn by default).
  std::string storage_class = "longhorn";
  PodClasses classes;
  /// The pod class of a model (from the control catalog).
  std::function<Result<std::string>(const std::string& model)> class_of;
  /// How long a manager gets to finish its batch when its pod is deleted.
  std::chrono::seconds shutdown_timeout{25};
};

/// Starts a manager as a Kubernetes pod `teatree-manager-<model>`, sized by the model's pod
/// class (requests = limits), with the model's data on a PersistentVolumeClaim
/// `teatree-model-<model>` that outlives the pod (created on first use, grown when the class
/// asks for more). Keeps a cache of the manager pods from a watch, so that Exited() costs no
/// API call. Pods outlive the dispatcher: the next one adopts them. Not thread-safe (the
/// dispatcher's thread); the watch runs on a thread of its own.
class KubernetesLauncher : public Launcher {
 public:
  static Result<std::unique_ptr<KubernetesLauncher>> Make(std::unique_ptr<KubeClient> client,
                                                          KubernetesLauncherOptions options);
  ~KubernetesLauncher() override;

  Result<std::unique_ptr<LaunchedManager>> Launch(const std::string& model) override;
  Result<std::vector<std::pair<std::string, std::unique_ptr<LaunchedManager>>>> Adopt() override;
  bool ManagersOutliveDispatcher() const override { return true; }
  /// Grows the model's volume claim by half once its filesystem is 80% full.
  void NoteDiskUse(const std::string& model, int64_t used, int64_t size) override;

  /// The pod a manager of `model` runs in, for a class.
  nlohmann::json PodSpec(const std::string& model, const PodClass& pod_class) const;
  /// The manager options a pod gets of `args` (see KubernetesLauncherOptions::args), and
  /// the names of those left out.
  static std::pair<std::vector<std::string>, std::vector<std::string>> PodArgs(
      const std::vector<std::string>& args);

  struct Impl;

 private:
  explicit KubernetesLauncher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The size to grow a model's volume claim to, when its filesystem (`size` bytes, `used` of
/// them) is 80% full: half as much again as `requested`, in whole GiB; 0 when it need not grow.
int64_t GrownVolumeSize(int64_t requested, int64_t used, int64_t size);

/// The DNS-safe names of a model's pod and volume.
std::string ManagerPodName(const std::string& model);
std::string ModelVolumeName(const std::string& model);

}  // namespace teatree
