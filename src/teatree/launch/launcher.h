#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

/// A manager the dispatcher started (or adopted): a child process, or a Kubernetes pod.
/// Called from the dispatcher's thread only.
class LaunchedManager {
 public:
  virtual ~LaunchedManager() = default;
  /// Its exit code once it has exited (128 + signal when killed); nullopt while it runs.
  virtual std::optional<int> Exited() = 0;
  /// Asks it to finish its batch and stop (SIGTERM for a process, deletion for a pod).
  virtual Status Stop() = 0;
  /// Waits up to `grace` for it to exit, then kills it.
  virtual void Terminate(std::chrono::milliseconds grace) = 0;
  /// For logs and `teatree status`, e.g. "pid 1234" or "pod teatree-manager-sales (Running)".
  virtual std::string Describe() const = 0;
  /// Why it is not running yet (a pod no node can take, an image that cannot be pulled);
  /// "" when it runs or is merely starting.
  virtual std::string Waiting() const { return ""; }
};

/// How the dispatcher starts a manager for a model: a child process on this machine
/// (ProcessLauncher), or a pod sized by the model's pod class (KubernetesLauncher). Chosen
/// once, in `RunServe`. Called from the dispatcher's thread only.
class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual Result<std::unique_ptr<LaunchedManager>> Launch(const std::string& model) = 0;
  /// Managers an earlier dispatcher started that still run, by model: a restarted server
  /// takes them over instead of starting duplicates. None for child processes, which die
  /// with their parent.
  virtual Result<std::vector<std::pair<std::string, std::unique_ptr<LaunchedManager>>>> Adopt() {
    return std::vector<std::pair<std::string, std::unique_ptr<LaunchedManager>>>{};
  }
  /// Whether managers are left running when the dispatcher stops, for the next one to
  /// adopt (pods), rather than stopped with it (child processes).
  virtual bool ManagersOutliveDispatcher() const { return false; }
  /// What a running manager reports of the filesystem its model is on, in bytes: a launcher
  /// that gives each model a volume grows it before it fills up.
  virtual void NoteDiskUse(const std::string& model, int64_t used, int64_t size) {
    (void)model, (void)used, (void)size;
  }
};

}  // namespace teatree
