#include "teatree/manager/model_manager.h"

#include <arrow/api.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "teatree/archive/archive.h"
#include "teatree/archive/s3_test_server.h"
#include "teatree/common/file_util.h"
#include "teatree/common/net.h"
#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"
#include "teatree/control/control_store.h"
#include "teatree/control/postgres_server.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/engine.h"
#include "teatree/manager/commands.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const char* kCreate =
    R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders","schema":[)"
    R"j({"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(10,2)"},)j"
    R"({"name":"region","type":"VARCHAR"},{"name":"at","type":"TIMESTAMPTZ"},)"
    R"({"name":"tags","type":"VARCHAR[]"}],"primary_key":["id"]})";
const char* kAppend =
    R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
    R"([1,"9.50","eu","2026-01-02T03:04:05Z",["new"]],[2,3,"us",null,[]]]})";

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-manager-test-").ValueOrDie();
    data_ = dir_->path() / "data";
    fs::create_directories(data_ / "input");
    Open();
  }

  void Open() {
    manager_.reset();
    manager_ = ModelManager::Open({.data_dir = data_, .model = "sales"}).ValueOrDie();
  }

  BatchResult Apply(const std::vector<std::string>& lines) {
    std::vector<Request> batch;
    batch.reserve(lines.size());
    for (const auto& line : lines) batch.push_back(DecodeRequest(line).ValueOrDie());
    auto result = manager_->Apply(batch);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return *result;
  }

  std::unique_ptr<ControlStore> Catalog() {
    return ControlStore::Open("sqlite://" + (data_ / "control.sqlite").string()).ValueOrDie();
  }

  /// Everything a bad request must leave as it was: user data, versions, version files and
  /// the catalog's models and content.
  std::string State() {
    std::string state = "version " + std::to_string(manager_->version()) + "\n";
    auto rows = manager_->engine()->Query("SELECT * FROM orders ORDER BY id").ValueOrDie();
    state += rows->ToString();
    for (int64_t v : ListVersionFiles(data_, "sales").ValueOrDie()) {
      state += "file v" + std::to_string(v) + " " +
               Sha256File(VersionFilePath(data_, "sales", v)).ValueOrDie() + "\n";
    }
    EXPECT_TRUE(manager_->FlushCatalog(seconds(30)).ok());
    auto catalog = Catalog();
    for (const auto& model : catalog->ListModels().ValueOrDie()) {
      state += model.id + " " + std::to_string(model.current_version) + " " +
               std::to_string(model.published_version) + "\n";
    }
    for (const auto& record : catalog->ListContent("sales").ValueOrDie()) {
      state += record.table_name + " v" + std::to_string(record.version) + " " +
               std::to_string(record.rows) + " " + record.checksum + "\n";
    }
    return state;
  }

  std::unique_ptr<TempDir> dir_;
  fs::path data_;
  std::unique_ptr<ModelManager> manager_;
};

TEST_F(ModelManagerTest, PublishesVersionsArchivesAndRecordsThem) {
  Apply({kCreate});
  Apply({kAppend});
  ASSERT_TRUE(manager_->WaitPublished(2, seconds(30)).ok());
  EXPECT_EQ(manager_->published_version(), 2);
  const fs::path v2 = VersionFilePath(data_, "sales", 2);
  ASSERT_TRUE(fs::exists(v2));
  std::string checksum;
  std::ifstream(v2.string() + ".sha256") >> checksum;
  EXPECT_EQ(checksum, Sha256File(v2).ValueOrDie());
  EXPECT_TRUE(fs::exists(data_ / "archive" / "sales" / "v2" / "orders.parquet"));
  // The version file opens read-only and holds exactly version 2.
  auto db = DuckDatabase::Open({.path = v2.string(), .read_only = true}).ValueOrDie();
  auto rows = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
  EXPECT_EQ(rows->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");
  auto catalog = Catalog();
  auto model = catalog->GetModel("sales").ValueOrDie();
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(model->current_version, 2);
  EXPECT_EQ(model->published_version, 2);
  auto content = catalog->ListContent("sales").ValueOrDie();
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content.back().version, 2);
  EXPECT_EQ(content.back().rows, 2);
  EXPECT_EQ(content.back().checksum, checksum);
  auto log = catalog->ListRequests("sales", 10).ValueOrDie();
  EXPECT_EQ(log.size(), 2u);
}

