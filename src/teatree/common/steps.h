#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace teatree {

/// One stage of applying a request or running a function (scan, filter, join, aggregate,
/// write, publish...): how long it took and how many rows came out of it.
struct Step {
  std::string name;
  double ms = 0;
  int64_t rows = 0;

  nlohmann::json ToJson() const { return {{"name", name}, {"ms", ms}, {"rows", rows}}; }
  static Step FromJson(const nlohmann::json& json) {
    return {json.value("name", ""), json.value("ms", 0.0), json.value("rows", int64_t{0})};
  }
};

/// Collects the steps of one request as they finish. Header-only, so that function plugins
/// use it without linking Teatree. Not thread-safe.
class StepRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  /// Records a step that started at `start` and ends now.
  void Record(std::string name, Clock::time_point start, int64_t rows) {
    steps_.push_back({std::move(name),
                      std::chrono::duration<double, std::milli>(Clock::now() - start).count(),
                      rows});
  }
  /// Records a step measured elsewhere (e.g. on another thread).
  void Add(Step step) { steps_.push_back(std::move(step)); }
  const std::vector<Step>& steps() const { return steps_; }
  std::vector<Step> Take() { return std::exchange(steps_, {}); }

 private:
  std::vector<Step> steps_;
};

}  // namespace teatree
