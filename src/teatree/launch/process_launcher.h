#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "teatree/launch/launcher.h"

namespace teatree {

/// Starts `<binary> manager --model M <args…>` as a child process, its log written to
/// <log_dir>/manager-M.log (anything else it prints, a crash, to manager-M.err). Secrets among
/// `args` (NATS credentials, passwords in URLs) reach the child as TEATREE_* variables, never
/// on its command line.
class ProcessLauncher : public Launcher {
 public:
  ProcessLauncher(std::string binary, std::vector<std::string> args, std::filesystem::path log_dir);
  Result<std::unique_ptr<LaunchedManager>> Launch(const std::string& model) override;

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::filesystem::path log_dir_;
};

}  // namespace teatree
