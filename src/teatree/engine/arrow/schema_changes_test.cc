// drop_table and alter_table on both engines: each batch goes to a DuckDB-engine model and to
// an Arrow-engine model, whose outcomes, versions, schemas and rows must agree. The Arrow engine
// runs twice: reading Parquet only, and with hot copies of its files.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/arrow/arrow_engine.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

class SchemaChangesTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-schema-changes-test-").ValueOrDie();
    Reopen();
  }

  EngineOptions Options(const std::string& name) {
    return {.model_dir = dir_->path() / name,
            .model = "sales",
            .input_dirs = {dir_->path() / "input"},
            .hot_bytes = GetParam() ? int64_t{1} << 30 : 0};
  }

  /// Opens both models again, as a restarted manager would.
  void Reopen() {
    duck_.reset();
    arrow_.reset();
    duck_ = DuckEngine::Open(Options("duck")).ValueOrDie();
    arrow_ = ArrowEngine::Open(Options("arrow")).ValueOrDie();
  }

  std::vector<Engine*> Engines() { return {duck_.get(), arrow_.get()}; }

  /// Applies the batch to both engines; expects the same statuses, errors, versions and rows.
  std::vector<RequestOutcome> Apply(const std::vector<std::string>& lines) {
    std::vector<Request> batch;
    batch.reserve(lines.size());
    for (const auto& line : lines) batch.push_back(DecodeRequest(line).ValueOrDie());
    auto duck = duck_->ApplyBatch(batch).ValueOrDie();
    auto arrow = arrow_->ApplyBatch(batch).ValueOrDie();
    arrow_->WaitForBackgroundWork();
    EXPECT_EQ(arrow.version, duck.version);
    EXPECT_EQ(arrow.new_version, duck.new_version);
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& d = duck.outcomes[i];
      const auto& a = arrow.outcomes[i];
      EXPECT_EQ(a.status, d.status)
          << lines[i] << "\nduckdb: " << d.error << "\narrow: " << a.error;
      if (batch[i].op == Op::kDropTable || batch[i].op == Op::kAlterTable) {
        EXPECT_EQ(a.error, d.error) << lines[i];  // Both engines refuse in the same words.
      }
      EXPECT_EQ(a.version, d.version) << lines[i];
      EXPECT_EQ(a.rows, d.rows) << lines[i];
    }
    return duck.outcomes;
  }

  /// `sql` on both engines: the same rows, and (returned) the DuckDB engine's.
  std::shared_ptr<arrow::Table> ExpectSameRows(const std::string& sql) {
    auto duck = duck_->Query(sql).ValueOrDie();
    auto arrow = arrow_->Query(sql).ValueOrDie();
    EXPECT_TRUE(arrow->Equals(*duck)) << sql << "\narrow:\n"
                                      << arrow->ToString() << "duckdb:\n"
                                      << duck->ToString();
    return duck;
  }

  /// "id: int64, qty: int32, ..." of a table as both engines read it (expected equal).
  std::string Columns(const std::string& table) {
    auto rows = ExpectSameRows("SELECT * FROM " + table + " LIMIT 0");
    std::string text;
    for (const auto& field : rows->schema()->fields()) {
      text += (text.empty() ? "" : ", ") + field->name() + ": " + field->type()->ToString();
    }
    return text;
  }

  /// Writes the committed version of `engine` as the publisher does, at versions/v<N>.duckdb.
  fs::path WriteVersionFile(Engine& engine) {
    auto snapshot = engine.PrepareSnapshot().ValueOrDie();
    const fs::path dir = dir_->path() / (&engine == duck_.get() ? "duck" : "arrow") / "versions";
    fs::create_directories(dir);
    fs::path target = dir / ("v" + std::to_string(snapshot.version) + ".duckdb");
    EXPECT_TRUE(engine.WriteVersionFile(snapshot, target).ok());
    return target;
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<DuckEngine> duck_;
  std::unique_ptr<ArrowEngine> arrow_;
};

std::shared_ptr<arrow::Table> ReadFile(const fs::path& file, const std::string& sql) {
  auto reader = DuckReader::OpenFile(file, {}).ValueOrDie();
  return reader->Read({.sql = sql}).ValueOrDie().reader->ToTable().ValueOrDie();
}

const char* kCreate =
    R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders","schema":[)"
    R"({"name":"id","type":"BIGINT"},{"name":"qty","type":"INTEGER"},)"
    R"j({"name":"price","type":"DECIMAL(12,2)"},{"name":"region","type":"VARCHAR"},)j"
    R"({"name":"tags","type":"INTEGER[]"}],"primary_key":["id"]})";