TEST_F(ModelManagerTest, RestartCleansLeftoversAndRepublishesAMissingVersion) {
  Apply({kCreate});
  Apply({kAppend});
  ASSERT_TRUE(manager_->WaitPublished(2, seconds(30)).ok());
  ASSERT_TRUE(manager_->Close().ok());
  manager_.reset();
  // As if a crash struck mid-publish: a half-copied file and no v2.
  const fs::path versions = data_ / "models" / "sales" / "versions";
  { std::ofstream(versions / "v3.duckdb.tmp") << "partial"; }
  fs::remove(versions / "v2.duckdb");
  fs::remove(versions / "v2.duckdb.sha256");
  Open();
  EXPECT_FALSE(fs::exists(versions / "v3.duckdb.tmp"));
  ASSERT_TRUE(manager_->WaitPublished(2, seconds(30)).ok());
  EXPECT_TRUE(fs::exists(versions / "v2.duckdb"));
}

TEST_F(ModelManagerTest, SnapshotRequestPublishesNow) {
  Apply({kCreate});
  auto result = Apply({R"({"request_id":"s1","model":"sales","op":"snapshot"})"});
  EXPECT_TRUE(result.publish_requested);
  ASSERT_TRUE(manager_->WaitPublished(1, seconds(30)).ok());
}

TEST_F(ModelManagerTest, OlderVersionsGoAfterTheGracePeriod) {
  manager_.reset();
  manager_ = ModelManager::Open({.data_dir = data_,
                                 .model = "sales",
                                 .archive_url = "none",
                                 .retention_grace = std::chrono::milliseconds(0)})
                 .ValueOrDie();
  Apply({kCreate});
  for (int i = 0; i < 4; ++i) {
    Apply({R"({"request_id":"x)" + std::to_string(i) +
           R"(","model":"sales","op":"append","table":"orders","rows":[[)" +
           std::to_string(10 + i) + R"(,1,"eu",null,[]]]})"});
    ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  }
  auto versions = ListVersionFiles(data_, "sales").ValueOrDie();
  ASSERT_EQ(versions.size(), 2u) << "keeps the newest and the previous";
  EXPECT_EQ(versions.back(), 5);
}

std::string AppendOne(int i) {
  return R"({"request_id":"e)" + std::to_string(i) +
         R"(","model":"sales","op":"append","table":"orders","rows":[[)" + std::to_string(100 + i) +
         R"(,1,"eu",null,[]]]})";
}

TEST_F(ModelManagerTest, PublishEveryGivesEachVersionItsFile) {
  manager_.reset();
  manager_ = ModelManager::Open({.data_dir = data_,
                                 .model = "sales",
                                 .archive_url = "none",
                                 .keep_versions = 100,
                                 .publish = PublishPolicy::kEvery,
                                 .publish_interval = std::chrono::seconds(10)})
                 .ValueOrDie();
  Apply({kCreate});
  for (int i = 0; i < 10; ++i) Apply({AppendOne(i)});  // Back to back, no waiting.
  ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  auto versions = ListVersionFiles(data_, "sales").ValueOrDie();
  ASSERT_EQ(versions.size(), 11u) << "one file per version, none coalesced";
  for (int64_t v : versions) {
    auto db =
        DuckDatabase::Open({.path = VersionFilePath(data_, "sales", v).string(), .read_only = true})
            .ValueOrDie();
    auto rows = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
    EXPECT_EQ(rows->column(0)->GetScalar(0).ValueOrDie()->ToString(), std::to_string(v - 1));
  }
}

