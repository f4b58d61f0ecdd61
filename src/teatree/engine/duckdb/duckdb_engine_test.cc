#include "teatree/engine/duckdb/duckdb_engine.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

class DuckEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-engine-test-").ValueOrDie();
    std::filesystem::create_directories(dir_->path() / "input");
    Reopen();
  }

  void Reopen(int64_t snapshot_log_bytes = EngineOptions().snapshot_log_bytes) {
    engine_.reset();
    engine_ = DuckEngine::Open({.model_dir = dir_->path() / "models" / "sales",
                                .model = "sales",
                                .input_dirs = {dir_->path() / "input"},
                                .snapshot_log_bytes = snapshot_log_bytes})
                  .ValueOrDie();
  }

  /// Applies JSON lines as one batch.
  BatchResult Apply(const std::vector<std::string>& lines) {
    std::vector<Request> batch;
    for (const auto& line : lines) {
      auto request = DecodeRequest(line);
      EXPECT_TRUE(request.ok()) << line << ": " << request.status().ToString();
      batch.push_back(*request);
    }
    auto result = engine_->ApplyBatch(batch);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return *result;
  }

  std::string Scalar(const std::string& sql) {
    auto table = engine_->Query(sql).ValueOrDie();
    return table->column(0)->GetScalar(0).ValueOrDie()->ToString();
  }

  void CreateOrders() {
    Apply({R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders",)"
           R"("schema":[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},)"
           R"({"name":"region","type":"VARCHAR"}],"primary_key":["id"]})"});
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<DuckEngine> engine_;
};

TEST_F(DuckEngineTest, EveryMutationOpAppliesInOneVersion) {
  CreateOrders();
  EXPECT_EQ(engine_->version(), 1);
  auto result = Apply({
      R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"],[2,3.0,"us"],[3,0.5,"eu"]]})",
      R"({"request_id":"u1","model":"sales","op":"upsert","table":"orders","rows":[{"id":2,"amount":4.0,"region":"us"},{"id":4,"amount":7.0,"region":"apac"}]})",
      R"({"request_id":"p1","model":"sales","op":"update","table":"orders","set":{"amount":{"call":"multiply","args":[{"field":"amount"},{"literal":2}]}},"where":{"call":"equal","args":[{"field":"region"},{"literal":"eu"}]}})",
      R"({"request_id":"d1","model":"sales","op":"delete","table":"orders","where":{"call":"less","args":[{"field":"amount"},{"literal":2}]}})",
  });
  ASSERT_EQ(result.outcomes.size(), 4u);
  for (const auto& outcome : result.outcomes) {
    EXPECT_EQ(outcome.status, "applied") << outcome.ToJson().dump();
    EXPECT_EQ(outcome.version, 2);
  }
  EXPECT_EQ(result.outcomes[0].rows, 3);
  EXPECT_EQ(result.outcomes[1].rows, 2);
  EXPECT_EQ(result.outcomes[2].rows, 2);
  EXPECT_EQ(result.outcomes[3].rows, 1);  // id 3: 0.5 * 2 = 1.0 < 2
  EXPECT_EQ(engine_->version(), 2);
  EXPECT_EQ(Scalar("SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM orders"),
            "1:19.0,2:4.0,4:7.0");
}

TEST_F(DuckEngineTest, KnownIdReturnsStoredOutcomeAndChangesNothing) {
  CreateOrders();
  const std::string append =
      R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"]]})";
  Apply({append});
  auto again = Apply({append, append});
  for (const auto& outcome : again.outcomes) {
    EXPECT_TRUE(outcome.duplicate);
    EXPECT_EQ(outcome.status, "applied");
    EXPECT_EQ(outcome.version, 2);
  }
  EXPECT_FALSE(again.new_version);
  EXPECT_EQ(engine_->version(), 2);
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "1");
  Reopen();  // Survives a restart.
  auto after = Apply({append});
  EXPECT_TRUE(after.outcomes[0].duplicate);
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "1");
}

TEST_F(DuckEngineTest, ReusedIdWithDifferentPayloadIsRejected) {
  CreateOrders();
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"]]})"});
  auto result = Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[2,1.0,"us"]]})"});
  EXPECT_EQ(result.outcomes[0].status, "rejected");
  EXPECT_NE(result.outcomes[0].error.find("already used for a different request"),
            std::string::npos);
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "1");
}