// Two batches, so the Arrow engine has two files to rewrite.
const char* kAppend1 =
    R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
    R"([1,5,"12.50","eu",[1,2]],[2,null,null,"us",null],[3,2147483647,"9999999999.99","eu",[]]]})";
const char* kAppend2 =
    R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[)"
    R"([4,-2147483648,"-0.01",null,[-7]]]})";
const char* kOrdersColumns =
    "id: int64, qty: int32, price: decimal128(12, 2), region: string, tags: list<l: int32>";

std::string Alter(const std::string& id, const std::string& changes) {
  return R"({"request_id":")" + id + R"(","model":"sales","op":"alter_table","table":"orders",)" +
         R"("changes":)" + changes + "}";
}

TEST_P(SchemaChangesTest, DropTableRemovesTheTableAndItsNameCanBeUsedAgain) {
  Apply({kCreate});
  Apply({kAppend1});
  auto refused = Apply({R"({"request_id":"d0","model":"sales","op":"drop_table","table":"nope"})"});
  EXPECT_EQ(refused[0].error,
            "drop_table: table nope does not exist in model sales (its tables: orders)");
  EXPECT_EQ(duck_->version(), 2) << "a refused drop makes no version";
  auto dropped =
      Apply({R"({"request_id":"d1","model":"sales","op":"drop_table","table":"orders"})",
             R"({"request_id":"d2","model":"sales","op":"drop_table","table":"orders"})"});
  EXPECT_EQ(dropped[0].status, "applied");
  EXPECT_EQ(dropped[1].error,
            "drop_table: table orders does not exist in model sales (it has no tables yet)");
  for (Engine* engine : Engines()) {
    EXPECT_EQ(engine->version(), 3);
    EXPECT_TRUE(engine->Tables().ValueOrDie().empty());
    EXPECT_FALSE(engine->Query("SELECT * FROM orders").ok()) << engine->kind();
  }
  auto append = Apply({kAppend2});
  EXPECT_EQ(append[0].status, "rejected");
  // The name again, another schema; in one batch a table is dropped and made again.
  Apply(
      {R"({"request_id":"c2","model":"sales","op":"create_table","table":"orders","schema":[)"
       R"({"name":"code","type":"VARCHAR"},{"name":"day","type":"DATE"}],"primary_key":["code"]})",
       R"({"request_id":"a3","model":"sales","op":"append","table":"orders","rows":[["x","2026-01-02"]]})"});
  EXPECT_EQ(Columns("orders"), "code: string, day: date32[day]");
  Apply({R"({"request_id":"d3","model":"sales","op":"drop_table","table":"orders"})",
         R"({"request_id":"c3","model":"sales","op":"create_table","table":"orders","schema":[)"
         R"({"name":"n","type":"INTEGER"}]})",
         R"({"request_id":"a4","model":"sales","op":"append","table":"orders","rows":[[7]]})"});
  EXPECT_EQ(Columns("orders"), "n: int32");
  EXPECT_EQ(ExpectSameRows("SELECT * FROM orders")->num_rows(), 1);
  Reopen();
  EXPECT_EQ(ExpectSameRows("SELECT * FROM orders")->num_rows(), 1);
  EXPECT_EQ(arrow_->Tables().ValueOrDie(), duck_->Tables().ValueOrDie());
}

