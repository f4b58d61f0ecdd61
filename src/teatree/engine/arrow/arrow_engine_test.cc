// The two engines take the same requests and answer the same queries: each batch below goes
// to a DuckDB-engine model and to an Arrow-engine model, and their outcomes, versions and
// query results must agree. The Arrow engine runs twice: reading Parquet only, and with hot
// copies of every file in place before each batch.
#include "teatree/engine/arrow/arrow_engine.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "teatree/common/temp_dir.h"
#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/engine/arrow/version_reads.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/engine/duckdb/duckdb_reader.h"
#include "teatree/functions/function_registry.h"
#include "teatree/request/codec.h"

namespace teatree {
namespace {

/// Runs the registered function `name` inside another native function.
Result<std::shared_ptr<arrow::Table>> RunNamed(FunctionContext& context, const std::string& name,
                                               const nlohmann::json& args) {
  static const FunctionRegistry builtins = FunctionRegistry::WithBuiltins();
  ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, builtins.Lookup(name));
  ARROW_ASSIGN_OR_RAISE(auto bound, BindArguments(*function, args));
  struct Forward final : FunctionContext {
    Forward(FunctionContext& outer, nlohmann::json args)
        : FunctionContext(std::move(args), outer.steps()), outer(outer) {}
    std::vector<std::string> Tables() const override { return outer.Tables(); }
    Result<std::shared_ptr<arrow::dataset::Dataset>> Table(const std::string& table) override {
      return outer.Table(table);
    }
    FunctionContext& outer;
  } forward(context, bound);
  return function->native(forward);
}

/// The parameter: whether the Arrow engine keeps hot copies.
class EnginesTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-engines-test-").ValueOrDie();
    std::filesystem::create_directories(dir_->path() / "input");
    duck_ = DuckEngine::Open(Options("duck")).ValueOrDie();
    ReopenArrow();
  }

  EngineOptions Options(const std::string& name) {
    return {.model_dir = dir_->path() / name,
            .model = "sales",
            .input_dirs = {dir_->path() / "input"},
            .functions = &functions_,
            .hot_bytes = GetParam() ? int64_t{1} << 30 : 0};
  }

  /// The Arrow model's hot copies.
  int HotCopies() const {
    int count = 0;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(dir_->path() / "arrow" / "datasets")) {
      count += entry.path().extension() == ".arrow";
    }
    return count;
  }

  void ReopenArrow() {
    arrow_.reset();
    arrow_ = ArrowEngine::Open(Options("arrow")).ValueOrDie();
  }

  /// Applies the batch to both engines; expects the same statuses, versions and rows.
  std::vector<RequestOutcome> Apply(const std::vector<std::string>& lines) {
    std::vector<Request> batch;
    for (const auto& line : lines) batch.push_back(DecodeRequest(line).ValueOrDie());
    auto duck = duck_->ApplyBatch(batch).ValueOrDie();
    auto arrow = arrow_->ApplyBatch(batch).ValueOrDie();
    arrow_->WaitForBackgroundWork();  // What comes next reads the hot copies, if any.
    EXPECT_EQ(arrow.version, duck.version);
    EXPECT_EQ(arrow.new_version, duck.new_version);
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& d = duck.outcomes[i];
      const auto& a = arrow.outcomes[i];
      EXPECT_EQ(a.status, d.status)
          << lines[i] << "\nduckdb: " << d.error << "\narrow: " << a.error;
      EXPECT_EQ(a.version, d.version) << lines[i];
      EXPECT_EQ(a.rows, d.rows) << lines[i];
      EXPECT_EQ(a.duplicate, d.duplicate) << lines[i];
      if (d.result && a.result) {
        EXPECT_TRUE(a.result->Equals(*d.result)) << lines[i];
      }
    }
    return arrow.outcomes;
  }

  void ExpectSameRows(const std::string& sql) {
    auto duck = duck_->Query(sql).ValueOrDie();
    auto arrow = arrow_->Query(sql).ValueOrDie();
    EXPECT_TRUE(arrow->Equals(*duck)) << sql << "\narrow:\n"
                                      << arrow->ToString() << "duckdb:\n"
                                      << duck->ToString();
  }

  /// The result of `line` (an invoke or query) on each engine, sorted by every column.
  std::pair<std::shared_ptr<arrow::Table>, std::shared_ptr<arrow::Table>> Results(
      const std::string& line) {
    std::vector<Request> batch = {DecodeRequest(line).ValueOrDie()};
    auto duck = duck_->ApplyBatch(batch).ValueOrDie().outcomes[0];
    auto arrow = arrow_->ApplyBatch(batch).ValueOrDie().outcomes[0];
    EXPECT_TRUE(duck.applied()) << duck.error;
    EXPECT_TRUE(arrow.applied()) << arrow.error;
    return {Sorted(duck.result), Sorted(arrow.result)};
  }

  static std::shared_ptr<arrow::Table> Sorted(const std::shared_ptr<arrow::Table>& table) {
    if (!table) return nullptr;
    std::vector<arrow::compute::SortKey> keys;
    for (int i = 0; i < table->num_columns(); ++i) {
      if (table->column(i)->type()->id() == arrow::Type::LIST) continue;
      keys.emplace_back(arrow::FieldRef(i), arrow::compute::SortOrder::Ascending,
                        arrow::compute::NullPlacement::AtEnd);
    }
    auto order = arrow::compute::SortIndices(arrow::Datum(table), arrow::compute::SortOptions(keys))
                     .ValueOrDie();
    return arrow::compute::Take(table, order).ValueOrDie().table()->CombineChunks().ValueOrDie();
  }

  /// Expects `native` (a function result on each engine) to equal `sql` run by DuckDB.
  void ExpectSameAsSql(const std::string& invoke, const std::string& sql) {
    auto [duck, arrow] = Results(invoke);
    auto expected = Sorted(duck_->Query(sql).ValueOrDie());
    ASSERT_TRUE(duck && arrow);
    EXPECT_TRUE(duck->Equals(*expected)) << invoke << "\nnative on duckdb:\n"
                                         << duck->ToString() << "sql:\n"
                                         << expected->ToString();
    EXPECT_TRUE(arrow->Equals(*expected)) << invoke << "\nnative on arrow:\n"
                                          << arrow->ToString() << "sql:\n"
                                          << expected->ToString();
  }

  FunctionRegistry functions_ = FunctionRegistry::WithBuiltins();
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<DuckEngine> duck_;
  std::unique_ptr<ArrowEngine> arrow_;
};

