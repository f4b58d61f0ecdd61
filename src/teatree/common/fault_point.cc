#include "teatree/common/fault_point.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace teatree {
namespace {

struct Fault {
  std::string point;
  bool parent = false;
  std::string once_file;
};

const Fault& Configured() {
  static const Fault fault = [] {
    Fault f;
    const char* spec = std::getenv("TEATREE_FAULT");
    if (spec == nullptr) return f;
    f.point = spec;
    if (f.point.ends_with(":parent")) {
      f.point.resize(f.point.size() - 7);
      f.parent = true;
    }
    const char* once = std::getenv("TEATREE_FAULT_ONCE");
    if (once != nullptr) f.once_file = once;
    return f;
  }();
  return fault;
}

}  // namespace

void FaultPoint(std::string_view point) {
  const Fault& fault = Configured();
  if (fault.point.empty() || fault.point != point) return;
  if (!fault.once_file.empty()) {
    const int fd = ::open(fault.once_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return;  // Another process got there first.
    ::fsync(fd);
    ::close(fd);
  }
  if (fault.parent) ::kill(::getppid(), SIGKILL);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace teatree
