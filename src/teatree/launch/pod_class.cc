#include "teatree/launch/pod_class.h"

#include <charconv>
#include <cmath>

namespace teatree {
namespace {

constexpr int64_t kGi = int64_t{1} << 30;

/// The multiplier of a quantity's suffix, 0 if it is not one.
double SuffixScale(std::string_view suffix) {
  static const std::pair<std::string_view, double> kSuffixes[] = {{"", 1},
                                                                  {"m", 1e-3},
                                                                  {"k", 1e3},
                                                                  {"M", 1e6},
                                                                  {"G", 1e9},
                                                                  {"T", 1e12},
                                                                  {"P", 1e15},
                                                                  {"Ki", 1024.0},
                                                                  {"Mi", 1048576.0},
                                                                  {"Gi", 1073741824.0},
                                                                  {"Ti", 1099511627776.0},
                                                                  {"Pi", 1125899906842624.0}};
  for (const auto& [name, scale] : kSuffixes) {
    if (name == suffix) return scale;
  }
  return 0;
}

}  // namespace

Result<int64_t> ParseQuantity(std::string_view text, bool cpu) {
  const auto digits_end = text.find_first_not_of("0123456789.");
  const std::string_view number = text.substr(0, digits_end);
  const std::string_view suffix =
      digits_end == std::string_view::npos ? std::string_view() : text.substr(digits_end);
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  const double scale = SuffixScale(suffix);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || scale == 0 ||
      value <= 0) {
    return Status::Invalid("'", text, "' is not a positive Kubernetes quantity: write e.g. ",
                           cpu ? "2 or 500m (CPUs)" : "4Gi or 512Mi (bytes)");
  }
  return static_cast<int64_t>(std::llround(value * scale * (cpu ? 1000 : 1)));
}

std::string CpuQuantity(int64_t millis) {
  return millis % 1000 == 0 ? std::to_string(millis / 1000) : std::to_string(millis) + "m";
}

std::string ByteQuantity(int64_t bytes) {
  for (const auto& [suffix, shift] : {std::pair{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}}) {
    if (bytes % (int64_t{1} << shift) == 0) return std::to_string(bytes >> shift) + suffix;
  }
  return std::to_string(bytes);
}

PodClasses::PodClasses() {
  for (const PodClass& c :
       {PodClass{"small", 2000, 2 * kGi, 20 * kGi}, PodClass{"medium", 4000, 4 * kGi, 50 * kGi},
        PodClass{"large", 8000, 16 * kGi, 200 * kGi},
        PodClass{"xlarge", 16000, 64 * kGi, 500 * kGi}}) {
    classes_[c.name] = c;
  }
}

Status PodClasses::Set(std::string_view spec) {
  const auto usage = [&] {
    return Status::Invalid("pod class '", spec,
                           "' is not NAME=CPU,MEMORY[,STORAGE]: write e.g. medium=4,8Gi,100Gi");
  };
  const auto equals = spec.find('=');
  if (equals == std::string_view::npos || equals == 0) return usage();
  const std::string name(spec.substr(0, equals));
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return Status::Invalid("pod class name '", name, "' may hold only a-z, 0-9 and -");
  }
  std::vector<std::string_view> parts;
  for (std::string_view rest = spec.substr(equals + 1);;) {
    const auto comma = rest.find(',');
    parts.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (parts.size() < 2 || parts.size() > 3) return usage();
  PodClass c{.name = name};
  auto known = classes_.find(name);
  c.storage_bytes = known != classes_.end() ? known->second.storage_bytes : 20 * kGi;
  ARROW_ASSIGN_OR_RAISE(c.cpu_millis, ParseQuantity(parts[0], true));
  ARROW_ASSIGN_OR_RAISE(c.memory_bytes, ParseQuantity(parts[1], false));
  if (parts.size() == 3) {
    ARROW_ASSIGN_OR_RAISE(c.storage_bytes, ParseQuantity(parts[2], false));
  }
  classes_[name] = c;
  return Status::OK();
}

Result<PodClass> PodClasses::Find(const std::string& name) const {
  auto found = classes_.find(name);
  if (found != classes_.end()) return found->second;
  std::string names;
  for (const auto& [known, c] : classes_) names += (names.empty() ? "" : ", ") + known;
  return Status::KeyError("pod class '", name, "' does not exist: use one of ", names,
                          " (or define it with --pod-class ", name, "=CPU,MEMORY)");
}

std::vector<std::string> PodClasses::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, c] : classes_) names.push_back(name);
  return names;
}

}  // namespace teatree