const char* kCreate =
    R"({"request_id":"c1","model":"sales","op":"create_table","table":"orders","schema":[)"
    R"j({"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(12,2)"},)j"
    R"({"name":"stamp","type":"TIMESTAMPTZ"},{"name":"tags","type":"VARCHAR[]"}],)"
    R"("primary_key":["id"]})";

TEST_P(EnginesTest, CreateAppendAndQueryAgreeAcrossEngines) {
  Apply({kCreate});
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
       R"([1,"12.50","2026-01-02T03:04:05+02:00",["a","b"]],[2,null,null,null]]})",
       R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[)"
       R"([3,"0.01","2026-06-30T23:59:59Z",[]]]})",
       R"({"request_id":"q1","model":"sales","op":"query","sql":"SELECT count(*) AS n FROM orders"})"});
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  ExpectSameRows("SELECT sum(amount) AS total, max(stamp) AS last FROM orders");
  EXPECT_EQ(HotCopies(), GetParam() ? 1 : 0) << "one file, the batch's appends";
  // Bad input is refused the same way and changes nothing.
  auto refused = Apply({
      R"({"request_id":"b1","model":"sales","op":"append","table":"nope","rows":[[1,"1",null,null]]})",
      R"({"request_id":"b2","model":"sales","op":"append","table":"orders","rows":[[3,"5.00",null,null]]})",
      R"({"request_id":"b3","model":"sales","op":"append","table":"orders","rows":[[9,"x",null,null]]})",
      R"({"request_id":"b4","model":"sales","op":"append","table":"orders","rows":[[7,"1",null,null],[7,"2",null,null]]})",
      R"({"request_id":"b5","model":"sales","op":"create_table","table":"orders","schema":[{"name":"x","type":"INTEGER"}]})",
  });
  EXPECT_NE(refused[1].error.find("duplicate key \"3\""), std::string::npos) << refused[1].error;
  EXPECT_NE(refused[3].error.find("duplicate key \"7\""), std::string::npos) << refused[3].error;
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
}

