#include "teatree/common/resource_limits.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace teatree {
namespace {

namespace fs = std::filesystem;

/// The words of the first line of a file; none if it cannot be read.
std::vector<std::string> Words(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::istringstream words(line);
  std::vector<std::string> out;
  for (std::string word; words >> word;) out.push_back(word);
  return out;
}

int64_t ToInt(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : 0;
}

/// Memory limits above this mean "none" (cgroup v1 writes a huge number for unlimited).
constexpr int64_t kUnlimited = int64_t{1} << 60;

/// `candidate` if it is a limit tighter than `current` (0: none).
template <typename T>
bool Tighter(T candidate, T current) {
  return candidate > 0 && (current == 0 || candidate < current);
}

}  // namespace

ResourceLimits DetectResourceLimits(const fs::path& cgroup_root) {
  ResourceLimits limits;
  // cgroup v2: the process's own group, from /proc/self/cgroup ("0::/path").
  fs::path group = cgroup_root;
  if (std::ifstream self("/proc/self/cgroup"); self) {
    for (std::string line; std::getline(self, line);) {
      if (line.starts_with("0::")) group = cgroup_root / fs::path(line.substr(3)).relative_path();
    }
  }
  for (const fs::path& dir : {group, cgroup_root}) {
    if (auto cpu = Words(dir / "cpu.max"); cpu.size() == 2 && cpu[0] != "max") {
      const int64_t quota = ToInt(cpu[0]), period = ToInt(cpu[1]);
      if (quota > 0 && period > 0 && Tighter(static_cast<double>(quota) / period, limits.cpus)) {
        limits.cpus = static_cast<double>(quota) / period;
        limits.source = "cgroup";
      }
    }
    if (auto memory = Words(dir / "memory.max"); memory.size() == 1 && memory[0] != "max") {
      if (int64_t bytes = ToInt(memory[0]); Tighter(bytes, limits.memory_bytes)) {
        limits.memory_bytes = bytes;
        limits.source = "cgroup";
      }
    }
  }
  // cgroup v1.
  if (auto quota = Words(cgroup_root / "cpu" / "cpu.cfs_quota_us"); quota.size() == 1) {
    const int64_t us = ToInt(quota[0]);
    const auto period = Words(cgroup_root / "cpu" / "cpu.cfs_period_us");
    const int64_t period_us = period.size() == 1 ? ToInt(period[0]) : 0;
    if (us > 0 && period_us > 0 && Tighter(static_cast<double>(us) / period_us, limits.cpus)) {
      limits.cpus = static_cast<double>(us) / period_us;
      limits.source = "cgroup v1";
    }
  }
  if (auto memory = Words(cgroup_root / "memory" / "memory.limit_in_bytes"); memory.size() == 1) {
    if (int64_t bytes = ToInt(memory[0]);
        bytes < kUnlimited && Tighter(bytes, limits.memory_bytes)) {
      limits.memory_bytes = bytes;
      limits.source = "cgroup v1";
    }
  }
  // The pod's limits, as the Kubernetes launcher passes them (the downward API).
  if (const char* millis = std::getenv("TEATREE_POD_CPU_LIMIT")) {
    if (double cpus = ToInt(millis) / 1000.0; Tighter(cpus, limits.cpus)) {
      limits.cpus = cpus;
      limits.source = "pod";
    }
  }
  if (const char* bytes = std::getenv("TEATREE_POD_MEMORY_LIMIT")) {
    if (int64_t value = ToInt(bytes); Tighter(value, limits.memory_bytes)) {
      limits.memory_bytes = value;
      limits.source = "pod";
    }
  }
  return limits;
}

ManagerMemoryPlan PlanManagerMemory(const ResourceLimits& limits, double writer_share,
                                    double reads_share) {
  ManagerMemoryPlan plan;
  if (limits.cpus > 0) plan.threads = std::max(1, static_cast<int>(std::ceil(limits.cpus)));
  if (limits.memory_bytes > 0) {
    auto mib = [&](double share) {
      return std::to_string(
                 std::max<int64_t>(64, static_cast<int64_t>(limits.memory_bytes * share) >> 20)) +
             "MiB";
    };
    plan.writer_memory = mib(writer_share);
    plan.reads_memory = mib(reads_share);
  }
  return plan;
}

}  // namespace teatree