TEST_F(DuckEngineTest, BadRequestIsRejectedAndTheRestCommits) {
  CreateOrders();
  auto result = Apply({
      R"({"request_id":"ok1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"]]})",
      R"({"request_id":"bad1","model":"sales","op":"append","table":"orders","rows":[[2,"abc","us"]]})",
      R"({"request_id":"bad2","model":"sales","op":"append","table":"nope","rows":[[2,1.0,"us"]]})",
      R"({"request_id":"bad3","model":"sales","op":"update","table":"orders","set":{"amount":{"call":"multiply","args":[{"field":"region"},{"literal":2}]}}})",
      R"({"request_id":"bad4","model":"sales","op":"append","table":"orders","rows":[[1,1.0,"dup key"]]})",
      R"({"request_id":"ok2","model":"sales","op":"append","table":"orders","rows":[[5,1.0,"us"]]})",
  });
  EXPECT_EQ(result.outcomes[0].status, "applied");
  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(result.outcomes[i].status, "rejected") << i;
    EXPECT_FALSE(result.outcomes[i].error.empty());
  }
  EXPECT_NE(result.outcomes[2].error.find("table nope does not exist"), std::string::npos);
  EXPECT_NE(result.outcomes[4].error.find("duplicate key \"1\""), std::string::npos)
      << result.outcomes[4].error;
  EXPECT_NE(result.outcomes[4].error.find("use upsert"), std::string::npos);
  EXPECT_EQ(result.outcomes[5].status, "applied");
  EXPECT_EQ(Scalar("SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM orders"), "1,5");
  // Rejections are recorded: a redelivery gets the same answer.
  auto again = Apply(
      {R"({"request_id":"bad1","model":"sales","op":"append","table":"orders","rows":[[2,"abc","us"]]})"});
  EXPECT_TRUE(again.outcomes[0].duplicate);
  EXPECT_EQ(again.outcomes[0].status, "rejected");
}

TEST_F(DuckEngineTest, ManySmallAppendsInOneBatchKeepTheirOwnOutcomes) {
  CreateOrders();
  // Consecutive appends run as one; a bad one among them is still found and rejected alone.
  std::vector<std::string> lines;
  for (int i = 0; i < 50; ++i) {
    const int id = i == 30 ? 10 : i;  // Request 30 repeats the key of request 10.
    lines.push_back(R"({"request_id":"a)" + std::to_string(i) +
                    R"(","model":"sales","op":"append","table":"orders","rows":[[)" +
                    std::to_string(id) + R"(,1.5,"eu"],[)" + std::to_string(1000 + i) +
                    R"(,2.5,"us"]]})");
  }
  auto result = Apply(lines);
  for (int i = 0; i < 50; ++i) {
    if (i == 30) continue;
    EXPECT_EQ(result.outcomes[i].status, "applied") << result.outcomes[i].error;
    EXPECT_EQ(result.outcomes[i].rows, 2);
  }
  EXPECT_EQ(result.outcomes[30].status, "rejected");
  EXPECT_NE(result.outcomes[30].error.find("duplicate key \"10\""), std::string::npos)
      << result.outcomes[30].error;
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "98");
  EXPECT_EQ(engine_->version(), 2);
}

TEST_F(DuckEngineTest, SqlCannotReachFilesOutsideTheInputDirectories) {
  CreateOrders();
  { std::ofstream(dir_->path() / "input" / "ok.csv") << "a\n1\n2\n"; }
  const std::string outside = (dir_->path() / "secret.csv").string();
  { std::ofstream(outside) << "a\n42\n"; }
  auto query = [&](const std::string& id, const std::string& sql) {
    return Apply({R"({"request_id":")" + id + R"(","model":"sales","op":"query","sql":)" +
                  nlohmann::json(sql).dump() + "}"})
        .outcomes[0];
  };
  auto secret = query("q1", "SELECT * FROM read_csv('" + outside + "')");
  EXPECT_EQ(secret.status, "rejected");
  EXPECT_NE(secret.error.find("read_csv() is not allowed"), std::string::npos) << secret.error;
  auto copy = query("q2", "COPY (SELECT 1) TO '" + (dir_->path() / "out.csv").string() + "'");
  EXPECT_EQ(copy.status, "rejected");
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "out.csv"));
  // Files reach a model through append's `source`, which resolves links; a query reads tables.
  auto inside = query(
      "q3", "SELECT sum(a) FROM read_csv('" + (dir_->path() / "input" / "ok.csv").string() + "')");
  EXPECT_EQ(inside.status, "rejected") << inside.error;
  EXPECT_EQ(Scalar("SELECT 1"), "1");  // Still serving.
}