TEST_P(EnginesTest, DeleteByPredicateAgreesAcrossEngines) {
  Apply({kCreate});
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
       R"([1,"12.50",null,null],[2,null,null,null],[3,"0.01",null,["x"]]]})",
       R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[[4,"7.00",null,null]]})"});
  auto deleted = Apply({
      R"({"request_id":"d1","model":"sales","op":"delete","table":"orders",)"
      R"("where":{"call":"greater","args":[{"field":"amount"},{"literal":5}]}})",
      R"({"request_id":"d2","model":"sales","op":"delete","table":"orders",)"
      R"("where":{"call":"equal","args":[{"field":"id"},{"literal":99}]}})",
      R"({"request_id":"d3","model":"sales","op":"delete","table":"orders",)"
      R"("where":{"call":"greater","args":[{"field":"nope"},{"literal":5}]}})",
  });
  EXPECT_EQ(deleted[0].rows, 2);  // 12.50 and 7.00; the NULL amount stays.
  EXPECT_EQ(deleted[1].rows, 0);
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  Apply(
      {R"({"request_id":"d4","model":"sales","op":"delete","table":"orders","where":{"literal":true}})"});
  ExpectSameRows("SELECT count(*) AS n FROM orders");
}

TEST_P(EnginesTest, UpdateAgreesAcrossEngines) {
  Apply({kCreate});
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
       R"([1,"12.50",null,null],[2,null,null,null],[3,"0.01",null,["x"]]]})",
       R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[[4,"7.00",null,null]]})"});
  Apply({
      R"({"request_id":"u1","model":"sales","op":"update","table":"orders",)"
      R"("set":{"amount":{"call":"multiply","args":[{"field":"amount"},{"literal":2}]}},)"
      R"("where":{"call":"greater","args":[{"field":"amount"},{"literal":5}]}})",
      R"({"request_id":"u2","model":"sales","op":"update","table":"orders",)"
      R"("set":{"stamp":{"literal":"2026-03-01T12:00:00Z"},"tags":{"literal":null}},)"
      R"("where":{"call":"equal","args":[{"field":"id"},{"literal":3}]}})",
      R"({"request_id":"u3","model":"sales","op":"update","table":"orders",)"
      R"("set":{"amount":{"literal":"1.25"}},"where":{"call":"is_null","args":[{"field":"amount"}]}})",
      R"({"request_id":"u4","model":"sales","op":"update","table":"orders",)"
      R"("set":{"amount":{"literal":"9"}},"where":{"call":"equal","args":[{"field":"id"},{"literal":99}]}})",
      R"({"request_id":"u5","model":"sales","op":"update","table":"orders","set":{"nope":{"literal":1}}})",
  });
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  Apply({R"({"request_id":"u6","model":"sales","op":"update","table":"orders",)"
         R"("set":{"amount":{"call":"add","args":[{"field":"amount"},{"literal":1}]}}})"});
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
}

TEST_P(EnginesTest, KeysOfSeveralColumnsAndNullKeysAgreeAcrossEngines) {
  Apply(
      {R"({"request_id":"c2","model":"sales","op":"create_table","table":"stock","schema":[)"
       R"({"name":"shop","type":"VARCHAR"},{"name":"day","type":"DATE"},{"name":"n","type":"INTEGER"}],)"
       R"("primary_key":["shop","day"]})"});
  auto outcomes = Apply({
      R"({"request_id":"k1","model":"sales","op":"append","table":"stock","rows":[["a","2026-01-01",1],["a","2026-01-02",2],["b","2026-01-01",3]]})",
      R"({"request_id":"k2","model":"sales","op":"append","table":"stock","rows":[["b","2026-01-01",4]]})",
      R"({"request_id":"k3","model":"sales","op":"append","table":"stock","rows":[[null,"2026-01-01",5]]})",
      R"({"request_id":"k4","model":"sales","op":"append","table":"stock","rows":[["c","2026-01-01",6],["c","2026-01-01",7]]})",
  });
  EXPECT_NE(outcomes[1].error.find("duplicate key \"b, 2026-01-01\""), std::string::npos)
      << outcomes[1].error;
  Apply(
      {R"({"request_id":"k5","model":"sales","op":"append","table":"stock","rows":[["a","2026-01-01",8]]})",
       R"({"request_id":"k6","model":"sales","op":"append","table":"stock","rows":[["a","2026-01-03",9]]})",
       R"({"request_id":"k7","model":"sales","op":"upsert","table":"stock","rows":[["a","2026-01-02",10],["d","2026-01-02",11]]})"});
  ExpectSameRows("SELECT * FROM stock ORDER BY shop, day");
}