// Under auto a quiet model gets a file for every version without waiting out the interval
// (an hour here), and the writer never waits for the publisher.
TEST_F(ModelManagerTest, PublishAutoGivesAQuietModelEveryVersionAtOnce) {
  manager_.reset();
  manager_ = ModelManager::Open({.data_dir = data_,
                                 .model = "sales",
                                 .archive_url = "none",
                                 .keep_versions = 100,
                                 .publish = PublishPolicy::kAuto,
                                 .publish_interval = std::chrono::hours(1)})
                 .ValueOrDie();
  Apply({kCreate});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
    Apply({AppendOne(i)});
  }
  ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  EXPECT_EQ(ListVersionFiles(data_, "sales").ValueOrDie(), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST_F(ModelManagerTest, PublishCoalesceSkipsVersionsCommittedWithinTheInterval) {
  manager_.reset();
  manager_ = ModelManager::Open({.data_dir = data_,
                                 .model = "sales",
                                 .archive_url = "none",
                                 .keep_versions = 100,
                                 .publish = PublishPolicy::kCoalesce,
                                 .publish_interval = std::chrono::seconds(2)})
                 .ValueOrDie();
  Apply({kCreate});
  ASSERT_TRUE(manager_->WaitPublished(1, seconds(30)).ok());
  for (int i = 0; i < 10; ++i) Apply({AppendOne(i)});
  ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  EXPECT_LT(ListVersionFiles(data_, "sales").ValueOrDie().size(), 11u);
}

TEST_F(ModelManagerTest, KeepsTheNewestVersionsWhateverTheirAge) {
  manager_.reset();
  manager_ = ModelManager::Open({.data_dir = data_,
                                 .model = "sales",
                                 .archive_url = "none",
                                 .keep_versions = 3,
                                 .retention_grace = std::chrono::milliseconds(0),
                                 .publish = PublishPolicy::kEvery})
                 .ValueOrDie();
  Apply({kCreate});
  for (int i = 0; i < 5; ++i) {
    Apply({AppendOne(i)});
    ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  }
  EXPECT_EQ(ListVersionFiles(data_, "sales").ValueOrDie(), (std::vector<int64_t>{4, 5, 6}));
}

// drop_table and alter_table travel like any write: a new version, published, archived with
// its new schema and recorded; the version before keeps its own, on both engines.
TEST_F(ModelManagerTest, SchemaChangesArePublishedArchivedAndRecorded) {
  for (const std::string engine : {"duckdb", "arrow"}) {
    SCOPED_TRACE(engine);
    manager_.reset();
    data_ = dir_->path() / engine;
    fs::create_directories(data_ / "input");
    Open();
    nlohmann::json create = nlohmann::json::parse(kCreate);
    create["engine"] = engine;
    Apply({create.dump(), kAppend,
           R"({"request_id":"c2","model":"sales","op":"create_table","table":"gone",)"
           R"("schema":[{"name":"x","type":"INTEGER"}]})"});
    ASSERT_TRUE(manager_->WaitPublished(1, seconds(30)).ok());
    auto changed = Apply({
        R"({"request_id":"x1","model":"sales","op":"alter_table","table":"orders","changes":[)"
        R"({"add_column":"note","type":"VARCHAR"},{"rename_column":"amount","to":"total"},)"
        R"j({"alter_column":"total","type":"DECIMAL(12,3)"},{"drop_column":"region"}]})j",
        R"({"request_id":"d1","model":"sales","op":"drop_table","table":"gone"})",
    });
    for (const auto& outcome : changed.outcomes) EXPECT_TRUE(outcome.applied()) << outcome.error;
    EXPECT_EQ(changed.version, 2);
    ASSERT_TRUE(manager_->WaitPublished(2, seconds(30)).ok());
    ASSERT_TRUE(manager_->FlushCatalog(seconds(30)).ok());

    auto archive = Archive::Open((data_ / "archive").string()).ValueOrDie();
    EXPECT_EQ(archive->ListTables("sales", 2).ValueOrDie(), std::vector<std::string>{"orders"});
    auto now = archive->ReadTable("sales", 2, "orders").ValueOrDie();
    EXPECT_EQ(now->schema()->ToString(),
              "id: int64\ntotal: decimal128(12, 3)\nat: timestamp[us, tz=Etc/UTC]\n"
              "tags: list<element: string>\nnote: string");
    EXPECT_EQ(now->num_rows(), 2);
    EXPECT_EQ(now->GetColumnByName("total")->GetScalar(0).ValueOrDie()->ToString(), "9.500");
    std::vector<std::string> recorded;
    for (const auto& record : Catalog()->ListContent("sales").ValueOrDie()) {
      if (record.version == 2) recorded.push_back(record.table_name);
    }
    EXPECT_EQ(recorded, std::vector<std::string>{"orders"});
    // Version 1, archived before the change, keeps its schema and the table dropped since.
    EXPECT_EQ(archive->ListTables("sales", 1).ValueOrDie(),
              (std::vector<std::string>{"gone", "orders"}));
    EXPECT_EQ(archive->ReadTable("sales", 1, "orders").ValueOrDie()->schema()->field(1)->ToString(),
              "amount: decimal128(10, 2)");
  }
}

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

TEST_F(ModelManagerTest, BadInputChangesNothingAndSaysWhatIsWrong) {
  Apply({kCreate});
  Apply({kAppend});
  ASSERT_TRUE(manager_->WaitPublished(2, seconds(30)).ok());
  WriteFile(data_ / "input" / "corrupt.parquet", "PAR1 this is not parquet at all PAR1");
  WriteFile(data_ / "input" / "corrupt.duckdb", std::string(8192, 'x'));
  const char truncated_ipc[] = "ARROW1\0\0\xff\xff\xff\xff";
  WriteFile(data_ / "input" / "truncated.arrow",
            std::string(truncated_ipc, sizeof(truncated_ipc) - 1));
  const std::string before = State();

  struct Case {
    std::string line;
    std::string expect;  // A fragment of the error.
  };
  const std::vector<Case> cases = {
      {R"({"request_id":"b1","model":"..","op":"snapshot"})", "model name \"..\" is invalid"},
      {R"({"request_id":"b2","model":"a/b","op":"snapshot"})", "is invalid"},
      {R"({"request_id":"b3","model":"Sales","op":"snapshot"})", "is invalid"},
      {R"({"request_id":"b4","model":"","op":"snapshot"})", "invalid"},
      {R"({"request_id":"b5","model":"sales","op":"append","table":"$x","rows":[[1]]})", "invalid"},
      {R"({"request_id":"b6","model":"sales","op":"append","table":"a.b","rows":[[1]]})",
       "invalid"},
      {R"({"request_id":"b7","model":"sales","op":"append","table":"x;drop","rows":[[1]]})",
       "invalid"},
      {R"({"request_id":"b8","model":"sales","op":"frobnicate"})", "frobnicate"},
      {R"({"model":"sales","op":"snapshot"})", "missing request_id"},
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[7,1,"eu",null,[]]]})",
       "already used"},
      {R"({"request_id":"b9","model":"sales","op":"append","table":"orders","rows":[[7,1]]})",
       "columns"},
      {R"({"request_id":"b10","model":"sales","op":"append","table":"orders","rows":[[7,"abc","eu",null,[]]]})",
       "amount"},
      {R"({"request_id":"b11","model":"sales","op":"append","table":"orders","rows":[[null,1,"eu",null,[]]]})",
       "id"},
      {R"({"request_id":"b12","model":"sales","op":"upsert","table":"orders","rows":[{"id":1,"colour":"red"}]})",
       "colour"},
      {R"({"request_id":"b13","model":"sales","op":"delete","table":"orders","where":{"call":"frob","args":[]}})",
       "frob"},
      {R"({"request_id":"b14","model":"sales","op":"delete","table":"orders","where":{"call":"less","args":[{"field":"region"},{"literal":1}]}})",
       "region"},
      {R"({"request_id":"b15","model":"sales","op":"append","table":"orders","source":{"format":"csv","path":"/etc/passwd"}})",
       "outside the input directories"},
      {R"({"request_id":"b16","model":"sales","op":"append","table":"orders","source":{"format":"parquet","path":"../../secret.parquet"}})",
       ""},
      {R"({"request_id":"b17","model":"sales","op":"append","table":"orders","source":{"format":"parquet","path":"corrupt.parquet"}})",
       "parquet"},
      {R"({"request_id":"b18","model":"sales","op":"append","table":"orders","source":{"format":"arrow","path":"truncated.arrow"}})",
       "arrow"},
      {R"({"request_id":"b19","model":"sales","op":"append","table":"orders","rows_ipc":"QVJST1cxAAA="})",
       ""},
      {R"({"request_id":"b20","model":"sales","op":"attach","name":"ref","path":"missing.duckdb"})",
       "missing.duckdb"},
      {R"({"request_id":"b21","model":"sales","op":"attach","name":"ref","path":"corrupt.duckdb"})",
       "not a readable DuckDB file"},
      {R"({"request_id":"b22","model":"sales","op":"append","table":"orders","rows":[[7,1,"eu",null,[]]])",
       "JSON"},
      {R"({"request_id":"b23","model":"sales","op":"update","table":"orders","set":{"id":{"literal":5}}})",
       "key column"},
      {R"({"request_id":"b24","model":"sales","op":"query","sql":"DROP TABLE orders"})",
       "only SELECT is allowed"},
      {R"({"request_id":"b25","model":"sales","op":"query","sql":"SELECT 1; DROP TABLE orders"})",
       "single SELECT"},
      {R"({"request_id":"b26","model":"sales","op":"drop_table","table":"order"})",
       "table order does not exist in model sales (its tables: orders)"},
      {R"({"request_id":"b27","model":"sales","op":"alter_table","table":"orders","changes":[{"drop_column":"id"}]})",
       "part of the primary key"},
      {R"({"request_id":"b28","model":"sales","op":"alter_table","table":"orders","changes":[{"add_column":"x","type":"INTEGER"},{"alter_column":"amount","type":"DOUBLE"}]})",
       "cannot change from DECIMAL(10,2) to DOUBLE"},
      {R"({"request_id":"b29","model":"sales","op":"alter_table","table":"orders","changes":[{"drop":"id"}]})",
       "write each change as"},
  };
  for (const auto& c : cases) {
    auto request = DecodeRequest(c.line);
    std::string error;
    if (!request.ok()) {
      error = request.status().message();
    } else {
      auto result = manager_->Apply({*request});
      ASSERT_TRUE(result.ok()) << c.line << ": " << result.status().ToString();
      ASSERT_EQ(result->outcomes.size(), 1u);
      EXPECT_EQ(result->outcomes[0].status, "rejected") << c.line;
      error = result->outcomes[0].error;
    }
    EXPECT_FALSE(error.empty()) << c.line;
    EXPECT_NE(error.find(c.expect), std::string::npos) << c.line << "\n  error: " << error;
  }
  ASSERT_TRUE(manager_->WaitPublished(manager_->version(), seconds(30)).ok());
  EXPECT_EQ(State(), before);
}

