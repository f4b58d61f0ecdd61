#include "teatree/common/resource_limits.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
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

/// This process's group in each hierarchy of /proc/self/cgroup: "" for cgroup v2's, the
/// controller names for v1's ("memory", "cpu,cpuacct").
std::map<std::string, fs::path> OwnGroups() {
  std::map<std::string, fs::path> groups;
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const fs::path path = fs::path(line.substr(second + 1)).relative_path();
    if (controllers.empty()) groups[""] = path;
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) groups[name] = path;
  }
  return groups;
}

/// The directories to look in for a limit: the process's own group and its root (a container
/// sees its own group as the root).
std::vector<fs::path> Candidates(const fs::path& hierarchy, const fs::path& own) {
  std::vector<fs::path> dirs{hierarchy};
  if (!own.empty()) dirs.insert(dirs.begin(), hierarchy / own);
  return dirs;
}

}  // namespace

ResourceLimits DetectResourceLimits(const fs::path& cgroup_root) {
  ResourceLimits limits;
  auto groups = OwnGroups();
  auto note = [&](double cpus, int64_t bytes, const char* source) {
    if (Tighter(cpus, limits.cpus)) {
      limits.cpus = cpus;
      limits.source = source;
    }
    if (Tighter(bytes, limits.memory_bytes)) {
      limits.memory_bytes = bytes;
      limits.source = source;
    }
  };
  // cgroup v2 (unified): cpu.max is "QUOTA PERIOD" or "max PERIOD"; memory.max a number or
  // "max".
  for (const fs::path& dir : Candidates(cgroup_root, groups[""])) {
    if (auto cpu = Words(dir / "cpu.max"); cpu.size() == 2 && cpu[0] != "max") {
      const int64_t quota = ToInt(cpu[0]), period = ToInt(cpu[1]);
      if (quota > 0 && period > 0) note(static_cast<double>(quota) / period, 0, "cgroup");
    }
    if (auto memory = Words(dir / "memory.max"); memory.size() == 1 && memory[0] != "max") {
      note(0, ToInt(memory[0]), "cgroup");
    }
  }
  // cgroup v1: the CFS quota, and memory.limit_in_bytes (a huge number when unlimited).
  for (const fs::path& dir : Candidates(cgroup_root / "cpu", groups["cpu"])) {
    const auto quota = Words(dir / "cpu.cfs_quota_us");
    const auto period = Words(dir / "cpu.cfs_period_us");
    if (quota.size() == 1 && period.size() == 1 && ToInt(quota[0]) > 0 && ToInt(period[0]) > 0) {
      note(static_cast<double>(ToInt(quota[0])) / ToInt(period[0]), 0, "cgroup v1");
    }
  }
  for (const fs::path& dir : Candidates(cgroup_root / "memory", groups["memory"])) {
    if (auto memory = Words(dir / "memory.limit_in_bytes"); memory.size() == 1) {
      if (int64_t bytes = ToInt(memory[0]); bytes < kUnlimited) note(0, bytes, "cgroup v1");
    }
  }
  // The pod's limits, as the Kubernetes launcher passes them (the downward API).
  const char* millis = std::getenv("TEATREE_POD_CPU_LIMIT");
  const char* bytes = std::getenv("TEATREE_POD_MEMORY_LIMIT");
  note(millis ? ToInt(millis) / 1000.0 : 0, bytes ? ToInt(bytes) : 0, "pod");
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