TEST_P(EnginesTest, UpsertsAndKeyUpdatesAgreeAcrossEngines) {
  Apply(
      {kCreate,
       R"({"request_id":"n1","model":"sales","op":"create_table","table":"notes","schema":[{"name":"x","type":"INTEGER"}]})",
       R"({"request_id":"k1","model":"sales","op":"create_table","table":"tags","schema":[{"name":"tag","type":"VARCHAR"}],"primary_key":["tag"]})"});
  Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[)"
       R"([1,"12.50",null,null],[2,null,null,["x"]],[3,"0.01",null,null]]})",
       R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[[40,"7.00",null,null]]})",
       R"({"request_id":"t1","model":"sales","op":"append","table":"tags","rows":[["a"],["b"]]})"});
  auto upserted = Apply({
      // An existing key and a new one; the last row of a repeated key wins.
      R"({"request_id":"p1","model":"sales","op":"upsert","table":"orders","rows":[)"
      R"([2,"5.00","2026-02-03T00:00:00Z",null],[5,"1.00",null,["y"]],[2,"6.00",null,["z"]]]})",
      R"({"request_id":"p2","model":"sales","op":"upsert","table":"orders","rows":[[40,null,null,null]]})",
      R"({"request_id":"p3","model":"sales","op":"upsert","table":"notes","rows":[[1]]})",
      R"({"request_id":"p4","model":"sales","op":"upsert","table":"tags","rows":[["b"],["c"]]})",
      R"({"request_id":"p5","model":"sales","op":"upsert","table":"orders","rows":[[null,"1.00",null,null]]})",
      // An append after an upsert in the same batch sees the upserted keys.
      R"({"request_id":"p6","model":"sales","op":"append","table":"orders","rows":[[5,"1.00",null,null]]})",
  });
  EXPECT_EQ(upserted[0].rows, 2);
  EXPECT_NE(upserted[2].error.find("upsert needs a primary key"), std::string::npos);
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  ExpectSameRows("SELECT * FROM tags ORDER BY tag");
  auto key_updates = Apply({
      R"({"request_id":"u1","model":"sales","op":"update","table":"orders",)"
      R"("set":{"id":{"call":"add","args":[{"field":"id"},{"literal":100}]}},)"
      R"("where":{"call":"less","args":[{"field":"id"},{"literal":3}]}})",
      R"({"request_id":"u2","model":"sales","op":"update","table":"orders",)"
      R"("set":{"id":{"literal":3}},"where":{"call":"equal","args":[{"field":"id"},{"literal":40}]}})",
      R"({"request_id":"u3","model":"sales","op":"update","table":"orders",)"
      R"("set":{"id":{"literal":null}},"where":{"call":"equal","args":[{"field":"id"},{"literal":40}]}})",
      R"({"request_id":"u4","model":"sales","op":"update","table":"orders",)"
      R"("set":{"id":{"literal":41}},"where":{"call":"equal","args":[{"field":"id"},{"literal":40}]}})",
  });
  EXPECT_NE(key_updates[0].error.find("cannot change key column"), std::string::npos);
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
}

const char* kShop[] = {
    R"({"request_id":"s1","model":"sales","op":"create_table","table":"sold","schema":[)"
    R"({"name":"id","type":"BIGINT"},{"name":"region","type":"VARCHAR"},{"name":"day","type":"DATE"},)"
    R"({"name":"amount","type":"DOUBLE"}],"primary_key":["id"]})",
    R"({"request_id":"s2","model":"sales","op":"create_table","table":"regions","schema":[)"
    R"({"name":"region","type":"VARCHAR"},{"name":"manager","type":"VARCHAR"}],"primary_key":["region"]})",
    R"({"request_id":"s3","model":"sales","op":"append","table":"sold","rows":[)"
    R"([1,"eu","2026-01-01",1.5],[2,"eu","2026-01-02",2.5],[3,"eu","2026-01-03",null],)"
    R"([4,"eu","2026-01-04",4],[5,"us","2026-01-01",10],[6,"us","2026-01-03",20.5],)"
    R"([7,null,"2026-01-01",7],[8,"apac","2026-01-02",null]]})",
    R"({"request_id":"s4","model":"sales","op":"append","table":"regions","rows":[)"
    R"(["eu","Ana"],["us","Bo"],["latam","Cy"]]})"};

