#include "teatree/control/pg_connection.h"

#include <gtest/gtest.h>

#include "teatree/common/net.h"

namespace teatree {

TEST(PgConnectionTest, UnreachableServerIsAStatusNotACrash) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  auto connection = PgConnection::Connect(
      "postgresql://alice:secret@127.0.0.1:" + std::to_string(*port) + "/teatree",
      std::chrono::seconds(2));
  ASSERT_FALSE(connection.ok());
  const std::string& message = connection.status().message();
  EXPECT_NE(message.find("cannot connect to PostgreSQL at postgresql://alice:***@127.0.0.1"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << "password leaked: " << message;
}

TEST(PgConnectionTest, MalformedUrlIsAStatus) {
  auto connection = PgConnection::Connect("postgresql://[bad", std::chrono::seconds(1));
  ASSERT_FALSE(connection.ok());
}

TEST(PgConnectionTest, ReportsLibraryVersions) {
  EXPECT_FALSE(PgConnection::LibpqVersion().empty());
  EXPECT_FALSE(PgConnection::LibpqxxVersion().empty());
}

}  // namespace teatree
