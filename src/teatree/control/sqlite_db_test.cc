#include "teatree/control/sqlite_db.h"

#include <gtest/gtest.h>

#include "teatree/common/temp_dir.h"

namespace teatree {

TEST(SqliteDbTest, PersistsAcrossReopen) {
  auto dir = TempDir::Make("teatree-sqlite-test-");
  ASSERT_TRUE(dir.ok());
  const std::string path = ((*dir)->path() / "control.sqlite").string();
  {
    auto db = SqliteDb::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Execute("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('kept');").ok());
  }
  auto db = SqliteDb::Open(path);
  ASSERT_TRUE(db.ok());
  auto value = (*db)->QueryScalar("SELECT x FROM t");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "kept");
}

TEST(SqliteDbTest, ErrorsNameTheProblem) {
  auto db = SqliteDb::Open(":memory:");
  ASSERT_TRUE(db.ok());
  Status status = (*db)->Execute("SELECT * FROM missing");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no such table: missing"), std::string::npos);
  auto none = (*db)->QueryScalar("SELECT 1 WHERE 0");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no row"), std::string::npos);
}

TEST(SqliteDbTest, UnopenablePathFails) {
  auto db = SqliteDb::Open("/nonexistent/dir/control.sqlite");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("cannot open SQLite database"), std::string::npos);
}

}  // namespace teatree
