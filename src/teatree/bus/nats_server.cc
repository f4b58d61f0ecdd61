#include "teatree/bus/nats_server.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

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

}  // namespace

NatsServer::NatsServer(std::unique_ptr<Subprocess> process, int port)
    : process_(std::move(process)), port_(port) {}

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
  return kDefaultNatsServer;
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
  const std::string binary = ResolveBinary(options);
  if (options.store_dir.empty()) {
    return Status::Invalid("NatsServer needs a store_dir for JetStream data");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.store_dir, ec);
  if (ec) {
    return Status::IOError("cannot create JetStream store ", options.store_dir.string(), ": ",
                           ec.message());
  }
  const auto config = options.store_dir / "nats.conf";
  const auto log = options.store_dir / "nats.log";
  Status last = Status::OK();
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    int port = options.port;
    if (port == 0) {
      ARROW_ASSIGN_OR_RAISE(port, FreeLoopbackPort());
    }
    ARROW_RETURN_NOT_OK(WriteConfig(config, options, port));
    auto process = Subprocess::Spawn({.argv = {binary, "-c", config.string()}, .log_path = log});
    if (!process.ok()) return MissingBinary(binary, process.status());
    last = WaitForTcpPort("127.0.0.1", port, options.start_timeout);
    if (last.ok()) {
      return std::unique_ptr<NatsServer>(new NatsServer(std::move(*process), port));
    }
    if (!(*process)->Running() && options.port == 0) continue;  // Port taken: try another.
    break;
  }
  return Status::IOError("nats-server did not start: ", last.message(), ". Its log (", log.string(),
                         ") says: ", ReadFile(log));
}

}  // namespace teatree
