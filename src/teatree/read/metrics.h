#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "teatree/common/steps.h"

namespace teatree {

/// The process's Prometheus metrics, rendered by GET /metrics:
///   teatree_requests_total{model,op,status}       requests applied or rejected
///   teatree_apply_seconds{model}                  histogram: one batch's apply (commit included)
///   teatree_publish_seconds{model}                histogram: commit to version file published
///   teatree_step_seconds{model,step}              histogram: a stage of a request (scan, join...)
///   teatree_step_rows_total{model,step}           rows out of those stages
///   teatree_queue_backlog{model}                  requests waiting in the queue
///   teatree_model_version{model,state}            committed ("current") and "published"
///   teatree_reads_total{protocol,status}          reads served ("ok" or the error's kind)
/// Thread-safe. One per process: Metrics::Process().
class Metrics {
 public:
  static Metrics& Process();

  void CountRequest(const std::string& model, const std::string& op, const std::string& status);
  void ObserveApply(const std::string& model, double seconds);
  void ObservePublish(const std::string& model, double seconds);
  /// One stage of a request (RequestOutcome::steps).
  void ObserveStep(const std::string& model, const Step& step);
  void SetBacklog(const std::string& model, int64_t requests);
  void SetVersions(const std::string& model, int64_t current, int64_t published);
  void CountRead(const std::string& protocol, const std::string& status);
  /// Runs before each rendering, to refresh gauges that are read rather than pushed.
  void SetCollector(std::function<void(Metrics&)> collector);

  /// The Prometheus text exposition format.
  std::string Render();

 private:
  Metrics();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
