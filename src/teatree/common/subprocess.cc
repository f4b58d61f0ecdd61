#include "teatree/common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

namespace teatree {
namespace {

/// Runs in the forked child: only async-signal-safe calls until exec. On failure the errno
/// is written to `report_fd` (close-on-exec, so a successful exec closes it silently).
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const char* log_path,
                            bool die_with_parent, int report_fd) {
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) {
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    close(out);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  setpgid(0, 0);  // Own process group: a terminal's Ctrl-C goes to the parent, which decides.
  execvpe(argv[0], argv, envp);
  int err = errno;
  (void)!write(report_fd, &err, sizeof(err));
  _exit(127);
}

}  // namespace

Result<std::unique_ptr<Subprocess>> Subprocess::Spawn(const SubprocessOptions& options) {
  if (options.argv.empty()) return Status::Invalid("Subprocess::Spawn needs a program to run");
  std::vector<char*> argv;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  // This process's environment with the options' additions, made before fork: the child
  // may only make async-signal-safe calls.
  std::vector<std::string> variables;
  for (char** at = environ; *at != nullptr; ++at) {
    const std::string_view variable = *at;
    const std::string name(variable.substr(0, variable.find('=')));
    if (!options.environment.contains(name)) variables.emplace_back(variable);
  }
  for (const auto& [name, value] : options.environment) variables.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& variable : variables) envp.push_back(variable.data());
  envp.push_back(nullptr);
  const std::string log_path =
      options.log_path.empty() ? std::string("/dev/null") : options.log_path.string();

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    return Status::IOError("cannot start ", options.argv[0], ": pipe: ", std::strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(report[0]);
    close(report[1]);
    return Status::IOError("cannot start ", options.argv[0], ": fork: ", std::strerror(errno));
  }
  if (pid == 0) {
    close(report[0]);
    ExecChild(argv.data(), envp.data(), log_path.c_str(), options.die_with_parent, report[1]);
  }
  close(report[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == sizeof(exec_errno)) {
    waitpid(pid, nullptr, 0);
    return Status::IOError("cannot run ", options.argv[0], ": ", std::strerror(exec_errno));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, options.argv[0]));
}

Subprocess::~Subprocess() {
  if (Running()) (void)Stop();
}

bool Subprocess::Reap(int options) {
  if (exit_code_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, options);
  if (r != pid_) return false;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool Subprocess::Running() { return !Reap(WNOHANG); }

Status Subprocess::Signal(int signal) {
  if (!Running()) return Status::OK();
  if (kill(pid_, signal) != 0) {
    return Status::IOError("cannot signal ", program_, " (pid ", pid_, "): ", std::strerror(errno));
  }
  return Status::OK();
}

Result<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Reap(WNOHANG)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::IOError(program_, " (pid ", pid_, ") still running after ", timeout.count(),
                             " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *exit_code_;
}

Result<int> Subprocess::Stop(std::chrono::milliseconds grace) {
  ARROW_RETURN_NOT_OK(Signal(SIGTERM));
  auto code = Wait(grace);
  if (code.ok()) return code;
  ARROW_RETURN_NOT_OK(Signal(SIGKILL));
  return Wait(std::chrono::seconds(10));
}

}  // namespace teatree
