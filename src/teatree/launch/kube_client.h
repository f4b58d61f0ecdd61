#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "teatree/common/status.h"
#include "teatree/launch/kube_config.h"

namespace teatree {

/// A client of the Kubernetes API: JSON over HTTPS, authenticated by a bearer token or a
/// client certificate. Errors carry the API server's own message; a missing object is a
/// KeyError, an existing one (on create) AlreadyExists. Thread-safe: each call opens its own
/// connection.
class KubeClient {
 public:
  static Result<std::unique_ptr<KubeClient>> Make(KubeConfig config);
  ~KubeClient();

  const KubeConfig& config() const;
  /// The namespaced path of a collection, e.g. Path("pods") → /api/v1/namespaces/NS/pods.
  std::string Path(const std::string& resource, const std::string& name = "") const;

  Result<nlohmann::json> Get(const std::string& path);
  /// POSTs `object` to the collection at `path`.
  Result<nlohmann::json> Create(const std::string& path, const nlohmann::json& object);
  /// A JSON merge patch (RFC 7386).
  Result<nlohmann::json> Patch(const std::string& path, const nlohmann::json& patch);
  /// Deletes with this grace period (< 0: the object's own). A missing object is not an error.
  Status Delete(const std::string& path, int grace_period_seconds = -1);

  /// Watches the collection at `path` (with its query, e.g. "?labelSelector=…") from
  /// `resource_version`, calling `on_event` with each event ({"type", "object"}) until the
  /// server ends the watch (after at most `timeout_seconds`), `on_event` returns false, or
  /// `stop` turns true. An ERROR event (e.g. 410 Gone: the version is too old) is returned as
  /// an error, its code in the message.
  Status Watch(const std::string& path, const std::string& resource_version, int timeout_seconds,
               const std::function<bool(const nlohmann::json&)>& on_event,
               const std::atomic<bool>& stop);
  /// Ends the watches in progress at once (their connections are shut down): with `stop`
  /// set first, Watch() returns without waiting for the server's next event.
  void CancelWatches();

 private:
  struct Impl;
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