// The catalog on PostgreSQL, stopped the way a crash stops it (pg_ctl stop -m immediate)
// in the middle of a stream of batches and started again: the writer never waits for it,
// and once it is back it ends up saying what the model file says.
TEST(ModelManagerPostgresTest, CatalogOutageNeitherStopsWritesNorLosesOrDoublesRecords) {
  auto dir = TempDir::Make("teatree-manager-pg-test-").ValueOrDie();
  fs::permissions(dir->path(), fs::perms::others_exec, fs::perm_options::add);
  auto postgres = PostgresServer::Start({.dir = dir->path() / "pg"}).ValueOrDie();
  ASSERT_TRUE(postgres->CreateDatabase("catalog").ok());
  const std::string url = postgres->url("catalog");
  auto manager = ModelManager::Open({.data_dir = dir->path() / "data",
                                     .model = "sales",
                                     .control_url = url,
                                     .publish_interval = std::chrono::milliseconds(50)})
                     .ValueOrDie();
  auto apply = [&](const std::string& line) {
    auto result = manager->Apply({DecodeRequest(line).ValueOrDie()});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_TRUE(result->outcomes[0].applied()) << result->outcomes[0].error;
  };
  apply(kCreate);
  constexpr int kBatches = 60;
  for (int i = 0; i < kBatches; ++i) {
    if (i == 20) {
      ASSERT_TRUE(postgres->Stop(/*immediate=*/true).ok());
    }
    if (i == 40) {
      ASSERT_TRUE(postgres->Restart().ok());
    }
    apply(R"({"request_id":"r)" + std::to_string(i) +
          R"(","model":"sales","op":"append","table":"orders","rows":[[)" +
          std::to_string(100 + i) + R"(,"1.00","eu",null,[]]]})");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Let versions publish.
  }
  ASSERT_TRUE(manager->WaitPublished(manager->version(), seconds(60)).ok());

  auto catalog = ControlStore::Open(url).ValueOrDie();
  auto model = catalog->GetModel("sales").ValueOrDie();
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(model->current_version, manager->version());
  EXPECT_EQ(model->published_version, manager->published_version());
  auto log = catalog->ListRequests("sales", 1000).ValueOrDie();
  EXPECT_EQ(log.size(), static_cast<size_t>(kBatches + 1));
  std::set<std::string> ids;
  for (const auto& record : log) ids.insert(record.request_id);
  EXPECT_EQ(ids.size(), log.size()) << "a request was logged twice";
  auto content = catalog->ListContent("sales").ValueOrDie();
  ASSERT_FALSE(content.empty());
  EXPECT_EQ(content.back().version, manager->published_version());
  EXPECT_EQ(content.back().rows, kBatches);
}

