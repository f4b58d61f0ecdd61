#include "teatree/control/sqlite_db.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "teatree/common/temp_dir.h"
#include "teatree/control/test_util_internal.h"

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

/// A fresh database file in its own temporary directory.
class SqliteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Make("teatree-sqlite-test-"));
    path_ = (dir_->path() / "control.sqlite").string();
  }
  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

TEST_F(SqliteFileTest, OpensReadyForSharingBetweenProcesses) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(path_));
  EXPECT_EQ(db->QueryScalar("PRAGMA journal_mode").ValueOrDie(), "wal");
  EXPECT_EQ(db->QueryScalar("PRAGMA synchronous").ValueOrDie(), "2");  // FULL
  EXPECT_EQ(db->QueryScalar("PRAGMA busy_timeout").ValueOrDie(), "10000");
  EXPECT_EQ(db->QueryScalar("PRAGMA foreign_keys").ValueOrDie(), "1");
  ASSERT_OK(
      db->Execute("CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                  "CREATE TABLE child(parent INTEGER REFERENCES parent(id));"));
  Status orphan = db->Execute("INSERT INTO child VALUES (7)");
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.message().find("FOREIGN KEY constraint failed"), std::string::npos);
}

TEST(SqliteStatementTest, BindsStepsReadsAndResets) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(":memory:"));
  ASSERT_OK(db->Execute("CREATE TABLE t(i INTEGER, d REAL, s TEXT, n TEXT)"));
  ASSERT_OK_AND_ASSIGN(auto insert, db->Prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)"));
  const std::string with_nul("a\0b", 3);
  ASSERT_OK(insert->BindInt64(1, int64_t{1} << 40));
  ASSERT_OK(insert->BindDouble(2, 2.5));
  ASSERT_OK(insert->BindText(3, with_nul));
  ASSERT_OK(insert->BindNull(4));
  ASSERT_OK_AND_ASSIGN(bool has_row, insert->Step());
  EXPECT_FALSE(has_row);
  EXPECT_EQ(db->changes(), 1);
  insert->Reset();  // bindings are kept: only the first parameter changes
  ASSERT_OK(insert->BindInt64(1, -3));
  ASSERT_OK(insert->BindText(3, std::string_view()));  // empty, not NULL
  ASSERT_OK(insert->Step().status());

  ASSERT_OK_AND_ASSIGN(auto select, db->Prepare("SELECT i, d, s, n FROM t ORDER BY i DESC"));
  EXPECT_EQ(select->column_count(), 4);
  ASSERT_OK_AND_ASSIGN(has_row, select->Step());
  ASSERT_TRUE(has_row);
  EXPECT_EQ(select->ColumnInt64(0), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(select->ColumnDouble(1), 2.5);
  EXPECT_EQ(select->ColumnText(2), with_nul);
  EXPECT_TRUE(select->ColumnIsNull(3));
  EXPECT_EQ(select->ColumnText(3), "");
  EXPECT_EQ(select->ColumnText(9), "") << "an index past the last column reads as empty";
  ASSERT_OK_AND_ASSIGN(has_row, select->Step());
  ASSERT_TRUE(has_row);
  EXPECT_EQ(select->ColumnInt64(0), -3);
  EXPECT_FALSE(select->ColumnIsNull(2));
  EXPECT_EQ(select->ColumnText(2), "");
  ASSERT_OK_AND_ASSIGN(has_row, select->Step());
  EXPECT_FALSE(has_row);
  select->Reset();  // runs again from the first row
  ASSERT_OK_AND_ASSIGN(has_row, select->Step());
  ASSERT_TRUE(has_row);
  EXPECT_EQ(select->ColumnInt64(0), int64_t{1} << 40);
}

