#include "teatree/engine/arrow/version_reads.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/request/rows_to_arrow.h"

namespace teatree {
namespace {

class VersionReadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-version-reads-test-").ValueOrDie();
    store_ = ManifestStore::Open(dir_->path()).ValueOrDie();
    orders_ = TableSchema::FromJson("orders", nlohmann::json::parse(R"j([
        {"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(12,2)"},
        {"name":"stamp","type":"TIMESTAMPTZ"},{"name":"tags","type":"VARCHAR[]"}])j"),
                                    nlohmann::json::array({"id"}))
                  .ValueOrDie();
    empty_ = TableSchema::FromJson(
                 "empty", nlohmann::json::parse(R"([{"name":"n","type":"INTEGER"}])"), nullptr)
                 .ValueOrDie();
    Manifest manifest{.version = 4};
    for (const char* rows : {R"([[1,"12.50","2026-01-02T03:04:05+02:00",["a","b"]]])",
                             R"([[2,null,null,null],[3,"0.01","2026-06-30T23:59:59Z",[]]])"}) {
      auto batch = RowsToRecordBatch(nlohmann::json::parse(rows), orders_).ValueOrDie();
      auto table = arrow::Table::FromRecordBatches({batch}).ValueOrDie();
      manifest.tables["orders"].schema = orders_;
      manifest.tables["orders"].files.push_back(
          store_->WriteDataFile(orders_, *table).ValueOrDie());
    }
    manifest.tables["empty"].schema = empty_;
    ASSERT_TRUE(store_->Publish(manifest).ok());
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ManifestStore> store_;
  TableSchema orders_, empty_;
};

TEST_F(VersionReadsTest, SqlReadsAnArrowModelLikeADuckDbModel) {
  auto reader = OpenVersionReader(*store_, store_->newest(), {}).ValueOrDie();
  auto read =
      reader->Read({.sql = "SELECT id, amount, stamp, tags FROM orders ORDER BY id"}).ValueOrDie();
  EXPECT_EQ(read.version, 4);
  auto rows = read.reader->ToTable().ValueOrDie();
  ASSERT_EQ(rows->num_rows(), 3);
  EXPECT_EQ(rows->schema()->field(1)->type()->ToString(), "decimal128(12, 2)");
  EXPECT_EQ(rows->schema()->field(2)->type()->ToString(), "timestamp[us, tz=UTC]");
  EXPECT_EQ(rows->column(1)->GetScalar(0).ValueOrDie()->ToString(), "12.50");
  EXPECT_EQ(rows->column(2)->GetScalar(0).ValueOrDie()->ToString(), "2026-01-02 01:04:05.000000Z");
  auto sum = reader->Read({.sql = "SELECT sum(amount) FROM orders WHERE id > 1"}).ValueOrDie();
  EXPECT_EQ(sum.reader->ToTable().ValueOrDie()->column(0)->GetScalar(0).ValueOrDie()->ToString(),
            "0.01");
  int64_t version = 0;
  auto tables = reader->ListTables(&version).ValueOrDie();
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].name, "empty");
  EXPECT_EQ(tables[0].rows, 0);
  EXPECT_EQ(tables[1].rows, 3);
  EXPECT_EQ(version, 4);
  // The files behind the views are the server's business, not the user's.
  const std::string file =
      (dir_->path() / store_->newest().tables.at("orders").files[0].path).string();
  for (const std::string& sql : {"SELECT * FROM read_parquet('" + file + "')",
                                 "SELECT * FROM '" + file + "'", std::string("DROP VIEW orders")}) {
    auto refused = reader->Read({.sql = sql});
    ASSERT_FALSE(refused.ok()) << sql;
    EXPECT_NE(refused.status().message().find("refused"), std::string::npos)
        << refused.status().ToString();
  }
}

