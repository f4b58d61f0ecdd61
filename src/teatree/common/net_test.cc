#include "teatree/common/net.h"

#include <gtest/gtest.h>

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

}  // namespace teatree
