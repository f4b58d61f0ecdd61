#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace teatree {

/// The CPU and memory this process may use, as its container gets them, not as the machine
/// has them: a manager in a `small` pod on a 64-core node must size DuckDB for 2 CPUs.
struct ResourceLimits {
  /// CPUs (fractions allowed); 0: no limit found.
  double cpus = 0;
  /// Bytes; 0: no limit found.
  int64_t memory_bytes = 0;
  /// Where they came from, for the log: "cgroup v2", "pod", ….
  std::string source;
};

/// The tighter of the limits of this process's cgroup (v2 `cpu.max` and `memory.max` under
/// `cgroup_root`, or v1's CFS quota and `memory.limit_in_bytes`) and those the Kubernetes
/// launcher hands a pod (TEATREE_POD_CPU_LIMIT in millicores and TEATREE_POD_MEMORY_LIMIT in
/// bytes, from the pod's own limits). A limit that cannot be read is 0.
ResourceLimits DetectResourceLimits(const std::filesystem::path& cgroup_root = "/sys/fs/cgroup");

/// DuckDB settings of a model's manager within `limits`: "threads" (the CPUs, rounded up) and
/// "memory_limit" for the writer (`writer_share` of the memory) and for live reads of version
/// files (`reads_share`), as DuckDB memory texts ("1228MiB"); empty where there is no limit.
struct ManagerMemoryPlan {
  int threads = 0;
  std::string writer_memory;
  std::string reads_memory;
};
ManagerMemoryPlan PlanManagerMemory(const ResourceLimits& limits, double writer_share = 0.5,
                                    double reads_share = 0.2);

}  // namespace teatree
