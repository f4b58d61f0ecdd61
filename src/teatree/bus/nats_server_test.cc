#include "teatree/bus/nats_server.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include "teatree/bus/nats_connection.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

TEST(NatsServerTest, PinnedBinaryIsAtLeast210) {
  auto version = NatsServer::BinaryVersion(NatsServer::ResolveBinary({}));
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf(version->c_str(), "%d.%d", &major, &minor), 2) << *version;
  EXPECT_TRUE(major > 2 || (major == 2 && minor >= 10)) << *version;
}

TEST(NatsServerTest, StartsWithJetStreamAndAcceptsClients) {
  auto dir = TempDir::Make("teatree-nats-test-");
  ASSERT_TRUE(dir.ok());
  auto server = NatsServer::Start({.store_dir = (*dir)->path() / "js"});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto connection = NatsConnection::Connect({.url = (*server)->url()});
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  jsAccountInfo* info = nullptr;
  jsErrCode error = jsErrCode(0);
  ASSERT_EQ(js_GetAccountInfo(&info, (*connection)->jetstream(), nullptr, &error), NATS_OK);
  jsAccountInfo_Destroy(info);
  EXPECT_TRUE((*server)->Stop().ok());
  EXPECT_FALSE((*server)->process().Running());
}

TEST(NatsServerTest, MissingBinarySaysHowToGetOne) {
  auto dir = TempDir::Make("teatree-nats-test-");
  ASSERT_TRUE(dir.ok());
  auto server =
      NatsServer::Start({.binary = "/nonexistent/nats-server", .store_dir = (*dir)->path()});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("scripts/bootstrap"), std::string::npos)
      << server.status().message();
}

}  // namespace
}  // namespace teatree