// The archive on an S3-protocol server that stops answering mid-stream (paused: SIGSTOP) and
// comes back: the writer never waits for it, and every published version ends archived,
// with nothing partial left in the bucket.
TEST(ModelManagerS3Test, ArchiveOutageNeitherBlocksTheWriterNorLosesAVersion) {
  auto dir = TempDir::Make("teatree-manager-s3-test-").ValueOrDie();
  auto s3 = S3TestServer::Start(TEATREE_PYTHON, dir->path() / "s3.log").ValueOrDie();
  ASSERT_TRUE(s3->CreateBucket("lake").ok());
  const std::string url = s3->ArchiveUrl("lake", "archive");
  const fs::path data = dir->path() / "data";
  auto manager = ModelManager::Open({.data_dir = data,
                                     .model = "sales",
                                     .archive_url = url,
                                     .publish_interval = std::chrono::milliseconds(50)})
                     .ValueOrDie();
  ASSERT_TRUE(manager->Apply({DecodeRequest(kCreate).ValueOrDie()}).ok());
  for (int i = 0; i < 30; ++i) {
    if (i == 10) {
      ASSERT_TRUE(s3->process().Signal(SIGSTOP).ok());
    }
    if (i == 20) {
      ASSERT_TRUE(s3->process().Signal(SIGCONT).ok());
    }
    auto result = manager->Apply(
        {DecodeRequest(R"({"request_id":"r)" + std::to_string(i) +
                       R"(","model":"sales","op":"append","table":"orders","rows":[[)" +
                       std::to_string(100 + i) + R"(,"1.00","eu",null,[]]]})")
             .ValueOrDie()});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_TRUE(result->outcomes[0].applied()) << result->outcomes[0].error;
    // Let versions publish; while the server is paused, long enough for the archive's
    // requests to time out.
    std::this_thread::sleep_for(std::chrono::milliseconds(i >= 10 && i < 20 ? 600 : 50));
  }
  ASSERT_TRUE(manager->WaitPublished(manager->version(), seconds(180)).ok());

  auto catalog = ControlStore::Open("sqlite://" + (data / "control.sqlite").string()).ValueOrDie();
  auto content = catalog->ListContent("sales").ValueOrDie();
  ASSERT_FALSE(content.empty());
  auto archive = Archive::Open(url).ValueOrDie();
  for (const auto& record : content) {
    EXPECT_EQ(record.archive_uri,
              "s3://lake/archive/sales/v" + std::to_string(record.version) + "/orders.parquet");
    auto table = archive->ReadTable("sales", record.version, record.table_name);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    EXPECT_EQ((*table)->num_rows(), record.rows);
  }
  EXPECT_EQ(content.back().version, manager->published_version());
  std::string path;
  auto bucket = arrow::fs::FileSystemFromUri(url, &path).ValueOrDie();
  arrow::fs::FileSelector everything;
  everything.base_dir = path;
  everything.recursive = true;
  for (const auto& info : bucket->GetFileInfo(everything).ValueOrDie()) {
    EXPECT_EQ(info.path().find(".tmp-"), std::string::npos) << info.path();
  }
}

