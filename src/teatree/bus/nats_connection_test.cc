#include "teatree/bus/nats_connection.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "teatree/bus/nats_server.h"
#include "teatree/bus/test_util_internal.h"
#include "teatree/common/net.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The seed and public key of the NKeys documentation's example user.
constexpr const char* kNkeySeed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
constexpr const char* kNkeyPublic = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// A nats-server with a hand-written config (auth, TLS), which NatsServer does not offer.
class ConfiguredServer {
 public:
  ConfiguredServer(const fs::path& dir, const std::string& config) : log_(dir / "custom.log") {
    // A free port can be taken before the server binds it: then try another.
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = FreeLoopbackPort().ValueOrDie();
      const fs::path config_path = dir / "custom.conf";
      WriteText(config_path, "listen: 127.0.0.1:" + std::to_string(port_) + "\n" + config);
      process_ =
          Subprocess::Spawn({.argv = {NatsServer::ResolveBinary({}), "-c", config_path.string()},
                             .log_path = log_})
              .ValueOrDie();
      ready_ = WaitForTcpPort("127.0.0.1", port_, seconds(10));
      if (ready_.ok() && process_->Running()) return;
    }
    ready_ = Status::IOError("nats-server did not start; see ", log_.string());
  }
  std::string url(const std::string& scheme = "nats") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_);
  }
  const Status& ready() const { return ready_; }
  /// The server's log, to explain a failure.
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  fs::path log_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
  Status ready_;
};

class NatsConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir::Make("teatree-nats-conn-test-").ValueOrDie(); }

  static Status TryConnect(NatsClientOptions options) {
    options.connect_timeout = seconds(2);
    return NatsConnection::Connect(options).status();
  }

  std::unique_ptr<TempDir> dir_;
};

TEST_F(NatsConnectionTest, MalformedUrlsAreClearErrors) {
  for (const std::string url : {"nats//127.0.0.1:4222", "nats://127.0.0.1:abc",
                                "http://127.0.0.1:4222", "nats://127.0.0.1:99999", "nats://:4222",
                                "127.0.0.1:4222", "nats://127.0.0.1:4222,nats//other:4222"}) {
    auto status = TryConnect({.url = url});
    EXPECT_TRUE(status.IsInvalid()) << url << ": " << status.ToString();
    ExpectError(status, "is malformed: use nats://host:port or tls://host:port");
  }
  ExpectError(TryConnect({.url = ""}), "no NATS URL given");
}

TEST_F(NatsConnectionTest, PasswordsInUrlsAreNotEchoed) {
  auto status = TryConnect({.url = "nats://me:s3cret@127.0.0.1:4222/x"});
  ExpectError(status, "nats://***@127.0.0.1:4222/x");
  EXPECT_EQ(status.message().find("s3cret"), std::string::npos) << status.message();
}

TEST_F(NatsConnectionTest, ClosedPortSaysWhatToCheck) {
  const std::string url = "nats://127.0.0.1:" + std::to_string(FreeLoopbackPort().ValueOrDie());
  auto status = TryConnect({.url = url});
  EXPECT_TRUE(status.IsIOError()) << status.ToString();
  ExpectError(status, "cannot connect to NATS at " + url);
  ExpectError(status, "check that the server is running and the host and port are right");
}

TEST_F(NatsConnectionTest, ConflictingCredentialsRefused) {
  ExpectError(TryConnect({.url = "nats://127.0.0.1:4222", .token = "t", .user = "u"}),
              "give only one of a token, a user/password or an nkey");
  ExpectError(TryConnect({.url = "nats://127.0.0.1:4222", .password = "p"}),
              "password was given without a user");
  ExpectError(TryConnect({.url = "nats://127.0.0.1:4222", .nkey = kNkeyPublic}),
              "needs both the public key (U...) and the seed file");
  ExpectError(TryConnect({.url = "nats://127.0.0.1:4222", .tls_cert_file = "c.pem"}),
              "needs both the certificate and the key file");
}

TEST_F(NatsConnectionTest, TokenAuth) {
  ConfiguredServer server(dir_->path(), "authorization { token: \"s3cret\" }\n");
  ASSERT_TRUE(server.ready().ok()) << server.ready().ToString();
  EXPECT_TRUE(TryConnect({.url = server.url(), .token = "s3cret"}).ok());
  auto wrong = TryConnect({.url = server.url(), .token = "guess"});
  ExpectError(wrong, "the server refused the credentials");
  ExpectError(TryConnect({.url = server.url()}), "the server refused the credentials");
}

TEST_F(NatsConnectionTest, UserPasswordAuth) {
  ConfiguredServer server(dir_->path(), "authorization { user: teatree, password: pw }\n");
  ASSERT_TRUE(server.ready().ok()) << server.ready().ToString();
  EXPECT_TRUE(TryConnect({.url = server.url(), .user = "teatree", .password = "pw"}).ok());
  ExpectError(TryConnect({.url = server.url(), .user = "teatree", .password = "no"}),
              "the server refused the credentials");
}

