#include "teatree/engine/duckdb/duckdb_database.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "teatree/common/sql_quote.h"
#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

std::unique_ptr<DuckConnection> Connect(const DuckDatabaseOptions& options = {}) {
  auto db = DuckDatabase::Open(options);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  auto connection = (*db)->Connect();
  EXPECT_TRUE(connection.ok()) << connection.status().ToString();
  return std::move(*connection);
}

TEST(DuckDatabaseTest, QueryResultArrivesAsArrowWithDuckDBTypes) {
  auto connection = Connect();
  Status created = connection->Execute(
      "CREATE TABLE t(id BIGINT, amount DECIMAL(10,2), region VARCHAR, "
      "created_at TIMESTAMP, tags VARCHAR[]);"
      "INSERT INTO t VALUES (1, 9.50, 'eu', '2026-01-02 03:04:05', "
      "['a','b']), (2, NULL, NULL, NULL, []);");
  ASSERT_TRUE(created.ok()) << created.ToString();
  auto table = connection->QueryTable("SELECT * FROM t ORDER BY id");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 2);
  EXPECT_EQ((*table)->schema()->ToString(),
            "id: int64\namount: decimal128(10, 2)\nregion: string\ncreated_at: timestamp[us]\n"
            "tags: list<l: string>");
  EXPECT_EQ((*table)->column(1)->GetScalar(0).ValueOrDie()->ToString(), "9.50");
  EXPECT_FALSE((*table)->column(2)->GetScalar(1).ValueOrDie()->is_valid);
}

TEST(DuckDatabaseTest, LargeResultStreamsInSeveralBatches) {
  auto connection = Connect();
  auto reader = connection->Query("SELECT range AS v FROM range(100000)");
  ASSERT_TRUE(reader.ok());
  int batches = 0;
  int64_t rows = 0;
  std::shared_ptr<arrow::RecordBatch> batch;
  while ((*reader)->ReadNext(&batch).ok() && batch) {
    ++batches;
    rows += batch->num_rows();
  }
  EXPECT_EQ(rows, 100000);
  EXPECT_GT(batches, 1);
}

TEST(DuckDatabaseTest, SqlErrorCarriesDuckDBMessage) {
  auto connection = Connect();
  Status status = connection->Execute("SELECT * FROM no_such_table");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no_such_table"), std::string::npos) << status.message();
  auto table = connection->QueryTable("SELEC 1");
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("syntax error"), std::string::npos);
}

TEST(DuckDatabaseTest, TextParameterThatIsNotUtf8IsRefused) {
  auto connection = Connect();
  auto table = connection->QueryParams("SELECT length($s::VARCHAR) AS n", {{"s", "ab\xff"}});
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("$s is not valid UTF-8"), std::string::npos)
      << table.status().message();
  auto fine = connection->QueryParams("SELECT length($s::VARCHAR) AS n", {{"s", "h\xc3\xa9"}});
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
}

TEST(DuckDatabaseTest, ReadOnlyDatabaseRefusesWrites) {
  auto dir = TempDir::Make("teatree-duckdb-test-");
  ASSERT_TRUE(dir.ok());
  const std::string path = ((*dir)->path() / "m.duckdb").string();
  ASSERT_TRUE(Connect({.path = path})->Execute("CREATE TABLE t AS SELECT 42 AS x").ok());
  auto reader = Connect({.path = path, .read_only = true});
  auto value = reader->QueryTable("SELECT x FROM t");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ((*value)->column(0)->GetScalar(0).ValueOrDie()->ToString(), "42");
  Status status = reader->Execute("INSERT INTO t VALUES (1)");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("read-only"), std::string::npos) << status.message();
}

TEST(DuckDatabaseTest, OpeningAMissingDirectoryFailsClearly) {
  auto db = DuckDatabase::Open({.path = "/nonexistent/dir/m.duckdb"});
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("cannot open DuckDB database /nonexistent/dir/m.duckdb"),
            std::string::npos);
}

TEST(DuckDatabaseTest, ArrowStreamIsScannableFromSql) {
  auto connection = Connect();
  arrow::DoubleBuilder values;
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(values.Append(i * 0.5).ok());
  auto table = arrow::Table::Make(arrow::schema({arrow::field("v", arrow::float64())}),
                                  {values.Finish().ValueOrDie()});
  ASSERT_TRUE(
      connection->RegisterArrowView("input", std::make_shared<arrow::TableBatchReader>(table))
          .ok());
  auto sum = connection->QueryTable("SELECT sum(v) AS s FROM input");
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ((*sum)->column(0)->GetScalar(0).ValueOrDie()->ToString(), "5");
}

TEST(DuckDatabaseTest, InvalidSettingIsRefused) {
  auto db = DuckDatabase::Open({.settings = {{"no_such_setting", "1"}}});
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("no_such_setting"), std::string::npos);
}

}  // namespace
}  // namespace teatree