TEST_P(SchemaChangesTest, EachColumnChangeKeepsTheRows) {
  Apply({kCreate});
  Apply({kAppend1});
  Apply({kAppend2});
  const auto before = ExpectSameRows("SELECT * FROM orders ORDER BY id");
  EXPECT_EQ(Columns("orders"), kOrdersColumns);

  Apply({Alter("x1", R"([{"add_column":"note","type":"VARCHAR"}])")});
  EXPECT_EQ(Columns("orders"), std::string(kOrdersColumns) + ", note: string");
  EXPECT_EQ(ExpectSameRows("SELECT count(*) AS n FROM orders WHERE note IS NULL")->ToString(),
            ExpectSameRows("SELECT count(*) AS n FROM orders")->ToString());

  Apply({Alter("x2", R"([{"rename_column":"qty","to":"quantity"}])")});
  Apply({Alter("x3", R"([{"alter_column":"quantity","type":"BIGINT"},)"
                     R"j({"alter_column":"price","type":"DECIMAL(14,3)"},)j"
                     R"({"alter_column":"tags","type":"BIGINT[]"}])")});
  Apply({Alter("x4", R"([{"drop_column":"region"}])")});
  EXPECT_EQ(Columns("orders"),
            "id: int64, quantity: int64, price: decimal128(14, 3), tags: list<l: int64>, "
            "note: string");
  // Every value is what it was, in its new type.
  auto after = ExpectSameRows(
      "SELECT id, quantity::INTEGER AS qty, price, tags::INTEGER[] AS tags FROM orders ORDER BY "
      "id");
  auto expected = before->RemoveColumn(3).ValueOrDie();  // region
  auto price = arrow::compute::Cast(expected->column(2), arrow::decimal128(14, 3)).ValueOrDie();
  expected =
      expected->SetColumn(2, expected->field(2)->WithType(price.type()), price.chunked_array())
          .ValueOrDie();
  EXPECT_TRUE(after->Equals(*expected)) << after->ToString() << expected->ToString();
  EXPECT_EQ(duck_->version(), 7);

  Reopen();  // The schema is the model's, not the process's.
  EXPECT_EQ(Columns("orders"),
            "id: int64, quantity: int64, price: decimal128(14, 3), tags: list<l: int64>, "
            "note: string");
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
}

TEST_P(SchemaChangesTest, IntegersWidenToDoubleAndDecimal) {
  Apply({kCreate});
  Apply({kAppend1, kAppend2});
  Apply({Alter("x1", R"([{"alter_column":"qty","type":"DOUBLE"}])")});
  EXPECT_NE(Columns("orders").find(", qty: double, "), std::string::npos) << Columns("orders");
  ExpectSameRows("SELECT id, qty FROM orders ORDER BY id");
  Apply({Alter("x2", R"([{"add_column":"n","type":"INTEGER"}])"),
         R"({"request_id":"u1","model":"sales","op":"update","table":"orders",)"
         R"("set":{"n":{"literal":-7}},"where":{"literal":true}})",
         Alter("x3", R"j([{"alter_column":"n","type":"DECIMAL(12,2)"}])j")});
  EXPECT_EQ(ExpectSameRows("SELECT DISTINCT n FROM orders")->ToString(),
            ExpectSameRows("SELECT -7.00::DECIMAL(12,2) AS n")->ToString());
}

// DuckDB cannot commit ALTER TABLE on a table the same transaction updated or deleted from:
// the DuckDB engine rebuilds it then, and the batch still applies as one.
TEST_P(SchemaChangesTest, ChangesAfterUpdatesAndDeletesInOneBatch) {
  Apply({kCreate});
  Apply({kAppend1, kAppend2});
  auto outcomes = Apply({
      (R"({"request_id":"u1","model":"sales","op":"update","table":"orders",)"
       R"("set":{"region":{"literal":"north"}},"where":{"call":"equal","args":[{"field":"id"},{"literal":1}]}})"),
      Alter("x1", R"([{"add_column":"note","type":"VARCHAR"},{"drop_column":"tags"}])"),
      (R"({"request_id":"d1","model":"sales","op":"delete","table":"orders",)"
       R"("where":{"call":"equal","args":[{"field":"id"},{"literal":2}]}})"),
      Alter("x2", R"([{"alter_column":"qty","type":"BIGINT"},{"rename_column":"id","to":"k"}])"),
      R"({"request_id":"p1","model":"sales","op":"upsert","table":"orders","rows":[{"k":3,"note":"up"}]})",
      Alter("x3", R"([{"rename_column":"note","to":"remark"}])"),
      R"({"request_id":"p2","model":"sales","op":"upsert","table":"orders","rows":[{"k":3,"remark":"again"}]})",
      R"({"request_id":"a3","model":"sales","op":"append","table":"orders","rows":[{"k":3}]})",
  });
  for (size_t i = 0; i + 1 < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].status, "applied") << outcomes[i].request_id << ": " << outcomes[i].error;
  }
  EXPECT_NE(outcomes.back().error.find("duplicate key"), std::string::npos)
      << "the rebuilt table keeps its key";
  EXPECT_EQ(duck_->version(), 3);
  EXPECT_EQ(Columns("orders"),
            "k: int64, qty: int64, price: decimal128(12, 2), region: string, remark: string");
  ExpectSameRows("SELECT * FROM orders ORDER BY k");
  Reopen();
  ExpectSameRows("SELECT * FROM orders ORDER BY k");
}