// An archive that is down when the manager starts and while versions are published: the
// manager starts and writes anyway, and once the server is up every published version is
// archived.
TEST(ModelManagerS3Test, VersionsPublishedWhileTheArchiveIsDownAreArchivedWhenItIsBack) {
  auto dir = TempDir::Make("teatree-manager-s3-down-test-").ValueOrDie();
  const int port = FreeLoopbackPort().ValueOrDie();
  const std::string url = S3TestServer::ArchiveUrlAt(port, "lake", "archive");
  const fs::path data = dir->path() / "data";
  auto manager = ModelManager::Open({.data_dir = data,
                                     .model = "sales",
                                     .archive_url = url,
                                     .publish_interval = std::chrono::milliseconds(50)})
                     .ValueOrDie();
  ASSERT_TRUE(manager->Apply({DecodeRequest(kCreate).ValueOrDie()}).ok());
  ASSERT_TRUE(manager->Apply({DecodeRequest(kAppend).ValueOrDie()}).ok());
  EXPECT_FALSE(manager->WaitPublished(2, seconds(2)).ok());  // The archive is down.

  auto s3 = S3TestServer::Start(TEATREE_PYTHON, dir->path() / "s3.log", port).ValueOrDie();
  ASSERT_TRUE(s3->CreateBucket("lake").ok());
  ASSERT_TRUE(manager->WaitPublished(2, seconds(120)).ok());
  auto archive = Archive::Open(url).ValueOrDie();
  auto catalog = ControlStore::Open("sqlite://" + (data / "control.sqlite").string()).ValueOrDie();
  for (const auto& record : catalog->ListContent("sales").ValueOrDie()) {
    EXPECT_TRUE(archive->ReadTable("sales", record.version, record.table_name).ok())
        << "version " << record.version;
  }
  EXPECT_EQ(archive->ListVersions("sales").ValueOrDie().back(), 2);
}