TEST_P(EnginesTest, NativeFunctionsGiveWhatSqlGivesOnBothEngines) {
  Apply({std::begin(kShop), std::end(kShop)});
  ExpectSameAsSql(R"({"request_id":"f1","model":"sales","op":"invoke","function":"rollup",)"
                  R"("args":{"table":"sold","keys":"region, day","value":"amount"}})",
                  "SELECT region, day, count(*) AS rows, sum(amount) AS sum, avg(amount) AS mean, "
                  "min(amount) AS min, max(amount) AS max FROM sold GROUP BY ROLLUP (region, day)");
  ExpectSameAsSql(
      R"({"request_id":"f2","model":"sales","op":"invoke","function":"rolling",)"
      R"("args":{"table":"sold","order_by":"day","value":"amount","window":2,"partition_by":"region"}})",
      "SELECT region, day, amount, sum(amount) OVER w AS rolling_sum, avg(amount) OVER w AS "
      "rolling_mean FROM sold WINDOW w AS (PARTITION BY region ORDER BY day ROWS BETWEEN 1 "
      "PRECEDING AND CURRENT ROW)");
  ExpectSameAsSql(R"({"request_id":"f3","model":"sales","op":"invoke","function":"enrich",)"
                  R"("args":{"table":"sold","lookup":"regions","on":"region"}})",
                  "SELECT s.*, r.manager FROM sold s LEFT JOIN regions r USING (region)");
  // scan pushes its columns and predicate into the dataset scan; the predicate is the
  // codec's expression, as JSON or as its text.
  ExpectSameAsSql(
      R"({"request_id":"f9","model":"sales","op":"invoke","function":"scan","args":{"table":"sold",)"
      R"("columns":"amount, id","where":{"call":"and","args":[)"
      R"({"call":"greater_equal","args":[{"field":"day"},{"literal":"2026-01-02"}]},)"
      R"({"call":"not_equal","args":[{"field":"region"},{"literal":"us"}]}]}}})",
      "SELECT amount, id FROM sold WHERE day >= DATE '2026-01-02' AND region <> 'us'");
  ExpectSameAsSql(
      R"({"request_id":"f10","model":"sales","op":"invoke","function":"scan","args":{"table":"sold",)"
      R"("where":"{\"call\":\"is_null\",\"args\":[{\"field\":\"amount\"}]}"}})",
      "SELECT * FROM sold WHERE amount IS NULL");
  ExpectSameAsSql(
      R"({"request_id":"f11","model":"sales","op":"invoke","function":"scan","args":{"table":"regions"}})",
      "SELECT * FROM regions");
  // SQL functions run on the Arrow engine too.
  ExpectSameAsSql(R"({"request_id":"f4","model":"sales","op":"invoke","function":"row_counts"})",
                  "SELECT 'regions' AS \"table\", 3::BIGINT AS \"rows\" UNION ALL "
                  "SELECT 'sold', 8");
  // Bad arguments are refused alike.
  auto refused = Apply({
      R"({"request_id":"f5","model":"sales","op":"invoke","function":"rollup","args":{"table":"sold","keys":"nope","value":"amount"}})",
      R"({"request_id":"f6","model":"sales","op":"invoke","function":"rollup","args":{"table":"gone","keys":"region","value":"amount"}})",
      R"({"request_id":"f7","model":"sales","op":"invoke","function":"rolling","args":{"table":"sold","order_by":"day","value":"amount","window":0}})",
      R"({"request_id":"f8","model":"sales","op":"invoke","function":"missing"})",
      R"({"request_id":"f12","model":"sales","op":"invoke","function":"scan","args":{"table":"sold","where":"amount > 1"}})",
      R"({"request_id":"f13","model":"sales","op":"invoke","function":"scan","args":{"table":"sold","where":{"field":"amount"}}})",
      R"({"request_id":"f14","model":"sales","op":"invoke","function":"scan","args":{"table":"sold","where":{"call":"equal","args":[{"field":"nope"},{"literal":1}]}}})",
  });
  EXPECT_NE(refused[4].error.find("where is not JSON"), std::string::npos) << refused[4].error;
  EXPECT_FALSE(refused[5].error.empty());
  EXPECT_NE(refused[6].error.find("nope"), std::string::npos) << refused[6].error;
  EXPECT_NE(refused[0].error.find("table sold has no column nope"), std::string::npos)
      << refused[0].error;
  EXPECT_NE(refused[3].error.find("is not registered"), std::string::npos);
  // The read path runs native functions too, on both engines, with the same result.
  const ReadRequest read{.function = "rollup",
                         .args = {{"table", "sold"}, {"keys", "region"}, {"value", "amount"}}};
  auto from_duck = duck_->LiveReader().ValueOrDie()->Read(read).ValueOrDie();
  auto from_arrow = arrow_->LiveReader().ValueOrDie()->Read(read).ValueOrDie();
  EXPECT_EQ(from_arrow.version, from_duck.version);
  auto duck_rows = Sorted(from_duck.reader->ToTable().ValueOrDie());
  auto arrow_rows = Sorted(from_arrow.reader->ToTable().ValueOrDie());
  EXPECT_TRUE(arrow_rows->Equals(*duck_rows)) << arrow_rows->ToString() << duck_rows->ToString();
  EXPECT_EQ(arrow_rows->num_rows(), 5);  // eu, us, apac, NULL, and the total.
}