TEST_F(DuckEngineTest, OnlyRejectionsLeaveTheVersionAlone) {
  CreateOrders();
  auto result = Apply(
      {R"({"request_id":"x","model":"sales","op":"append","table":"orders","rows":[[null,1.0,"eu"]]})"});
  EXPECT_EQ(result.outcomes[0].status, "rejected");
  EXPECT_FALSE(result.new_version);
  EXPECT_EQ(engine_->version(), 1);
}

TEST_F(DuckEngineTest, QueryAndInvokeReturnRows) {
  CreateOrders();
  auto result = Apply({
      R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"],[2,3.0,"us"],[3,1.5,"eu"]]})",
      R"({"request_id":"q1","model":"sales","op":"query","sql":"SELECT region, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY 1"})",
      R"({"request_id":"f1","model":"sales","op":"invoke","function":"top_n","args":{"table":"orders","column":"amount","n":2}})",
      R"({"request_id":"f2","model":"sales","op":"invoke","function":"row_counts"})",
      R"({"request_id":"q2","model":"sales","op":"query","sql":"DELETE FROM orders"})",
  });
  ASSERT_EQ(result.outcomes[1].status, "applied") << result.outcomes[1].error;
  EXPECT_EQ(result.outcomes[1].rows, 2);
  EXPECT_EQ(result.outcomes[1].result->column(1)->GetScalar(0).ValueOrDie()->ToString(), "11");
  ASSERT_EQ(result.outcomes[2].status, "applied") << result.outcomes[2].error;
  EXPECT_EQ(result.outcomes[2].rows, 2);
  ASSERT_EQ(result.outcomes[3].status, "applied") << result.outcomes[3].error;
  EXPECT_EQ(result.outcomes[3].result->num_rows(), 1);
  EXPECT_EQ(result.outcomes[4].status, "rejected");
  EXPECT_NE(result.outcomes[4].error.find("only SELECT is allowed"), std::string::npos)
      << result.outcomes[4].error;
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "3");
}

TEST_F(DuckEngineTest, SourceFilesAreReadOnlyFromInputDirectories) {
  CreateOrders();
  {
    std::ofstream csv(dir_->path() / "input" / "orders.csv");
    csv << "id,amount,region\n10,1.5,eu\n11,2.5,us\n";
  }
  auto result = Apply({
      R"({"request_id":"s1","model":"sales","op":"append","table":"orders","source":{"format":"csv","path":"orders.csv"}})",
      R"({"request_id":"s2","model":"sales","op":"append","table":"orders","source":{"format":"csv","path":"/etc/passwd"}})",
      R"({"request_id":"s3","model":"sales","op":"append","table":"orders","source":{"format":"parquet","path":"missing.parquet"}})",
  });
  EXPECT_EQ(result.outcomes[0].status, "applied") << result.outcomes[0].error;
  EXPECT_EQ(result.outcomes[0].rows, 2);
  EXPECT_EQ(result.outcomes[1].status, "rejected");
  EXPECT_NE(result.outcomes[1].error.find("outside the input directories"), std::string::npos)
      << result.outcomes[1].error;
  EXPECT_EQ(result.outcomes[2].status, "rejected");
  EXPECT_EQ(result.outcomes[2].error.find(dir_->path().string()), std::string::npos)
      << "a server path leaked: " << result.outcomes[2].error;
}