TEST(SqliteStatementTest, ErrorsNameTheStatementAndTheParameter) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(":memory:"));
  ASSERT_OK(db->Execute("CREATE TABLE t(k TEXT PRIMARY KEY)"));
  ASSERT_OK_AND_ASSIGN(auto insert, db->Prepare("INSERT INTO t VALUES (?1)"));
  Status range = insert->BindInt64(2, 1);
  ASSERT_TRUE(range.IsIndexError()) << range.ToString();
  EXPECT_NE(range.message().find("parameter 2 is out of range"), std::string::npos) << range;
  EXPECT_NE(range.message().find("it has 1 parameters"), std::string::npos) << range;

  ASSERT_OK(insert->BindText(1, "dup"));
  ASSERT_OK(insert->Step().status());
  insert->Reset();
  Status duplicate = insert->Step().status();
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.message().find("INSERT INTO t VALUES (?1)"), std::string::npos) << duplicate;
  EXPECT_NE(duplicate.message().find("UNIQUE constraint failed: t.k"), std::string::npos)
      << duplicate;

  auto two = db->Prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("prepare one statement at a time"), std::string::npos);
  auto bad = db->Prepare("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SELEKT 1"), std::string::npos) << bad.status();
}

TEST(SqliteTransactionTest, CommitKeepsChanges) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(":memory:"));
  ASSERT_OK(db->Execute("CREATE TABLE t(x INTEGER)"));
  {
    ASSERT_OK_AND_ASSIGN(auto transaction, SqliteTransaction::Begin(*db));
    EXPECT_TRUE(db->in_transaction());
    ASSERT_OK(db->Execute("INSERT INTO t VALUES (1)"));
    ASSERT_OK(transaction->Commit());
    EXPECT_FALSE(db->in_transaction());
    Status again = transaction->Commit();
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.message().find("already committed"), std::string::npos) << again;
  }
  EXPECT_EQ(db->QueryScalar("SELECT count(*) FROM t").ValueOrDie(), "1");
}

TEST(SqliteTransactionTest, DestructionWithoutCommitRollsBack) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(":memory:"));
  ASSERT_OK(db->Execute("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1);"));
  {
    ASSERT_OK_AND_ASSIGN(auto transaction, SqliteTransaction::Begin(*db));
    ASSERT_OK(db->Execute("INSERT INTO t VALUES (2); DELETE FROM t WHERE x = 1;"));
    EXPECT_EQ(db->QueryScalar("SELECT group_concat(x) FROM t").ValueOrDie(), "2");
  }
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(db->QueryScalar("SELECT group_concat(x) FROM t").ValueOrDie(), "1");
}

TEST(SqliteTransactionTest, TransactionsDoNotNest) {
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDb::Open(":memory:"));
  ASSERT_OK_AND_ASSIGN(auto outer, SqliteTransaction::Begin(*db));
  auto inner = SqliteTransaction::Begin(*db);
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.status().message().find("within a transaction"), std::string::npos)
      << inner.status();
  EXPECT_TRUE(db->in_transaction()) << "the failed inner Begin must not end the outer one";
}

TEST_F(SqliteFileTest, WriterWaitsForAnotherConnectionsTransaction) {
  ASSERT_OK_AND_ASSIGN(auto first, SqliteDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(auto second, SqliteDb::Open(path_));
  ASSERT_OK(first->Execute("CREATE TABLE t(x INTEGER)"));
  ASSERT_OK_AND_ASSIGN(auto holder, SqliteTransaction::Begin(*first));
  ASSERT_OK(first->Execute("INSERT INTO t VALUES (1)"));
  // WAL: a reader sees the last committed state at once, without waiting for the writer.
  EXPECT_EQ(second->QueryScalar("SELECT count(*) FROM t").ValueOrDie(), "0");

  const auto start = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    auto transaction = SqliteTransaction::Begin(*second);  // blocks until `holder` commits
    ASSERT_TRUE(transaction.ok()) << transaction.status();
    ASSERT_OK(second->Execute("INSERT INTO t VALUES (2)"));
    ASSERT_OK((*transaction)->Commit());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_OK(holder->Commit());
  waiter.join();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_EQ(first->QueryScalar("SELECT group_concat(x) FROM t").ValueOrDie(), "1,2");
}

}  // namespace teatree
