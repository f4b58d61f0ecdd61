#include "teatree/launch/process_launcher.h"

#include <csignal>

#include "teatree/common/secret_text.h"
#include "teatree/common/subprocess.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;

class ProcessManager : public LaunchedManager {
 public:
  explicit ProcessManager(std::unique_ptr<Subprocess> process) : process_(std::move(process)) {}

  std::optional<int> Exited() override {
    if (process_->Running()) return std::nullopt;
    auto code = process_->Wait(milliseconds(0));
    return code.ok() ? *code : -1;
  }
  Status Stop() override { return process_->Signal(SIGTERM); }
  void Terminate(milliseconds grace) override { (void)process_->Stop(grace); }
  std::string Describe() const override { return "pid " + std::to_string(process_->pid()); }

 private:
  std::unique_ptr<Subprocess> process_;
};

}  // namespace

ProcessLauncher::ProcessLauncher(std::string binary, std::vector<std::string> args,
                                 std::filesystem::path log_dir)
    : binary_(std::move(binary)), args_(std::move(args)), log_dir_(std::move(log_dir)) {}

Result<std::unique_ptr<LaunchedManager>> ProcessLauncher::Launch(const std::string& model) {
  SecretFreeArgs split = MoveSecretsToEnvironment(args_);
  // The manager writes its log to manager-M.log itself, rotated by size (--log-max-mb,
  // --log-keep among the arguments).
  std::vector<std::string> argv{binary_,      "manager",
                                "--model",    model,
                                "--log-file", (log_dir_ / ("manager-" + model + ".log")).string()};
  argv.insert(argv.end(), split.args.begin(), split.args.end());
  std::error_code ec;
  std::filesystem::create_directories(log_dir_, ec);
  ARROW_ASSIGN_OR_RAISE(auto process,
                        Subprocess::Spawn({.argv = argv,
                                           .log_path = log_dir_ / ("manager-" + model + ".err"),
                                           .environment = std::move(split.environment)}));
  return std::unique_ptr<LaunchedManager>(new ProcessManager(std::move(process)));
}

}  // namespace teatree