TEST_P(SchemaChangesTest, ARefusedChangeLeavesSchemaAndRowsAsTheyWere) {
  Apply({kCreate});
  Apply({kAppend1, kAppend2});
  const auto rows = ExpectSameRows("SELECT * FROM orders ORDER BY id");
  const int64_t version = duck_->version();
  // Each refused as a whole: its earlier, valid changes are not made either.
  auto refused = Apply({
      Alter("x1",
            R"([{"add_column":"note","type":"VARCHAR"},{"alter_column":"qty","type":"BIGINT"},)"
            R"j({"alter_column":"price","type":"DECIMAL(12,1)"}])j"),
      Alter("x2", R"([{"rename_column":"qty","to":"quantity"},{"drop_column":"qty"}])"),
      Alter("x3", R"([{"drop_column":"id"}])"),
      Alter("x4", R"j([{"alter_column":"id","type":"DECIMAL(20,0)"}])j"),
      Alter("x5", R"([{"add_column":"region","type":"VARCHAR"}])"),
      Alter("x6", R"([{"rename_column":"qty","to":"price"}])"),
      Alter("x7", R"([{"alter_column":"qty","type":"VARCHAR"}])"),
      R"({"request_id":"x8","model":"sales","op":"alter_table","table":"nope","changes":[{"drop_column":"a"}]})",
  });
  for (const auto& outcome : refused) EXPECT_EQ(outcome.status, "rejected") << outcome.request_id;
  EXPECT_NE(refused[0].error.find("change 3 of 3: alter_column: column \"price\" of table orders "
                                  "cannot change from DECIMAL(12,2) to DECIMAL(12,1)"),
            std::string::npos)
      << refused[0].error;
  EXPECT_NE(refused[1].error.find("has no column \"qty\""), std::string::npos);
  EXPECT_NE(refused[2].error.find("part of the primary key"), std::string::npos);
  EXPECT_NE(refused[6].error.find("cannot change from INTEGER to VARCHAR"), std::string::npos);
  EXPECT_EQ(refused[7].error,
            "alter_table: table nope does not exist in model sales (its tables: orders)");
  EXPECT_EQ(duck_->version(), version);
  EXPECT_EQ(arrow_->version(), version);
  EXPECT_EQ(Columns("orders"), kOrdersColumns);
  EXPECT_TRUE(ExpectSameRows("SELECT * FROM orders ORDER BY id")->Equals(*rows));
  // Beside requests that apply, in one batch: the refused one still changes nothing.
  auto mixed = Apply({Alter("y1", R"([{"add_column":"note","type":"VARCHAR"}])"),
                      Alter("y2", R"([{"add_column":"note","type":"VARCHAR"}])"),
                      R"({"request_id":"y3","model":"sales","op":"append","table":"orders",)"
                      R"("rows":[{"id":9,"note":"new"}]})"});
  EXPECT_EQ(mixed[0].status, "applied");
  EXPECT_NE(mixed[1].error.find("already has a column \"note\""), std::string::npos);
  EXPECT_EQ(mixed[2].status, "applied") << mixed[2].error;
  EXPECT_EQ(Columns("orders"), std::string(kOrdersColumns) + ", note: string");
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
}

TEST_P(SchemaChangesTest, WritesUseTheNewSchema) {
  Apply({kCreate});
  Apply({kAppend1, kAppend2});
  Apply({Alter("x1", R"([{"add_column":"note","type":"VARCHAR"},)"
                     R"({"rename_column":"id","to":"order_id"},)"
                     R"({"rename_column":"qty","to":"quantity"}])")});
  auto outcomes = Apply({
      // The key follows the renamed column: upsert replaces by it, append refuses a repeat.
      (R"({"request_id":"w1","model":"sales","op":"upsert","table":"orders","rows":[)"
       R"({"order_id":1,"quantity":6,"note":"again"},{"order_id":5,"note":"new"}]})"),
      R"({"request_id":"w2","model":"sales","op":"append","table":"orders","rows":[{"order_id":5}]})",
      (R"({"request_id":"w3","model":"sales","op":"update","table":"orders",)"
       R"("set":{"note":{"literal":"big"}},"where":{"call":"greater","args":[{"field":"quantity"},{"literal":100}]}})"),
      (R"({"request_id":"w4","model":"sales","op":"delete","table":"orders",)"
       R"("where":{"call":"is_null","args":[{"field":"quantity"}]}})"),
      R"({"request_id":"w5","model":"sales","op":"update","table":"orders","set":{"qty":{"literal":1}}})",
  });
  EXPECT_EQ(outcomes[0].rows, 2);
  EXPECT_NE(outcomes[1].error.find("duplicate key"), std::string::npos) << outcomes[1].error;
  EXPECT_EQ(outcomes[2].rows, 1);  // id 3
  EXPECT_EQ(outcomes[3].rows, 2);  // id 2, and id 5 upserted without a quantity
  EXPECT_EQ(outcomes[4].status, "rejected");
  auto rows = ExpectSameRows("SELECT order_id, quantity, note FROM orders ORDER BY order_id");
  EXPECT_EQ(rows->num_rows(), 3);
  std::string notes;
  for (int64_t i = 0; i < rows->num_rows(); ++i) {
    notes += rows->GetColumnByName("note")->GetScalar(i).ValueOrDie()->ToString() + ";";
  }
  EXPECT_EQ(notes, "again;big;null;");
}