TEST_P(EnginesTest, FunctionsThatWriteTablesAgreeAcrossEngines) {
  ASSERT_TRUE(
      functions_
          .Register({.name = "region_totals",
                     .native =
                         [](FunctionContext& context) {
                           return RunNamed(
                               context, "rollup",
                               {{"table", "sold"}, {"keys", "region"}, {"value", "amount"}});
                         },
                     .write = FunctionWrite{"totals", true}})
          .ok());
  ASSERT_TRUE(functions_
                  .LoadJson(nlohmann::json::parse(R"({"functions":[{"name":"keep_big","sql":
                    "SELECT * FROM sold WHERE amount > 5","write":{"table":"big","mode":"append"}}]})"),
                            "test")
                  .ok());
  duck_ = DuckEngine::Open(Options("duck")).ValueOrDie();
  ReopenArrow();
  Apply({std::begin(kShop), std::end(kShop)});
  Apply({R"({"request_id":"w1","model":"sales","op":"invoke","function":"region_totals"})",
         R"({"request_id":"w2","model":"sales","op":"invoke","function":"keep_big"})",
         R"({"request_id":"w3","model":"sales","op":"invoke","function":"keep_big"})"});
  ExpectSameRows("SELECT * FROM totals ORDER BY region NULLS LAST");
  ExpectSameRows("SELECT * FROM big ORDER BY id");
  EXPECT_EQ(arrow_->Tables().ValueOrDie(), duck_->Tables().ValueOrDie());
}

TEST_P(EnginesTest, PluginFunctionsRunOnBothEngines) {
  ASSERT_TRUE(functions_.LoadPlugin(TEATREE_SAMPLE_PLUGIN).ok());
  Apply({std::begin(kShop), std::end(kShop)});
  ExpectSameAsSql(
      R"({"request_id":"p1","model":"sales","op":"invoke","function":"share_of_total",)"
      R"("args":{"table":"sold","keys":"region","value":"amount"}})",
      "SELECT region, sum(amount) AS sum, sum(amount) / (SELECT sum(amount) FROM sold) AS share "
      "FROM sold GROUP BY region");
  // The same plugin twice, one for another ABI, and no library at all: each refused clearly.
  EXPECT_NE(functions_.LoadPlugin(TEATREE_SAMPLE_PLUGIN).message().find("registered twice"),
            std::string::npos);
  EXPECT_NE(functions_.LoadPlugin(TEATREE_OTHER_ABI_PLUGIN).message().find("ABI version 999"),
            std::string::npos);
  EXPECT_NE(functions_.LoadPlugin("/nonexistent/libx.so").message().find("cannot load plugin"),
            std::string::npos);
}

