#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

struct SubprocessOptions {
  /// argv[0] is the program: a path, or a name looked up on PATH.
  std::vector<std::string> argv;
  /// stdout and stderr are appended here; empty sends them to /dev/null.
  std::filesystem::path log_path;
  /// Kill the child when this process dies, so a crashed parent leaves no orphans.
  bool die_with_parent = true;
  /// Variables the child gets besides (or instead of) this process's own: how a secret
  /// reaches a child without showing on its command line.
  std::map<std::string, std::string> environment;
};

/// A child process: Teatree's one way to start programs (nats-server, managers, servers
/// in tests). Spawn() returns only once the program has been exec'd, so a missing binary is
/// an error there, not a silent exit later. Destroying a running Subprocess stops it.
/// Not thread-safe.
class Subprocess {
 public:
  static Result<std::unique_ptr<Subprocess>> Spawn(const SubprocessOptions& options);
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& program() const { return program_; }

  /// True while the child has not exited.
  bool Running();
  Status Signal(int signal);
  /// Waits up to `timeout` for the child to exit; returns its exit code, or 128 + signal
  /// number when a signal ended it.
  Result<int> Wait(std::chrono::milliseconds timeout);
  /// SIGTERM, then SIGKILL if the child is still there after `grace`. Returns as Wait().
  Result<int> Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  Subprocess(pid_t pid, std::string program) : pid_(pid), program_(std::move(program)) {}
  bool Reap(int options);

  pid_t pid_;
  std::string program_;
  std::optional<int> exit_code_;
};

}  // namespace teatree