TEST_P(SchemaChangesTest, VersionFilesKeepTheSchemaOfTheirVersion) {
  Apply({kCreate});
  Apply({kAppend1, kAppend2});
  const fs::path duck_before = WriteVersionFile(*duck_);
  const auto rows_before = ExpectSameRows("SELECT * FROM orders ORDER BY id");
  auto before_change = arrow_->PrepareSnapshot().ValueOrDie();
  Apply({Alter("x1", R"([{"add_column":"note","type":"VARCHAR"},{"drop_column":"region"},)"
                     R"({"rename_column":"qty","to":"quantity"},)"
                     R"({"alter_column":"quantity","type":"BIGINT"}])")});
  Apply({R"({"request_id":"a3","model":"sales","op":"append","table":"orders","rows":[)"
         R"({"id":9,"quantity":9000000000,"note":"n"}]})",
         R"({"request_id":"c2","model":"sales","op":"create_table","table":"gone","schema":[)"
         R"({"name":"x","type":"INTEGER"}]})"});
  Apply({R"({"request_id":"d1","model":"sales","op":"drop_table","table":"gone"})"});
  const auto rows_after = ExpectSameRows("SELECT * FROM orders ORDER BY id");
  // The Arrow engine writes an older version's file from its manifest, still kept.
  const fs::path arrow_before = dir_->path() / "arrow" / "versions" / "v2.duckdb";
  fs::create_directories(arrow_before.parent_path());
  ASSERT_TRUE(arrow_->WriteVersionFile(before_change, arrow_before).ok());
  for (const fs::path& file : {duck_before, arrow_before}) {
    auto old = ReadFile(file, "SELECT * FROM orders ORDER BY id");
    EXPECT_TRUE(old->Equals(*rows_before)) << file << "\n" << old->ToString();
  }
  for (Engine* engine : Engines()) {
    const fs::path file = WriteVersionFile(*engine);
    EXPECT_EQ(file.filename(), "v5.duckdb");
    auto read = ReadFile(file, "SELECT * FROM orders ORDER BY id");
    EXPECT_TRUE(read->Equals(*rows_after)) << engine->kind() << "\n" << read->ToString();
    EXPECT_EQ(read->schema()->field(1)->ToString(), "quantity: int64");
    EXPECT_FALSE(
        DuckReader::OpenFile(file, {}).ValueOrDie()->Read({.sql = "SELECT * FROM gone"}).ok());
  }
}

// A dropped table's name must not stay on a live reader's list of the model's tables: DuckDB
// would resolve it to its own catalog view of that name, which shows the server's paths.
TEST_P(SchemaChangesTest, LiveReadsForgetADroppedTable) {
  Apply({R"({"request_id":"c1","model":"sales","op":"create_table","table":"duckdb_databases",)"
         R"("schema":[{"name":"path","type":"VARCHAR"}]})"});
  for (Engine* engine : Engines()) {
    auto reader = engine->LiveReader().ValueOrDie();
    EXPECT_TRUE(reader->Read({.sql = "SELECT path FROM duckdb_databases"}).ok());
  }
  Apply({R"({"request_id":"d1","model":"sales","op":"drop_table","table":"duckdb_databases"})"});
  for (Engine* engine : Engines()) {
    auto reader = engine->LiveReader().ValueOrDie();
    auto read = reader->Read({.sql = "SELECT path FROM duckdb_databases"});
    ASSERT_FALSE(read.ok()) << engine->kind() << ": "
                            << read.ValueOrDie().reader->ToTable().ValueOrDie()->ToString();
    EXPECT_NE(read.status().message().find("there is no table 'duckdb_databases'"),
              std::string::npos)
        << read.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Storage, SchemaChangesTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "HotCopies" : "ParquetOnly";
                         });

}  // namespace
}  // namespace teatree
