#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

/// The class a model gets unless one is set (`teatree model set-class`).
inline constexpr std::string_view kDefaultPodClass = "small";

/// What a manager pod of one class gets: its CPU and memory (requests = limits, so the pod
/// is in the Guaranteed QoS class and is the last to be evicted) and the size of a new
/// model volume.
struct PodClass {
  std::string name;
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int64_t storage_bytes = 0;

  bool operator==(const PodClass&) const = default;
};

/// A Kubernetes quantity ("2", "500m", "4Gi", "1.5G", "64Mi") in millicores (`cpu`) or bytes.
Result<int64_t> ParseQuantity(std::string_view text, bool cpu);
/// The quantity text Kubernetes takes: "2" or "500m" for CPU; "4Gi", "1536Mi" or bytes.
std::string CpuQuantity(int64_t millis);
std::string ByteQuantity(int64_t bytes);

/// The class table: small (2 CPU, 2 GiB), medium (4, 4 GiB), large (8, 16 GiB) and xlarge
/// (16, 64 GiB) unless changed with Set(). Copyable value.
class PodClasses {
 public:
  PodClasses();

  /// Adds or replaces a class from "NAME=CPU,MEMORY[,STORAGE]", e.g. "medium=4,8Gi,100Gi"
  /// (the `--pod-class` option); a class keeps its volume size when STORAGE is left out.
  Status Set(std::string_view spec);
  /// The class called `name`; an error naming the classes there are.
  Result<PodClass> Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, PodClass> classes_;
};

}  // namespace teatree
