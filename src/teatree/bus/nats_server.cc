#include "teatree/bus/nats_server.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "teatree/common/file_util.h"
#include "teatree/common/net.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"
#include "teatree/common/version.h"

namespace teatree {
namespace {

constexpr int kStartAttempts = 3;  // A free port can be taken between lookup and bind.

Status MissingBinary(const std::string& binary, const Status& cause) {
  return Status::IOError("nats-server not found or not runnable (", binary, "): ", cause.message(),
                         ". Run scripts/bootstrap to install the pinned nats-server ",
                         kPinnedNatsServerVersion, ", or set TEATREE_NATS_SERVER to one (>= 2.10)");
}

Status WriteConfig(const std::filesystem::path& path, const NatsServerOptions& options, int port) {
  std::ofstream out(path, std::ios::trunc);
  out << "listen: 127.0.0.1:" << port << "\n"
      << "max_payload: " << options.max_payload << "\n"
      << "jetstream {\n"
      << "  store_dir: \"" << options.store_dir.string() << "\"\n"
      << (options.sync_always ? "  sync_interval: always\n" : "") << "}\n";
  out.close();
  if (!out) return Status::IOError("cannot write nats-server config ", path.string());
  return Status::OK();
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::filesystem::path LogPath(const NatsServerOptions& options) {
  return options.store_dir / "nats.log";
}

struct Launched {
  std::unique_ptr<Subprocess> process;
  /// OK once the server accepts connections.
  Status ready;
};

// Writes the config for `port`, spawns nats-server and waits until it listens. An error
// only when the binary cannot run; a server that did not come up is reported in `ready`.
Result<Launched> Launch(const NatsServerOptions& options, int port) {
  const std::string binary = NatsServer::ResolveBinary(options);
  const auto config = options.store_dir / "nats.conf";
  ARROW_RETURN_NOT_OK(WriteConfig(config, options, port));
  auto process =
      Subprocess::Spawn({.argv = {binary, "-c", config.string()}, .log_path = LogPath(options)});
  if (!process.ok()) return MissingBinary(binary, process.status());
  Status ready = WaitForTcpPort("127.0.0.1", port, options.start_timeout);
  return Launched{std::move(*process), std::move(ready)};
}

Status DidNotStart(const NatsServerOptions& options, const Status& cause) {
  return Status::IOError("nats-server did not start: ", cause.message(), ". Its log (",
                         LogPath(options).string(), ") says: ", ReadFile(LogPath(options)));
}

}  // namespace

NatsServer::NatsServer(std::unique_ptr<Subprocess> process, NatsServerOptions options, int port)
    : process_(std::move(process)), options_(std::move(options)), port_(port) {}

NatsServer::~NatsServer() { (void)Stop(); }

std::string NatsServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

Status NatsServer::Stop() {
  if (!process_->Running()) return Status::OK();
  return process_->Stop().status();
}

std::string NatsServer::ResolveBinary(const NatsServerOptions& options) {
  if (!options.binary.empty()) return options.binary;
  if (const char* env = std::getenv("TEATREE_NATS_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  if (auto bundled = BundledProgram("nats-server")) return bundled->string();
  return "nats-server";  // From PATH.
}

Result<std::string> NatsServer::BinaryVersion(const std::string& binary) {
  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-nats-version-"));
  const auto log = dir->path() / "version.txt";
  auto process = Subprocess::Spawn({.argv = {binary, "--version"}, .log_path = log});
  if (!process.ok()) return MissingBinary(binary, process.status());
  ARROW_ASSIGN_OR_RAISE(int code, (*process)->Wait(std::chrono::seconds(10)));
  std::string text = ReadFile(log);
  // Prints "nats-server: v2.15.1".
  auto pos = text.find(" v");
  if (code != 0 || pos == std::string::npos) {
    return Status::IOError(binary, " --version failed (exit ", code, "): ", text);
  }
  pos += 2;
  return text.substr(pos, text.find_first_of(" \r\n", pos) - pos);
}

Result<std::unique_ptr<NatsServer>> NatsServer::Start(const NatsServerOptions& options) {
  if (options.store_dir.empty()) {
    return Status::Invalid("NatsServer needs a store_dir for JetStream data");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.store_dir, ec);
  if (ec) {
    return Status::IOError("cannot create JetStream store ", options.store_dir.string(), ": ",
                           ec.message());
  }
  Status last = Status::OK();
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    int port = options.port;
    if (port == 0) {
      ARROW_ASSIGN_OR_RAISE(port, FreeLoopbackPort());
    }
    ARROW_ASSIGN_OR_RAISE(Launched launched, Launch(options, port));
    last = launched.ready;
    if (last.ok()) {
      return std::unique_ptr<NatsServer>(
          new NatsServer(std::move(launched.process), options, port));
    }
    if (!launched.process->Running() && options.port == 0) continue;  // Port taken: try another.
    break;
  }
  return DidNotStart(options, last);
}

Status NatsServer::Restart() {
  ARROW_RETURN_NOT_OK(Stop());
  ARROW_ASSIGN_OR_RAISE(Launched launched, Launch(options_, port_));
  if (!launched.ready.ok()) return DidNotStart(options_, launched.ready);
  process_ = std::move(launched.process);
  return Status::OK();
}

}  // namespace teatree