TEST_F(DuckEngineTest, LinksOutOfTheInputDirectoriesFifosAndDirectoriesAreRefused) {
  CreateOrders();
  const auto input = dir_->path() / "input";
  const auto secret = dir_->path() / "secret.csv";
  { std::ofstream(secret) << "id,amount,region\n99,9.5,xx\n"; }
  std::filesystem::create_symlink(secret, input / "link.csv");
  std::filesystem::create_directory_symlink(dir_->path(), input / "up");
  ASSERT_EQ(mkfifo((input / "fifo.csv").c_str(), 0600), 0);
  std::filesystem::create_directory(input / "dir.csv");
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"link.csv", "outside the input directories"},
      {"up/secret.csv", "outside the input directories"},
      {"fifo.csv", "not a regular file"},
      {"dir.csv", "not a regular file"},
  };
  for (const auto& [path, error] : refused) {
    auto result = Apply(
        {R"({"request_id":"s-)" + std::to_string(std::hash<std::string>()(path)) +
         R"(","model":"sales","op":"append","table":"orders","source":{"format":"csv","path":")" +
         path + R"("}})"});
    EXPECT_EQ(result.outcomes[0].status, "rejected") << path;
    EXPECT_NE(result.outcomes[0].error.find(error), std::string::npos)
        << path << ": " << result.outcomes[0].error;
    EXPECT_EQ(result.outcomes[0].error.find(dir_->path().string()), std::string::npos)
        << "a server path leaked: " << result.outcomes[0].error;
  }
  // The write path's SQL cannot read through a link either.
  auto query = Apply(
      {R"j({"request_id":"q-link","model":"sales","op":"query","sql":"SELECT * FROM read_csv('link.csv')"})j"});
  EXPECT_EQ(query.outcomes[0].status, "rejected");
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders WHERE id = 99"), "0");
}

TEST_F(DuckEngineTest, AttachMakesASupportingFileQueryable) {
  CreateOrders();
  const auto ref = dir_->path() / "input" / "regions.duckdb";
  {
    auto db = DuckDatabase::Open({.path = ref.string()}).ValueOrDie();
    ASSERT_TRUE(db->Connect()
                    .ValueOrDie()
                    ->Execute("CREATE TABLE regions AS SELECT 'eu' AS code, 'Europe' AS name")
                    .ok());
  }
  {
    std::ofstream junk(dir_->path() / "input" / "junk.duckdb");
    junk << "not a database";
  }
  auto result = Apply({
      R"({"request_id":"t1","model":"sales","op":"attach","name":"ref","path":"regions.duckdb"})",
      R"({"request_id":"t2","model":"sales","op":"attach","name":"junk","path":"junk.duckdb"})",
  });
  EXPECT_EQ(result.outcomes[0].status, "applied") << result.outcomes[0].error;
  EXPECT_EQ(result.outcomes[1].status, "rejected");
  EXPECT_EQ(Scalar("SELECT name FROM ref.regions"), "Europe");
  Reopen();  // Attachments come back after a restart.
  EXPECT_EQ(Scalar("SELECT name FROM ref.regions"), "Europe");
}

TEST_F(DuckEngineTest, VersionFileIsACheckpointedCopy) {
  CreateOrders();
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"]]})"});
  auto snapshot = engine_->PrepareSnapshot().ValueOrDie();
  EXPECT_EQ(snapshot.version, 2);
  // The writer goes on after the checkpoint; the copy still holds version 2.
  Apply(
      {R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[[2,1.0,"us"]]})"});
  const auto target = dir_->path() / "v2.duckdb";
  ASSERT_TRUE(engine_->WriteVersionFile(snapshot, target).ok());
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), 2);
  auto db = DuckDatabase::Open({.path = target.string(), .read_only = true}).ValueOrDie();
  auto count = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
  EXPECT_EQ(count->column(0)->GetScalar(0).ValueOrDie()->ToString(), "1");
}

/// An append to orders of rows with ids [first, first + n).
std::string AppendOrders(const std::string& id, int64_t first, int64_t n) {
  std::string rows;
  for (int64_t i = first; i < first + n; ++i) {
    rows += (rows.empty() ? "[" : ",[") + std::to_string(i) + ",1.5,\"eu\"]";
  }
  return R"({"request_id":")" + id +
         R"(","model":"sales","op":"append","table":"orders","rows":[)" + rows + "]}";
}

