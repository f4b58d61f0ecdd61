#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/common/steps.h"

namespace arrow {
class Table;
namespace dataset {
class Dataset;
}  // namespace dataset
}  // namespace arrow

namespace teatree {

/// What a native function sees of a model while it runs: each table as an Arrow dataset (a
/// scan pushes its filter and projection down: on the Arrow engine into the Parquet files,
/// skipping row groups by their statistics), the function's bound arguments, and a recorder
/// for its steps. Each engine provides its own; header-only, so that plugins use it without
/// linking Teatree.
class FunctionContext {
 public:
  FunctionContext(nlohmann::json args, StepRecorder& steps)
      : args_(std::move(args)), steps_(steps) {}
  virtual ~FunctionContext() = default;

  /// The model's tables, sorted.
  virtual std::vector<std::string> Tables() const = 0;
  /// Table `name` as a dataset; an error saying so when the model has no such table.
  virtual Result<std::shared_ptr<arrow::dataset::Dataset>> Table(const std::string& name) = 0;

  /// The arguments, checked against the function's parameters, defaults filled in.
  const nlohmann::json& args() const { return args_; }
  /// Where the function records its stages (scan, filter, join, aggregate...).
  StepRecorder& steps() { return steps_; }

 private:
  nlohmann::json args_;
  StepRecorder& steps_;
};

}  // namespace teatree
