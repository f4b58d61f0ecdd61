#include "teatree/engine/duckdb/duckdb_reader.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

class DuckReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-reader-test-").ValueOrDie();
    engine_ = DuckEngine::Open({.model_dir = dir_->path() / "models" / "sales", .model = "sales"})
                  .ValueOrDie();
    Apply(R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders","schema":[)"
          R"j({"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(12,2)"},)j"
          R"({"name":"at","type":"TIMESTAMPTZ"},{"name":"tags","type":"VARCHAR[]"},)"
          R"({"name":"region","type":"VARCHAR"}],"primary_key":["id"]})");
    Apply(R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
          R"([1,"12.50","2026-01-02T03:04:05+02:00",["a","b"],"eu"],)"
          R"([2,null,null,null,null],[3,"0.01","2026-06-30T23:59:59Z",[],"us"]]})");
  }

  void Apply(const std::string& line) {
    auto result = engine_->ApplyBatch({DecodeRequest(line).ValueOrDie()}).ValueOrDie();
    ASSERT_EQ(result.outcomes[0].status, "applied") << result.outcomes[0].error;
  }

  /// Publishes the committed state as a version file and returns its path.
  std::filesystem::path WriteVersion() {
    auto snapshot = engine_->PrepareSnapshot().ValueOrDie();
    auto target = dir_->path() / ("v" + std::to_string(snapshot.version) + ".duckdb");
    EXPECT_TRUE(engine_->WriteVersionFile(snapshot, target).ok());
    return target;
  }

  static std::shared_ptr<arrow::Table> ReadAll(DuckReader& reader, ReadRequest request) {
    auto stream = reader.Read(request);
    EXPECT_TRUE(stream.ok()) << request.sql << ": " << stream.status().ToString();
    if (!stream.ok()) return nullptr;
    return stream->reader->ToTable().ValueOrDie();
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<DuckEngine> engine_;
};

TEST_F(DuckReaderTest, ResultsEqualDirectDuckDbResultsWithTheirTypes) {
  const auto file = WriteVersion();
  const std::string sql = "SELECT * FROM orders ORDER BY id";
  auto direct_db = DuckDatabase::Open({.path = file.string(), .read_only = true}).ValueOrDie();
  auto direct_connection = direct_db->Connect().ValueOrDie();
  // A DuckDB client shows zoned times in its own zone; Teatree's reads use UTC.
  ASSERT_TRUE(direct_connection->Execute("SET TimeZone = 'UTC'").ok());
  auto direct = direct_connection->QueryTable(sql).ValueOrDie();
  auto replica = DuckReader::OpenFile(file, {}).ValueOrDie();
  auto from_file = ReadAll(*replica, {.sql = sql});
  auto live = ReadAll(*engine_->LiveReader().ValueOrDie(), {.sql = sql});
  ASSERT_NE(from_file, nullptr);
  ASSERT_NE(live, nullptr);
  EXPECT_TRUE(from_file->Equals(*direct)) << from_file->ToString() << direct->ToString();
  EXPECT_TRUE(live->Equals(*direct));
  EXPECT_EQ(direct->schema()->field(1)->type()->ToString(), "decimal128(12, 2)");
  EXPECT_EQ(live->schema()->field(2)->type()->ToString(), "timestamp[us, tz=UTC]");
  EXPECT_EQ(direct->column(3)->null_count(), 1);
}

TEST_F(DuckReaderTest, ReportsTheVersionItReads) {
  auto stream =
      engine_->LiveReader().ValueOrDie()->Read({.sql = "SELECT count(*) FROM orders"}).ValueOrDie();
  EXPECT_EQ(stream.version, 2);
  int64_t version = 0;
  auto tables = engine_->LiveReader().ValueOrDie()->ListTables(&version).ValueOrDie();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].name, "orders");
  EXPECT_EQ(tables[0].rows, 3);
  EXPECT_EQ(version, 2);
}

