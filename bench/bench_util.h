#pragma once

#include <arrow/status.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace teatree::bench {

/// Benchmarks stop at the first failure: a figure from a broken run means nothing.
inline void OrDie(const arrow::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "benchmark setup failed: %s\n", status.ToString().c_str());
  std::exit(1);
}

/// Accumulates wall time of one side of a comparison across benchmark iterations.
class Stopwatch {
 public:
  template <typename F>
  void Time(F&& body) {
    auto start = std::chrono::steady_clock::now();
    body();
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  double seconds() const { return seconds_; }

 private:
  double seconds_ = 0;
};

/// Reports Teatree's throughput beside the raw baseline measured in the same run, and
/// their ratio (Teatree / raw; 1.0 means no overhead).
inline void ReportAgainstBaseline(benchmark::State& state, const char* unit, double units,
                                  const Stopwatch& teatree, const Stopwatch& raw) {
  const double ours = units / teatree.seconds();
  const double baseline = units / raw.seconds();
  state.counters[std::string(unit) + "/s"] = ours;
  state.counters[std::string("raw_") + unit + "/s"] = baseline;
  state.counters["ratio"] = ours / baseline;
}

}  // namespace teatree::bench