TEST_F(DuckEngineTest, VersionFileReplaysTheLogUpToItsVersion) {
  CreateOrders();
  // More than a DuckDB row group (122,880 rows), which DuckDB writes into the main file
  // before the commit instead of into the log: the copy must find those blocks.
  Apply({AppendOrders("big", 0, 130'000)});
  Apply({AppendOrders("a1", 130'000, 10)});
  auto snapshot = engine_->PrepareSnapshot().ValueOrDie();
  EXPECT_EQ(snapshot.version, 3);
  EXPECT_GT(snapshot.log_bytes, 0);  // Frozen without a checkpoint.
  // The writer goes on, the log grows past the snapshot, again with a large append.
  Apply({AppendOrders("a2", 130'010, 5)});
  Apply({AppendOrders("big2", 200'000, 130'000)});
  const auto target = dir_->path() / "v3.duckdb";
  ASSERT_TRUE(engine_->WriteVersionFile(snapshot, target).ok());
  EXPECT_FALSE(std::filesystem::exists(target.string() + ".wal"));  // It stands alone.
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), 3);
  auto db = DuckDatabase::Open({.path = target.string(), .read_only = true}).ValueOrDie();
  auto count = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
  EXPECT_EQ(count->column(0)->GetScalar(0).ValueOrDie()->ToString(), "130010");
  // The model itself is untouched and has everything.
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "260015");
  Reopen();
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "260015");
}

// A batch that adds a million rows or more commits through a checkpoint (its rows written
// once, into the main file), and waits for that until no snapshot is being copied.
TEST_F(DuckEngineTest, ALargeAppendCommitsIntoTheMainFileOnceNoSnapshotIsCopied) {
  CreateOrders();
  Apply({AppendOrders("a1", 0, 10)});
  constexpr int64_t kRows = 1'000'000;
  arrow::Int64Builder ids;
  arrow::DoubleBuilder amounts;
  arrow::StringBuilder regions;
  for (int64_t i = 0; i < kRows; ++i) {
    ASSERT_TRUE(ids.Append(100 + i).ok());
    ASSERT_TRUE(amounts.Append(1.5).ok());
    ASSERT_TRUE(regions.Append("eu").ok());
  }
  auto rows = arrow::Table::Make(
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8())}),
      {ids.Finish().ValueOrDie(), amounts.Finish().ValueOrDie(), regions.Finish().ValueOrDie()});
  auto out = arrow::io::FileOutputStream::Open((dir_->path() / "input" / "big.parquet").string())
                 .ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*rows, arrow::default_memory_pool(), out).ok());
  ASSERT_TRUE(out->Close().ok());

  auto snapshot = engine_->PrepareSnapshot().ValueOrDie();
  std::thread writer([&] {
    Apply({R"({"request_id":"big","model":"sales","op":"append","table":"orders",)"
           R"("source":{"format":"parquet","path":"big.parquet"}})"});
  });
  const auto target = dir_->path() / "v2.duckdb";
  ASSERT_TRUE(engine_->WriteVersionFile(snapshot, target).ok());
  snapshot.hold.reset();
  writer.join();
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), 2);
  EXPECT_EQ(engine_->version(), 3);
  const auto log = dir_->path() / "models" / "sales" / "rw" / "sales.duckdb.wal";
  std::error_code no_log;  // Checkpointed: the log is gone, or holds the version row only.
  const uintmax_t log_bytes = std::filesystem::file_size(log, no_log);
  EXPECT_TRUE(no_log || log_bytes < (uintmax_t{1} << 20)) << log_bytes;
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), std::to_string(kRows + 10));
  Reopen();
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), std::to_string(kRows + 10));
}

TEST_F(DuckEngineTest, SnapshotCheckpointsALongLog) {
  Reopen(/*snapshot_log_bytes=*/64 << 10);
  CreateOrders();
  Apply({AppendOrders("a1", 0, 100)});
  auto short_log = engine_->PrepareSnapshot().ValueOrDie();
  EXPECT_GT(short_log.log_bytes, 0);
  Apply({AppendOrders("a2", 100, 10'000)});
  auto long_log = engine_->PrepareSnapshot().ValueOrDie();
  EXPECT_EQ(long_log.log_bytes, 0);  // Past snapshot_log_bytes: checkpointed instead.
  const auto target = dir_->path() / "v3.duckdb";
  ASSERT_TRUE(engine_->WriteVersionFile(long_log, target).ok());
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), 3);
  auto db = DuckDatabase::Open({.path = target.string(), .read_only = true}).ValueOrDie();
  auto count = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
  EXPECT_EQ(count->column(0)->GetScalar(0).ValueOrDie()->ToString(), "10100");
}

}  // namespace
}  // namespace teatree
