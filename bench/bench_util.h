#pragma once

#include <arrow/result.h>
#include <arrow/status.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "teatree/common/arrow_runtime.h"

namespace teatree::bench {

/// The main of every benchmark: Arrow set up, the benchmarks run with Google Benchmark's
/// flags, `teardown` (for state that must go before Arrow does), Arrow shut down.
inline int RunBenchmarks(int argc, char** argv, const std::function<void()>& teardown = {}) {
  if (Status status = InitializeArrow(); !status.ok()) {
    std::fprintf(stderr, "benchmark setup failed: %s\n", status.ToString().c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (teardown) teardown();
  ShutdownArrow();
  return 0;
}

/// Benchmarks stop at the first failure: a figure from a broken run means nothing.
inline void OrDie(const arrow::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "benchmark setup failed: %s\n", status.ToString().c_str());
  std::exit(1);
}

/// The value of a setup step, or exit with its error.
template <typename T>
T OrDie(arrow::Result<T> result) {
  OrDie(result.status());
  return std::move(result).ValueUnsafe();
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
  /// Adds a span timed elsewhere (e.g. from a commit to a notification on another thread).
  void Add(double seconds) { seconds_ += seconds; }
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

/// Like ReportAgainstBaseline() when the two sides did different amounts of work (e.g. each
/// ran for a fixed time): `units` done in `seconds` on each side. `baseline_name` names the
/// baseline's counter (e.g. "raw" or "idle").
inline void ReportRates(benchmark::State& state, const std::string& unit, double units,
                        double seconds, const std::string& baseline_name, double baseline_units,
                        double baseline_seconds) {
  const double ours = units / seconds;
  const double baseline = baseline_units / baseline_seconds;
  state.counters[unit + "/s"] = ours;
  state.counters[baseline_name + "_" + unit + "/s"] = baseline;
  state.counters["ratio"] = ours / baseline;
}

/// The median time, in ms, of fdatasync(2) after a 4 KiB append to a file in `dir`: the
/// disk's floor for one durable commit, which drifts on shared disks; printed beside figures
/// that fsyncs bound.
inline double FsyncMilliseconds(const std::filesystem::path& dir, int samples = 21) {
  const std::filesystem::path file = dir / "fsync-probe";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  std::vector<double> times;
  const std::vector<char> block(4096, 'x');
  for (int i = 0; i < samples; ++i) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    const auto start = std::chrono::steady_clock::now();
    if (::fdatasync(fd) != 0) break;
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  ::close(fd);
  std::filesystem::remove(file);
  if (times.empty()) return -1;
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace teatree::bench
