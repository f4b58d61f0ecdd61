#include "teatree/manager/catalog_recorder.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "teatree/common/fault_point.h"

namespace teatree {
namespace {

constexpr auto kFirstRetry = std::chrono::milliseconds(100);
constexpr auto kLongestRetry = std::chrono::seconds(5);
constexpr auto kFlushOnClose = std::chrono::seconds(10);
/// How long a round waits for more updates before it is written, unless someone waits for
/// it: under a steady stream of small batches, many batches share one round of commits.
constexpr auto kGatherTime = std::chrono::milliseconds(50);

}  // namespace

CatalogRecorder::CatalogRecorder(ControlStore& control, ModelRecord model)
    : control_(control), model_(std::move(model)) {
  thread_ = std::thread([this] { Run(); });
}

CatalogRecorder::~CatalogRecorder() {
  Status flushed = Flush(kFlushOnClose);
  if (!flushed.ok()) {
    spdlog::warn(
        "model {}: {} catalog updates not written ({}); they are reconciled at the "
        "next start",
        model_.id, pending(), flushed.message());
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CatalogRecorder::SetEndpoint(const std::string& endpoint) {
  UpdateModel([&](ModelRecord& model) { model.manager_endpoint = endpoint; });
}

void CatalogRecorder::SetLeaseHolder(const std::string& holder) {
  UpdateModel([&](ModelRecord& model) { model.lease_holder = holder; });
}

void CatalogRecorder::SetEngine(const std::string& engine) {
  UpdateModel([&](ModelRecord& model) { model.engine = engine; });
}

void CatalogRecorder::UpdateModel(const std::function<void(ModelRecord&)>& change) {
  std::lock_guard lock(mutex_);
  change(model_);
  model_dirty_ = true;
  ++submitted_;
  wake_.notify_one();
}

void CatalogRecorder::SetState(const std::string& status, int64_t current_version) {
  UpdateModel([&](ModelRecord& model) {
    model.status = status;
    model.current_version = current_version;
  });
}

void CatalogRecorder::Published(int64_t version, std::vector<ContentRecord> content) {
  std::lock_guard lock(mutex_);
  model_.published_version = std::max(model_.published_version, version);
  model_dirty_ = true;
  std::move(content.begin(), content.end(), std::back_inserter(content_));
  ++submitted_;
  wake_.notify_one();
}

void CatalogRecorder::LogRequests(std::vector<RequestLogRecord> records) {
  if (records.empty()) return;
  std::lock_guard lock(mutex_);
  std::move(records.begin(), records.end(), std::back_inserter(requests_));
  ++submitted_;
  wake_.notify_one();
}

Status CatalogRecorder::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const int64_t target = submitted_;
  ++flushing_;
  wake_.notify_all();
  const bool done = written_.wait_for(lock, timeout, [&] { return recorded_ >= target; });
  --flushing_;
  if (done) return Status::OK();
  return last_error_.ok()
             ? Status::IOError("the control catalog did not answer within ", timeout.count(), " ms")
             : last_error_;
}

int64_t CatalogRecorder::pending() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(requests_.size() + content_.size()) + (model_dirty_ ? 1 : 0) +
         in_flight_;
}

Status CatalogRecorder::Write(const ModelRecord& model,
                              const std::vector<RequestLogRecord>& requests,
                              const std::vector<ContentRecord>& content) {
  // The model row first: request and content rows refer to it.
  ARROW_RETURN_NOT_OK(control_.UpsertModel(model));
  FaultPoint("catalog.write");
  if (!requests.empty()) ARROW_RETURN_NOT_OK(control_.LogRequests(requests));
  if (!content.empty()) ARROW_RETURN_NOT_OK(control_.RecordContent(content));
  return Status::OK();
}

void CatalogRecorder::Run() {
  auto retry = kFirstRetry;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || submitted_ > recorded_; });
    wake_.wait_for(lock, kGatherTime, [&] { return stopping_ || flushing_ > 0; });
    if (stopping_) return;
    const int64_t round = submitted_;
    const ModelRecord model = model_;
    std::vector<RequestLogRecord> requests = std::move(requests_);
    std::vector<ContentRecord> content = std::move(content_);
    requests_.clear();
    content_.clear();
    model_dirty_ = false;
    // Still pending while being written: a failed round comes back.
    in_flight_ = static_cast<int64_t>(requests.size() + content.size()) + 1;
    lock.unlock();
    Status status = Write(model, requests, content);
    lock.lock();
    in_flight_ = 0;
    if (status.ok()) {
      if (!last_error_.ok()) spdlog::info("model {}: control catalog reachable again", model.id);
      last_error_ = Status::OK();
      recorded_ = round;
      retry = kFirstRetry;
      written_.notify_all();
      continue;
    }
    // Put the round back in front of what arrived meanwhile, and try again later.
    if (last_error_.ok()) {
      spdlog::warn("model {}: control catalog not updated ({}); retrying, the manager goes on",
                   model.id, status.message());
    }
    last_error_ = status;
    model_dirty_ = true;
    requests.insert(requests.end(), std::make_move_iterator(requests_.begin()),
                    std::make_move_iterator(requests_.end()));
    requests_ = std::move(requests);
    content.insert(content.end(), std::make_move_iterator(content_.begin()),
                   std::make_move_iterator(content_.end()));
    content_ = std::move(content);
    written_.notify_all();
    wake_.wait_for(lock, retry, [&] { return stopping_; });
    retry = std::min<std::chrono::milliseconds>(2 * retry, kLongestRetry);
  }
}

}  // namespace teatree