// Version files mirrored into an S3 archive come back with `teatree pull --from-archive`,
// checked against their SHA-256; a damaged one is refused and nothing is left behind.
TEST(ModelManagerS3Test, PullFromTheArchiveChecksTheVersionFile) {
  auto dir = TempDir::Make("teatree-manager-pull-test-").ValueOrDie();
  auto s3 = S3TestServer::Start(TEATREE_PYTHON, dir->path() / "s3.log").ValueOrDie();
  ASSERT_TRUE(s3->CreateBucket("lake").ok());
  const std::string url = s3->ArchiveUrl("lake", "archive");
  auto manager = ModelManager::Open({.data_dir = dir->path() / "data",
                                     .model = "sales",
                                     .archive_url = url,
                                     .mirror_versions = true})
                     .ValueOrDie();
  ASSERT_TRUE(manager->Apply({DecodeRequest(kCreate).ValueOrDie()}).ok());
  ASSERT_TRUE(manager->Apply({DecodeRequest(kAppend).ValueOrDie()}).ok());
  ASSERT_TRUE(manager->WaitPublished(2, seconds(60)).ok());

  const fs::path pulled = dir->path() / "laptop" / "sales.duckdb";
  fs::create_directories(pulled.parent_path());
  std::ostringstream said;
  Status status = RunPull({.archive_url = url, .model = "sales", .output = pulled}, said);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_NE(said.str().find("version 2"), std::string::npos) << said.str();
  auto db = DuckDatabase::Open({.path = pulled.string(), .read_only = true}).ValueOrDie();
  auto rows = db->Connect().ValueOrDie()->QueryTable("SELECT count(*) FROM orders").ValueOrDie();
  EXPECT_EQ(rows->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");

  // A checksum that does not match: refused, nothing written.
  const fs::path wrong = dir->path() / "wrong.sha256";
  std::ofstream(wrong) << std::string(64, '0') << "  version.duckdb\n";
  auto archive = Archive::Open(url).ValueOrDie();
  ASSERT_TRUE(archive->PutFile("sales", 2, "version.duckdb.sha256", wrong).ok());
  const fs::path second = dir->path() / "laptop" / "again.duckdb";
  status = RunPull({.archive_url = url, .model = "sales", .version = 2, .output = second}, said);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("does not match its checksum"), std::string::npos)
      << status.ToString();
  // Nothing beside the first pull's file: neither the output nor a temporary.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(pulled.parent_path())) {
    left.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(left, std::vector<std::string>{"sales.duckdb"});
  // A version that was never archived.
  status = RunPull({.archive_url = url, .model = "sales", .version = 9, .output = second}, said);
  EXPECT_TRUE(status.IsKeyError()) << status.ToString();
}

}  // namespace
}  // namespace teatree