TEST_F(DuckReaderTest, EveryForbiddenStatementIsRefusedAndChangesNothing) {
  const auto outside = dir_->path() / "secret.csv";
  { std::ofstream(outside) << "a\n42\n"; }
  const std::string out = (dir_->path() / "out.csv").string();
  const std::vector<std::string> forbidden = {
      "INSERT INTO orders (id) VALUES (9)",
      "UPDATE orders SET region = 'x'",
      "DELETE FROM orders",
      "DROP TABLE orders",
      "CREATE TABLE t (a INT)",
      "ALTER TABLE orders ADD COLUMN b INT",
      "ATTACH '" + (dir_->path() / "x.duckdb").string() + "' AS x",
      "COPY orders TO '" + out + "'",
      "EXPORT DATABASE '" + (dir_->path() / "export").string() + "'",
      "PRAGMA database_list",
      "SET threads = 1",
      "RESET threads",
      "INSTALL httpfs",
      "LOAD httpfs",
      "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
      "SELECT * FROM duckdb_secrets()",
      "CALL checkpoint()",
      "CHECKPOINT",
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM read_csv('" + outside.string() + "')",
      "SELECT * FROM '" + outside.string() + "'",
      "SELECT * FROM read_parquet('https://example.com/x.parquet')",
      "SELECT * FROM read_text('/etc/hostname')",
      "SELECT * FROM query('DELETE FROM orders')",
      "SELECT 1; DELETE FROM orders",
      "SELECT 1; SELECT 2",
      "SELECT * FROM orders WHERE id IN (SELECT a FROM read_csv('" + outside.string() + "'))",
      "WITH x AS (SELECT * FROM glob('/etc/*')) SELECT * FROM x",
  };
  for (auto* reader : {engine_->LiveReader().ValueOrDie().get()}) {
    for (const auto& sql : forbidden) {
      auto stream = reader->Read({.sql = sql});
      ASSERT_FALSE(stream.ok()) << sql;
      EXPECT_NE(stream.status().message().find("refused"), std::string::npos)
          << sql << ": " << stream.status().ToString();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "export"));
  auto rows = ReadAll(*engine_->LiveReader().ValueOrDie(),
                      {.sql = "SELECT count(*), count(region) FROM orders"});
  EXPECT_EQ(rows->column(0)->GetScalar(0).ValueOrDie()->ToString(), "3");
  EXPECT_EQ(rows->column(1)->GetScalar(0).ValueOrDie()->ToString(), "2");
  // What reads is allowed: CTEs, subqueries, range, unnest, attached-free joins.
  auto ok = ReadAll(*engine_->LiveReader().ValueOrDie(),
                    {.sql = "WITH t AS (SELECT * FROM orders) SELECT count(*) FROM t, range(2) r, "
                            "(SELECT unnest([1, 2]) AS u) WHERE t.id IN (SELECT id FROM orders)"});
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->column(0)->GetScalar(0).ValueOrDie()->ToString(), "12");
}

TEST_F(DuckReaderTest, ServerSettingsCatalogViewsAndBookkeepingAreNotReadable) {
  const std::vector<std::string> hidden = {
      "SELECT * FROM pg_settings",
      "SELECT * FROM pg_catalog.pg_settings",
      "SELECT * FROM duckdb_settings()",
      "SELECT * FROM duckdb_databases",
      "SELECT * FROM information_schema.tables",
      "SELECT * FROM sqlite_master",
      "SELECT * FROM _teatree_requests",
      "SELECT * FROM main._teatree_tables",
      "SELECT current_setting('temp_directory')",
      "SELECT current_setting('allowed_directories')",
      "SELECT * FROM orders WHERE region = current_setting('home_directory')",
      "SELECT * FROM nosuchtable",
      // A CTE's name stands for the CTE only where it is defined.
      "SELECT * FROM (WITH pg_settings AS (SELECT 1 AS a) SELECT * FROM pg_settings) x, "
      "pg_settings",
      std::string("SELECT 1\0; DROP TABLE orders", 28),
  };
  auto reader = engine_->LiveReader().ValueOrDie();
  for (const auto& sql : hidden) {
    auto stream = reader->Read({.sql = sql});
    ASSERT_FALSE(stream.ok()) << sql;
    EXPECT_NE(stream.status().message().find("refused"), std::string::npos)
        << sql << ": " << stream.status().ToString();
    EXPECT_EQ(stream.status().message().find(dir_->path().string()), std::string::npos)
        << "a server path leaked: " << stream.status().ToString();
  }
  // The model's own tables, qualified or not, and CTEs that shadow nothing still read.
  auto ok = ReadAll(*reader, {.sql = "WITH pg_settings AS (SELECT id FROM main.orders) "
                                     "SELECT count(*) FROM pg_settings"});
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->column(0)->GetScalar(0).ValueOrDie()->ToString(), "3");
}

