#include "teatree/read/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>

namespace teatree {

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("teatree_requests_total")
          .Help("Requests applied or rejected, by model, op and status")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& apply =
      prometheus::BuildHistogram()
          .Name("teatree_apply_seconds")
          .Help("Time to apply one batch of requests, commit included")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& publish =
      prometheus::BuildHistogram()
          .Name("teatree_publish_seconds")
          .Help("Time from a batch's commit to its version file being published")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& steps =
      prometheus::BuildHistogram()
          .Name("teatree_step_seconds")
          .Help(
              "Time of each stage of applying a request or running a function (scan, "
              "aggregate, join, write, publish...), by model and step")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& step_rows =
      prometheus::BuildCounter()
          .Name("teatree_step_rows_total")
          .Help("Rows out of each stage, by model and step")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& backlog = prometheus::BuildGauge()
                                                       .Name("teatree_queue_backlog")
                                                       .Help("Requests waiting in the queue")
                                                       .Register(*registry);
  prometheus::Family<prometheus::Gauge>& version =
      prometheus::BuildGauge()
          .Name("teatree_model_version")
          .Help("A model's committed (state=current) and published versions")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& reads = prometheus::BuildCounter()
                                                       .Name("teatree_reads_total")
                                                       .Help("Reads served, by protocol and status")
                                                       .Register(*registry);
  std::mutex collector_mutex;
  std::function<void(Metrics&)> collector;

  static const prometheus::Histogram::BucketBoundaries& Buckets() {
    static const prometheus::Histogram::BucketBoundaries buckets = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    return buckets;
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}

Metrics& Metrics::Process() {
  static Metrics* metrics = new Metrics();  // Never destroyed: threads may record at exit.
  return *metrics;
}

void Metrics::CountRequest(const std::string& model, const std::string& op,
                           const std::string& status) {
  impl_->requests.Add({{"model", model}, {"op", op}, {"status", status}}).Increment();
}

void Metrics::ObserveApply(const std::string& model, double seconds) {
  impl_->apply.Add({{"model", model}}, Impl::Buckets()).Observe(seconds);
}

void Metrics::ObserveStep(const std::string& model, const Step& step) {
  // By kind ("scan", not "scan orders"): table names would make a series per table.
  const std::string kind = step.name.substr(0, step.name.find(' '));
  impl_->steps.Add({{"model", model}, {"step", kind}}, Impl::Buckets()).Observe(step.ms / 1000);
  impl_->step_rows.Add({{"model", model}, {"step", kind}})
      .Increment(static_cast<double>(step.rows));
}

void Metrics::ObservePublish(const std::string& model, double seconds) {
  impl_->publish.Add({{"model", model}}, Impl::Buckets()).Observe(seconds);
}

void Metrics::SetBacklog(const std::string& model, int64_t requests) {
  impl_->backlog.Add({{"model", model}}).Set(static_cast<double>(requests));
}

void Metrics::SetVersions(const std::string& model, int64_t current, int64_t published) {
  if (current > 0) {
    impl_->version.Add({{"model", model}, {"state", "current"}}).Set(static_cast<double>(current));
  }
  impl_->version.Add({{"model", model}, {"state", "published"}})
      .Set(static_cast<double>(published));
}

void Metrics::CountRead(const std::string& protocol, const std::string& status) {
  impl_->reads.Add({{"protocol", protocol}, {"status", status}}).Increment();
}

void Metrics::SetCollector(std::function<void(Metrics&)> collector) {
  std::lock_guard lock(impl_->collector_mutex);
  impl_->collector = std::move(collector);
}

std::string Metrics::Render() {
  {
    std::lock_guard lock(impl_->collector_mutex);
    if (impl_->collector) impl_->collector(*this);
  }
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace teatree