TEST_F(NatsConnectionTest, NkeySeedFileAuth) {
  ConfiguredServer server(
      dir_->path(), "authorization { users = [ { nkey: " + std::string(kNkeyPublic) + " } ] }\n");
  ASSERT_TRUE(server.ready().ok()) << server.ready().ToString();
  const fs::path seed = dir_->path() / "user.nk";
  WriteText(seed, std::string(kNkeySeed) + "\n");
  auto status =
      TryConnect({.url = server.url(), .nkey = kNkeyPublic, .nkey_seed_file = seed.string()});
  EXPECT_TRUE(status.ok()) << status.ToString() << "\nserver log:\n" << server.log();
  ExpectError(TryConnect({.url = server.url(),
                          .nkey = kNkeyPublic,
                          .nkey_seed_file = (dir_->path() / "missing.nk").string()}),
              "cannot read the NATS nkey seed file " + (dir_->path() / "missing.nk").string());
}

// Runs openssl; false when it is not installed.
bool OpenSsl(const fs::path& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto process = Subprocess::Spawn({.argv = argv, .log_path = dir / "openssl.log"});
  if (!process.ok()) return false;
  auto code = (*process)->Wait(seconds(30));
  return code.ok() && *code == 0;
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
bool MakeCertificates(const fs::path& dir) {
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto req = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> args = {"req"};
    args.insert(args.end(), ec.begin(), ec.end());
    args.insert(args.end(), {"-keyout", (dir / (name + ".key")).string(), "-out",
                             (dir / (name + ".csr")).string(), "-subj", "/CN=" + cn});
    return OpenSsl(dir, args);
  };
  auto sign = [&](const std::string& name, const std::string& extensions) {
    WriteText(dir / (name + ".ext"), extensions + "\n");
    return OpenSsl(dir, {"x509", "-req", "-in", (dir / (name + ".csr")).string(), "-CA",
                         (dir / "ca.pem").string(), "-CAkey", (dir / "ca.key").string(),
                         "-CAcreateserial", "-days", "1", "-out", (dir / (name + ".pem")).string(),
                         "-extfile", (dir / (name + ".ext")).string()});
  };
  std::vector<std::string> ca = {"req", "-x509"};
  ca.insert(ca.end(), ec.begin(), ec.end());
  ca.insert(ca.end(), {"-keyout", (dir / "ca.key").string(), "-out", (dir / "ca.pem").string(),
                       "-days", "1", "-subj", "/CN=teatree test CA"});
  return OpenSsl(dir, ca) && req("server", "127.0.0.1") &&
         sign("server", "subjectAltName=IP:127.0.0.1") && req("client", "teatree client") &&
         sign("client", "extendedKeyUsage=clientAuth");
}

TEST_F(NatsConnectionTest, TlsWithCaAndClientCertificate) {
  const fs::path dir = dir_->path();
  if (!MakeCertificates(dir)) GTEST_SKIP() << "openssl is not available to make certificates";
  ConfiguredServer server(dir, "tls {\n  cert_file: \"" + (dir / "server.pem").string() +
                                   "\"\n  key_file: \"" + (dir / "server.key").string() +
                                   "\"\n  ca_file: \"" + (dir / "ca.pem").string() +
                                   "\"\n  verify: true\n}\n");
  ASSERT_TRUE(server.ready().ok()) << server.ready().ToString();
  const std::string ca = (dir / "ca.pem").string();
  auto status = TryConnect({.url = server.url("tls"),
                            .tls_ca_file = ca,
                            .tls_cert_file = (dir / "client.pem").string(),
                            .tls_key_file = (dir / "client.key").string()});
  EXPECT_TRUE(status.ok()) << status.ToString();
  // The server verifies clients: no certificate, no connection.
  ExpectError(TryConnect({.url = server.url("tls"), .tls_ca_file = ca}), "TLS failed");
  // Plain text to a TLS server.
  ExpectError(TryConnect({.url = server.url()}), "TLS");
  ExpectError(TryConnect({.url = server.url("tls"), .tls_ca_file = (dir / "none.pem").string()}),
              "cannot load TLS CA file " + (dir / "none.pem").string());
}

TEST_F(NatsConnectionTest, ReconnectsAfterTheServerRestarts) {
  auto server = NatsServer::Start({.store_dir = dir_->path() / "js"}).ValueOrDie();
  auto connection =
      NatsConnection::Connect({.url = server->url(), .reconnect_wait = milliseconds(100)})
          .ValueOrDie();
  EXPECT_TRUE(connection->connected());
  ASSERT_TRUE(server->process().Signal(SIGKILL).ok());
  ASSERT_TRUE(server->process().Wait(seconds(5)).ok());
  const auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (connection->connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(connection->connected());
  ASSERT_TRUE(server->Restart().ok());
  while (!connection->connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(connection->connected());
}

}  // namespace
}  // namespace teatree
