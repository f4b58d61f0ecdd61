#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/control/control_store.h"

namespace teatree {

/// The one writer of a model's rows in the control catalog, on a thread of its own, so that
/// neither the writer nor the publisher waits for the catalog's commits. Updates are written
/// in the order given; what queues up while a round is being written is merged into the next
/// round (the newest model state, all request and content rows), so a busy model pays a few
/// catalog commits per round, not per batch. While the catalog fails (a locked file, an
/// unreachable server) the updates are kept and retried with backoff: the model's own file
/// stays the source of truth and the manager keeps applying. Thread-safe.
class CatalogRecorder {
 public:
  /// `control` must outlive the recorder. `model` is the state the catalog starts from.
  CatalogRecorder(ControlStore& control, ModelRecord model);
  /// Tries to write what is pending (for at most the flush timeout), then stops.
  ~CatalogRecorder();

  CatalogRecorder(const CatalogRecorder&) = delete;
  CatalogRecorder& operator=(const CatalogRecorder&) = delete;

  /// The model's status and newest committed version.
  void SetState(const std::string& status, int64_t current_version);
  /// The model's engine ("duckdb" or "arrow").
  void SetEngine(const std::string& engine);
  /// Where the model's manager serves reads (recorded as manager_endpoint); "" when none.
  void SetEndpoint(const std::string& endpoint);
  /// Who holds the model's lease and writes it (recorded as lease_holder); "" when none.
  void SetLeaseHolder(const std::string& holder);
  /// A version was published, with the content rows describing it.
  void Published(int64_t version, std::vector<ContentRecord> content);
  /// Outcomes of requests, logged once each.
  void LogRequests(std::vector<RequestLogRecord> records);

  /// Waits until everything handed over before the call is in the catalog; fails with the
  /// catalog's last error if that does not happen within `timeout`.
  Status Flush(std::chrono::milliseconds timeout);
  /// Updates not yet in the catalog: request and content rows, plus one for a model state.
  int64_t pending() const;

 private:
  /// Applies `change` to the model's row and schedules writing it.
  void UpdateModel(const std::function<void(ModelRecord&)>& change);
  void Run();
  /// Writes one round; on failure the caller puts it back.
  Status Write(const ModelRecord& model, const std::vector<RequestLogRecord>& requests,
               const std::vector<ContentRecord>& content);

  ControlStore& control_;
  std::thread thread_;

  // State below is protected by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;     // Something to write, or stopping.
  std::condition_variable written_;  // A round ended.
  ModelRecord model_;
  bool model_dirty_ = false;
  std::vector<RequestLogRecord> requests_;
  std::vector<ContentRecord> content_;
  int64_t in_flight_ = 0;  // Updates of the round being written, counted by pending().
  int64_t submitted_ = 0;  // Rounds' worth of updates handed over…
  int64_t recorded_ = 0;   // …and how many of them are in the catalog.
  Status last_error_;
  int flushing_ = 0;  // Flush() calls waiting: write without gathering.
  bool stopping_ = false;
};

}  // namespace teatree