TEST_F(DuckReaderTest, TheQueryOpOnTheWritePathIsCheckedLikeEveryRead) {
  for (const std::string sql :
       {"PRAGMA database_list", "SELECT * FROM pg_settings", "SELECT * FROM _teatree_requests",
        "SELECT * FROM read_csv('/etc/passwd')"}) {
    nlohmann::json request{{"request_id", "q" + std::to_string(std::hash<std::string>()(sql))},
                           {"model", "sales"},
                           {"op", "query"},
                           {"sql", sql}};
    auto result = engine_->ApplyBatch({DecodeRequest(request.dump()).ValueOrDie()}).ValueOrDie();
    EXPECT_EQ(result.outcomes[0].status, "rejected") << sql;
    EXPECT_NE(result.outcomes[0].error.find("refused"), std::string::npos)
        << sql << ": " << result.outcomes[0].error;
  }
  Apply(
      R"({"request_id":"q-ok","model":"sales","op":"query","sql":"SELECT count(*) FROM orders"})");
}

TEST_F(DuckReaderTest, ARunawayQueryIsStoppedByTheTimeLimitAndTheReaderGoesOn) {
  auto replica = DuckReader::OpenFile(WriteVersion(), {}).ValueOrDie();
  ReadRequest runaway{.sql =
                          "SELECT count(*) FROM range(100000000) a, range(100000000) b "
                          "WHERE a.range + b.range = -1"};
  runaway.limits.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto stream = replica->Read(runaway);
  Status status = stream.ok() ? stream->reader->ToTable().status() : stream.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(status.message().find("time limit of 300 ms"), std::string::npos) << status.ToString();
  auto after = ReadAll(*replica, {.sql = "SELECT count(*) FROM orders"});
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->column(0)->GetScalar(0).ValueOrDie()->ToString(), "3");
}

TEST_F(DuckReaderTest, AClientThatGoesAwayCancelsItsQuery) {
  std::atomic<bool> gone{false};
  ReadRequest request{.sql =
                          "SELECT count(*) FROM range(100000000) a, range(100000000) b "
                          "WHERE a.range + b.range = -1",
                      .cancelled = [&] { return gone.load(); }};
  std::thread leave([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gone = true;
  });
  auto stream = engine_->LiveReader().ValueOrDie()->Read(request);
  Status status = stream.ok() ? stream->reader->ToTable().status() : stream.status();
  leave.join();
  EXPECT_TRUE(status.IsCancelled()) << status.ToString();
}

TEST_F(DuckReaderTest, AResultPastTheSizeLimitFails) {
  ReadRequest request{.sql = "SELECT range AS n FROM range(1000000)"};
  request.limits.max_result_bytes = 100000;
  auto stream = engine_->LiveReader().ValueOrDie()->Read(request).ValueOrDie();
  Status status = stream.reader->ToTable().status();
  EXPECT_NE(status.message().find("larger than the limit of 100000 bytes"), std::string::npos)
      << status.ToString();
}

TEST_F(DuckReaderTest, ReadFunctionsRunAndWritingFunctionsAreRefused) {
  auto rows = ReadAll(*engine_->LiveReader().ValueOrDie(), {.function = "row_counts"});
  ASSERT_NE(rows, nullptr);
  EXPECT_EQ(rows->num_rows(), 1);
  auto top =
      ReadAll(*engine_->LiveReader().ValueOrDie(),
              {.function = "top_n", .args = {{"table", "orders"}, {"column", "id"}, {"n", 1}}});
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(top->num_rows(), 1);
  auto unknown = engine_->LiveReader().ValueOrDie()->Read({.function = "nope"});
  EXPECT_NE(unknown.status().message().find("not registered"), std::string::npos);
  auto schema = engine_->LiveReader()
                    .ValueOrDie()
                    ->Describe({.sql = "SELECT id, amount FROM orders"})
                    .ValueOrDie();
  EXPECT_EQ(schema->ToString(), "id: int64\namount: decimal128(12, 2)");
}

TEST_F(DuckReaderTest, AVersionFileStaysOpenUntilItsLastReadEnds) {
  auto replica = DuckReader::OpenFile(WriteVersion(), {}).ValueOrDie();
  auto stream = replica->Read({.sql = "SELECT * FROM range(100000)"}).ValueOrDie();
  std::weak_ptr<DuckReader> weak = replica;
  replica.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(stream.reader->ToTable().ValueOrDie()->num_rows(), 100000);
  stream.reader.reset();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace teatree
