#include "teatree/common/net.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace teatree {

TEST(NetTest, FreeLoopbackPortIsUsablePort) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  EXPECT_GT(*port, 1024);
  EXPECT_LT(*port, 65536);
}

TEST(NetTest, WaitForTcpPortTimesOutWithClearError) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  Status status = WaitForTcpPort("127.0.0.1", *port, std::chrono::milliseconds(50));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("nothing accepted connections on 127.0.0.1:"), std::string::npos);
}

TEST(NetTest, RejectsNonAddress) {
  Status status = WaitForTcpPort("local host", 80, std::chrono::milliseconds(10));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("is not an IPv4 address"), std::string::npos);
}

// A wildcard address is never handed out: the advertised host, else this machine's name.
TEST(NetTest, AdvertisedHostIsNeverAWildcard) {
  EXPECT_EQ(AdvertisedHost("127.0.0.1", ""), "127.0.0.1");
  EXPECT_EQ(AdvertisedHost("0.0.0.0", "teatree.example"), "teatree.example");
  EXPECT_EQ(AdvertisedHost("127.0.0.1", "10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(AdvertisedHost("::1", ""), "[::1]");
  char name[256] = {0};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  for (const char* wildcard : {"0.0.0.0", "::", ""}) {
    EXPECT_EQ(AdvertisedHost(wildcard, ""), name) << wildcard;
  }
}

}  // namespace teatree
