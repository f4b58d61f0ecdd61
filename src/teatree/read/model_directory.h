#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/read/model_reads.h"

namespace teatree {

/// The models a read server serves. Thread-safe.
class ModelDirectory {
 public:
  virtual ~ModelDirectory() = default;
  /// The models served, sorted.
  virtual std::vector<std::string> Models() = 0;
  /// The reads of `model`; a KeyError when it is not served here.
  virtual Result<ModelReads*> Find(const std::string& model) = 0;
  /// Where the live model is read when that is elsewhere (its manager's Flight URL), or "".
  virtual std::string LiveEndpoint(const std::string& model) = 0;
};

/// One model: a manager's live model or a `teatree reader` replica.
class SingleModel final : public ModelDirectory {
 public:
  explicit SingleModel(std::unique_ptr<ModelReads> reads) : reads_(std::move(reads)) {}
  std::vector<std::string> Models() override { return {reads_->model()}; }
  Result<ModelReads*> Find(const std::string& model) override;
  std::string LiveEndpoint(const std::string&) override { return ""; }
  ModelReads& reads() { return *reads_; }

 private:
  std::unique_ptr<ModelReads> reads_;
};

/// Every model of a data directory with a published version, read from its newest version
/// file (what `teatree serve` serves); live reads go to the model's manager, found through
/// `live_endpoint` (may be empty).
class DataDirReplicas final : public ModelDirectory {
 public:
  using EndpointLookup = std::function<std::string(const std::string& model)>;
  DataDirReplicas(ModelReadsOptions defaults, EndpointLookup live_endpoint)
      : defaults_(std::move(defaults)), live_endpoint_(std::move(live_endpoint)) {}
  std::vector<std::string> Models() override;
  Result<ModelReads*> Find(const std::string& model) override;
  std::string LiveEndpoint(const std::string& model) override {
    return live_endpoint_ ? live_endpoint_(model) : "";
  }

 private:
  ModelReadsOptions defaults_;  // data_dir and reader options; the model is set per model.
  EndpointLookup live_endpoint_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<ModelReads>> replicas_;
};

}  // namespace teatree