TEST_P(EnginesTest, EmptyTablesAgreeAcrossEngines) {
  Apply({kCreate, kShop[1]});
  auto outcomes = Apply({
      R"({"request_id":"e1","model":"sales","op":"query","sql":"SELECT count(*) AS n, sum(amount) AS s FROM orders"})",
      R"({"request_id":"e2","model":"sales","op":"delete","table":"orders","where":{"literal":true}})",
      R"({"request_id":"e3","model":"sales","op":"update","table":"orders","set":{"amount":{"literal":"1"}}})",
      R"({"request_id":"e4","model":"sales","op":"upsert","table":"regions","rows":[["eu","Ana"]]})",
      R"({"request_id":"e5","model":"sales","op":"delete","table":"regions","where":{"literal":true}})",
  });
  EXPECT_EQ(outcomes[1].rows, 0);
  ExpectSameRows("SELECT * FROM orders");
  ExpectSameRows("SELECT * FROM regions");
  ExpectSameAsSql(
      R"({"request_id":"e6","model":"sales","op":"invoke","function":"rollup",)"
      R"("args":{"table":"orders","keys":"id","value":"amount"}})",
      "SELECT id, count(*) AS rows, sum(amount) AS sum, avg(amount) AS mean, min(amount) AS min, "
      "max(amount) AS max FROM orders GROUP BY ROLLUP (id)");
}

std::string AppendLine(int id) {
  return R"({"request_id":"s)" + std::to_string(id) +
         R"(","model":"sales","op":"append","table":"orders","rows":[[)" + std::to_string(id) +
         R"(,"1.00",null,null]]})";
}

TEST_P(EnginesTest, SmallAppendsKeepTheFileCountBounded) {
  Apply({kCreate});
  int id = 0;
  // Read from the newest manifest (opening a ManifestStore would clean up the worker's
  // file in progress).
  auto newest = [&] {
    std::ifstream in(dir_->path() / "arrow" / "manifests" /
                     ("v" + std::to_string(arrow_->version()) + ".json"));
    return Manifest::FromJson(nlohmann::json::parse(in)).ValueOrDie().tables.at("orders");
  };
  auto files = [&] { return newest().files.size(); };
  // The worker merges off the writer's path and a later batch publishes the merge: keep
  // appending (bounded) until it has.
  size_t most = 0;
  for (int batch = 0; batch < 60 || (files() > 16 && batch < 600); ++batch) {
    std::vector<std::string> lines;
    for (int i = 0; i < 4; ++i) lines.push_back(AppendLine(id++));
    // A key appended earlier in the same batch is a duplicate too.
    lines.push_back(R"({"request_id":"dup)" + std::to_string(batch) +
                    R"(","model":"sales","op":"append","table":"orders","rows":[[)" +
                    std::to_string(id - 1) + R"(,"2.00",null,null]]})");
    auto outcomes = Apply(lines);
    EXPECT_NE(outcomes.back().error.find("duplicate key"), std::string::npos);
    most = std::max(most, files());
    if (batch >= 60) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ExpectSameRows("SELECT count(*) AS n, sum(amount) AS total FROM orders");
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  EXPECT_LE(files(), 16u) << "small appends, merged as they come";
  EXPECT_LT(most, static_cast<size_t>(id / 4)) << "merges happened along the way";
  EXPECT_EQ(newest().rows(), id);
}

TEST_P(EnginesTest, EachRequestAppliesOnceAcrossBatchesAndRestarts) {
  const std::string append =
      R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,"1.00",null,null]]})";
  Apply({kCreate, append, append});  // The repeat within the batch is a duplicate.
  ReopenArrow();
  auto again = Apply({append});
  EXPECT_TRUE(again[0].duplicate);
  auto reused = Apply(
      {R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[2,"2.00",null,null]]})"});
  EXPECT_NE(reused[0].error.find("was already used for a different request"), std::string::npos);
  ExpectSameRows("SELECT * FROM orders ORDER BY id");
  EXPECT_EQ(arrow_->version(), duck_->version());
  EXPECT_EQ(arrow_->Tables().ValueOrDie(), duck_->Tables().ValueOrDie());
}