TEST_F(VersionReadsTest, DuckDbScansTheFilesThroughTheArrowCDataInterface) {
  // A table of several files, more rows than one DuckDB vector each.
  auto numbers =
      TableSchema::FromJson("numbers", nlohmann::json::parse(R"([{"name":"n","type":"BIGINT"},
          {"name":"label","type":"VARCHAR"},{"name":"half","type":"DOUBLE"}])"),
                            nullptr)
          .ValueOrDie();
  Manifest manifest = store_->newest();
  manifest.version = 5;
  constexpr int64_t kFiles = 3, kRowsPerFile = 20'000;
  for (int64_t file = 0; file < kFiles; ++file) {
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t i = file * kRowsPerFile; i < (file + 1) * kRowsPerFile; ++i) {
      rows.push_back({i, "n" + std::to_string(i % 7), i / 2.0});
    }
    auto batch = RowsToRecordBatch(rows, numbers).ValueOrDie();
    auto table = arrow::Table::FromRecordBatches({batch}).ValueOrDie();
    manifest.tables["numbers"].schema = numbers;
    manifest.tables["numbers"].files.push_back(store_->WriteDataFile(numbers, *table).ValueOrDie());
  }
  ASSERT_TRUE(store_->Publish(manifest).ok());
  auto reader = OpenVersionReader(*store_, store_->newest(), {}).ValueOrDie();
  auto scalar = [&](const std::string& sql) {
    auto read = reader->Read({.sql = sql});
    EXPECT_TRUE(read.ok()) << sql << ": " << read.status().ToString();
    return read.ValueOrDie()
        .reader->ToTable()
        .ValueOrDie()
        ->column(0)
        ->GetScalar(0)
        .ValueOrDie()
        ->ToString();
  };
  const int64_t total = kFiles * kRowsPerFile;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers"), std::to_string(total));
  EXPECT_EQ(scalar("SELECT sum(n) FROM numbers"), std::to_string(total * (total - 1) / 2));
  int64_t matching = 0;
  for (int64_t i = 200; i < total; ++i) matching += i % 7 == 3 ? 1 : 0;
  EXPECT_EQ(scalar("SELECT count(*) FROM numbers WHERE label = 'n3' AND half >= 100"),
            std::to_string(matching));
  // Only the columns a query uses are scanned, each in its place whatever the order asked.
  auto picked = reader->Read({.sql = "SELECT half, n FROM numbers WHERE n = 12345"})
                    .ValueOrDie()
                    .reader->ToTable()
                    .ValueOrDie();
  ASSERT_EQ(picked->num_rows(), 1);
  EXPECT_EQ(picked->column(0)->GetScalar(0).ValueOrDie()->ToString(), "6172.5");
  EXPECT_EQ(picked->column(1)->GetScalar(0).ValueOrDie()->ToString(), "12345");
  // Without ORDER BY the rows come in the order they were written, as on the DuckDB engine.
  auto all =
      reader->Read({.sql = "SELECT n FROM numbers"}).ValueOrDie().reader->ToTable().ValueOrDie();
  ASSERT_EQ(all->num_rows(), total);
  auto column = arrow::Concatenate(all->column(0)->chunks()).ValueOrDie();
  const auto& values = static_cast<const arrow::Int64Array&>(*column);
  for (int64_t i = 0; i < total; ++i) ASSERT_EQ(values.Value(i), i);
  // The scan is the views' business: users read the tables.
  auto direct = reader->Read({.sql = "SELECT * FROM teatree_scan('numbers')"});
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.status().message().find("refused"), std::string::npos)
      << direct.status().ToString();
}

TEST_F(VersionReadsTest, AVersionExportsAsADuckDbFileAnyClientOpens) {
  const auto target = dir_->path() / "out" / "v4.duckdb";
  std::filesystem::create_directories(target.parent_path());
  ASSERT_TRUE(ExportVersionFile(dir_->path(), store_->newest(), target).ok());
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), 4);
  auto file = DuckReader::OpenFile(target, {}).ValueOrDie();
  auto live = OpenVersionReader(*store_, store_->newest(), {}).ValueOrDie();
  const std::string sql = "SELECT * FROM orders ORDER BY id";
  auto exported = file->Read({.sql = sql}).ValueOrDie().reader->ToTable().ValueOrDie();
  auto scanned = live->Read({.sql = sql}).ValueOrDie().reader->ToTable().ValueOrDie();
  EXPECT_TRUE(exported->Equals(*scanned)) << exported->ToString() << scanned->ToString();
  EXPECT_FALSE(
      ExportVersionFile(dir_->path(), store_->newest(), target).ok());  // Never overwrites.
}

}  // namespace
}  // namespace teatree