TEST_P(EnginesTest, AnArrowVersionShipsAsADuckDbFile) {
  Apply(
      {kCreate,
       R"({"request_id":"a1","model":"sales","op":"append","table":"orders","rows":[[1,"1.00",null,["x"]]]})"});
  auto snapshot = arrow_->PrepareSnapshot().ValueOrDie();
  // Where the publisher puts it: a linked file, views over the model's Parquet files.
  const auto target =
      dir_->path() / "arrow" / "versions" / ("v" + std::to_string(snapshot.version) + ".duckdb");
  std::filesystem::create_directories(target.parent_path());
  ASSERT_TRUE(arrow_->WriteVersionFile(snapshot, target).ok());
  EXPECT_EQ(DuckEngine::ReadFileVersion(target).ValueOrDie(), snapshot.version);
  const std::string views = "SELECT count(*) AS n FROM duckdb_views() WHERE NOT internal";
  auto file = DuckReader::OpenFile(target, {}).ValueOrDie();
  auto rows =
      file->Read({.sql = "SELECT * FROM orders"}).ValueOrDie().reader->ToTable().ValueOrDie();
  EXPECT_TRUE(rows->Equals(*arrow_->Query("SELECT * FROM orders").ValueOrDie()));
  auto read_views = [&](const std::filesystem::path& path) {
    auto db = DuckDatabase::Open({.path = path.string(), .read_only = true}).ValueOrDie();
    auto count = db->Connect().ValueOrDie()->QueryTable(views).ValueOrDie();
    return count->column(0)->GetScalar(0).ValueOrDie()->ToString();
  };
  EXPECT_EQ(read_views(target), "1");
  // What leaves the machine is an export: tables, not views, and the same rows.
  auto shipped = ShippableVersionFile(target).ValueOrDie();
  ASSERT_TRUE(shipped.temporary);
  const auto laptop = dir_->path() / "laptop.duckdb";
  std::filesystem::rename(shipped.path, laptop);
  EXPECT_EQ(read_views(laptop), "0");
  EXPECT_EQ(DuckEngine::ReadFileVersion(laptop).ValueOrDie(), snapshot.version);
  auto copy = DuckReader::OpenFile(laptop, {}).ValueOrDie();
  EXPECT_TRUE(copy->Read({.sql = "SELECT * FROM orders"})
                  .ValueOrDie()
                  .reader->ToTable()
                  .ValueOrDie()
                  ->Equals(*rows));
}

TEST_P(EnginesTest, AttachmentsAgreeAcrossEnginesAndSurviveRestarts) {
  const auto input = dir_->path() / "input";
  {
    auto db = DuckDatabase::Open({.path = (input / "regions.duckdb").string()}).ValueOrDie();
    ASSERT_TRUE(db->Connect()
                    .ValueOrDie()
                    ->Execute("CREATE TABLE regions AS SELECT 'eu' AS code, 'Europe' AS name")
                    .ok());
  }
  std::ofstream(input / "junk.duckdb") << "not a database";
  auto outcomes = Apply({
      kCreate,
      R"({"request_id":"t1","model":"sales","op":"attach","name":"ref","path":"regions.duckdb"})",
      R"({"request_id":"t2","model":"sales","op":"attach","name":"junk","path":"junk.duckdb"})",
  });
  EXPECT_EQ(outcomes[1].status, "applied") << outcomes[1].error;
  EXPECT_NE(outcomes[2].error.find("not a readable DuckDB file"), std::string::npos);
  outcomes = Apply({
      R"({"request_id":"t3","model":"sales","op":"attach","name":"ref","path":"regions.duckdb"})",
      R"({"request_id":"t4","model":"sales","op":"query","sql":"SELECT name FROM ref.regions"})",
  });
  EXPECT_NE(outcomes[0].error.find("already exists"), std::string::npos);
  EXPECT_EQ(outcomes[1].rows, 1);
  ExpectSameRows("SELECT * FROM ref.regions");
  ReopenArrow();
  ExpectSameRows("SELECT * FROM ref.regions");
}

INSTANTIATE_TEST_SUITE_P(Storage, EnginesTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "HotCopies" : "ParquetOnly";
                         });

}  // namespace
}  // namespace teatree
