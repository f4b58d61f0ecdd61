// The same expression means the same thing on both engines: each expression of the request
// codec, evaluated by Arrow compute (ToArrowExpression) and by DuckDB (ExpressionToSql) on
// the same rows, NULLs included, gives the same values.
#include "teatree/request/arrow_expression.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <gtest/gtest.h>

#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/sql_expression.h"
#include "teatree/request/rows_to_arrow.h"

namespace teatree {
namespace {

namespace cp = arrow::compute;

class ArrowExpressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    table_ = TableSchema::FromJson("t", nlohmann::json::parse(R"j([
        {"name":"id","type":"BIGINT"},{"name":"n","type":"INTEGER"},
        {"name":"amount","type":"DECIMAL(12,2)"},{"name":"price","type":"DOUBLE"},
        {"name":"name","type":"VARCHAR"},{"name":"day","type":"DATE"},
        {"name":"at","type":"TIMESTAMPTZ"},{"name":"flag","type":"BOOLEAN"},
        {"name":"big","type":"DECIMAL(38,20)"}])j"),
                                   nlohmann::json::array({"id"}))
                 .ValueOrDie();
    rows_ = RowsToRecordBatch(nlohmann::json::parse(R"([
        [1, 5, "12.50", 2.5, "a", "2026-01-01", "2026-01-01T10:00:00Z", true, "1.5"],
        [2, -3, "0.01", -1.25, "b", "2026-01-03", "2026-01-02T23:59:59+02:00", false, "-3"],
        [3, null, null, null, null, null, null, null, null],
        [4, 7, "100.00", 0.0, "B", "2026-02-01", "2026-03-01T00:00:00Z", null,
         "-3.00000000000000000001"]])"),
                              table_)
                .ValueOrDie();
  }

  /// Each value of a result as text both engines agree on: numbers as doubles.
  static std::vector<std::string> Normalize(const arrow::Array& result) {
    std::shared_ptr<arrow::Array> values = arrow::MakeArray(result.data());
    const auto id = values->type_id();
    if (arrow::is_numeric(id) || arrow::is_decimal(id)) {
      values = cp::Cast(*values, arrow::float64()).ValueOrDie();
    }
    std::vector<std::string> out;
    for (int64_t i = 0; i < values->length(); ++i) {
      auto scalar = values->GetScalar(i).ValueOrDie();
      out.push_back(scalar->is_valid ? scalar->ToString() : "NULL");
    }
    return out;
  }

  std::vector<std::string> ByArrow(const Expression& expression) {
    auto converted = ToArrowExpression(expression, table_);
    EXPECT_TRUE(converted.ok()) << converted.status().ToString();
    auto bound = converted->Bind(*rows_->schema());
    EXPECT_TRUE(bound.ok()) << expression.ToString() << ": " << bound.status().ToString();
    auto result = cp::ExecuteScalarExpression(*bound, cp::ExecBatch(*rows_));
    EXPECT_TRUE(result.ok()) << expression.ToString() << ": " << result.status().ToString();
    auto array =
        result->is_array()
            ? result->make_array()
            : arrow::MakeArrayFromScalar(*result->scalar(), rows_->num_rows()).ValueOrDie();
    return Normalize(*array);
  }

  std::vector<std::string> ByDuckDb(const Expression& expression) {
    auto db = DuckDatabase::Open({}).ValueOrDie();
    auto connection = db->Connect().ValueOrDie();
    EXPECT_TRUE(connection->Execute("SET TimeZone = 'UTC'").ok());
    std::shared_ptr<arrow::Table> result;
    auto reader = arrow::RecordBatchReader::Make({rows_}).ValueOrDie();
    // Copied whole into a table first: DuckDB 1.4 reads the wrong columns of a registered
    // Arrow stream when a query uses only some of them.
    Status status = connection->WithArrowView("input", reader, [&]() -> Status {
      return connection->Execute("CREATE TABLE t AS SELECT * FROM input");
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
    auto queried = connection->QueryTable("SELECT " + ExpressionToSql(expression, table_) +
                                          " AS v FROM t ORDER BY id");
    status = queried.status();
    if (queried.ok()) result = *queried;
    EXPECT_TRUE(status.ok()) << expression.ToString() << ": " << status.ToString();
    if (!result) return {};
    return Normalize(*result->column(0)->chunk(0));
  }

  TableSchema table_;
  std::shared_ptr<arrow::RecordBatch> rows_;
};

TEST_F(ArrowExpressionTest, EveryFunctionGivesWhatDuckDbGives) {
  const std::vector<std::string> expressions = {
      R"({"field":"amount"})",
      R"({"call":"greater","args":[{"field":"amount"},{"literal":10}]})",
      R"({"call":"equal","args":[{"field":"name"},{"literal":"b"}]})",
      R"({"call":"not_equal","args":[{"field":"n"},{"literal":5}]})",
      R"({"call":"less_equal","args":[{"field":"price"},{"literal":0}]})",
      R"({"call":"greater_equal","args":[{"field":"day"},{"literal":"2026-01-03"}]})",
      R"({"call":"less","args":[{"field":"at"},{"literal":"2026-01-02T00:00:00Z"}]})",
      R"({"call":"greater","args":[{"literal":"2026-01-02"},{"field":"day"}]})",
      R"({"call":"and","args":[{"field":"flag"},{"call":"greater","args":[{"field":"n"},{"literal":1}]}]})",
      R"({"call":"or","args":[{"field":"flag"},{"call":"is_null","args":[{"field":"n"}]}]})",
      R"({"call":"or","args":[{"field":"flag"},{"literal":null}]})",
      R"({"call":"and","args":[{"field":"flag"},{"literal":null}]})",
      R"({"call":"and","args":[{"field":"flag"},{"literal":true},{"call":"is_valid","args":[{"field":"n"}]}]})",
      R"({"call":"or","args":[{"literal":false},{"field":"flag"},{"literal":null},{"call":"is_null","args":[{"field":"n"}]}]})",
      R"({"call":"not","args":[{"field":"flag"}]})",
      R"({"call":"invert","args":[{"field":"flag"}]})",
      R"({"call":"is_valid","args":[{"field":"amount"}]})",
      R"({"call":"add","args":[{"field":"n"},{"literal":2}]})",
      R"({"call":"subtract","args":[{"field":"amount"},{"literal":1}]})",
      R"({"call":"multiply","args":[{"field":"price"},{"literal":1.5}]})",
      R"({"call":"multiply","args":[{"field":"amount"},{"literal":2}]})",
      R"({"call":"divide","args":[{"field":"n"},{"literal":2}]})",
      R"({"call":"divide","args":[{"field":"price"},{"literal":2}]})",
      R"({"call":"negate","args":[{"field":"n"}]})",
      R"({"call":"abs","args":[{"field":"n"}]})",
      R"({"call":"coalesce","args":[{"field":"name"},{"literal":"none"}]})",
      R"({"call":"utf8_upper","args":[{"field":"name"}]})",
      R"({"call":"utf8_lower","args":[{"field":"name"}]})",
      R"({"call":"is_in","args":[{"field":"name"},{"literal":["a","B"]}]})",
      R"({"call":"is_in","args":[{"field":"id"},{"literal":[1,3]}]})",
      R"({"call":"is_in","args":[{"field":"name"},{"literal":["a",null]}]})",
      R"({"call":"is_in","args":[{"field":"n"},{"literal":[]}]})",
      R"({"call":"is_in","args":[{"field":"id"},{"literal":[1,2.5]}]})",
      R"({"call":"is_in","args":[{"field":"amount"},{"literal":[12.5,0.5]}]})",
      // DECIMAL(24,4) * DECIMAL(24,4): 38 digits for both engines, where Arrow's own
      // decimal128 kernel would want 49.
      R"({"call":"multiply","args":[{"call":"multiply","args":[{"field":"amount"},)"
      R"({"field":"amount"}]},{"call":"multiply","args":[{"field":"amount"},{"field":"amount"}]}]})",
      R"({"call":"coalesce","args":[{"field":"amount"},{"literal":0}]})",
      R"({"call":"if_else","args":[{"call":"greater","args":[{"field":"price"},{"literal":0}]},)"
      R"({"field":"amount"},{"literal":null}]})",
      R"({"call":"if_else","args":[{"field":"flag"},{"field":"n"},{"literal":0}]})",
      // DECIMAL(38,20) beside an integer or a DECIMAL(12,2): a common type of 39 digits and
      // more, which Arrow compares in decimal256.
      R"({"call":"not_equal","args":[{"field":"big"},{"literal":-3}]})",
      R"({"call":"less","args":[{"field":"big"},{"field":"id"}]})",
      R"({"call":"greater_equal","args":[{"field":"n"},{"field":"big"}]})",
      R"({"call":"equal","args":[{"field":"big"},{"field":"amount"}]})",
  };
  for (const auto& json : expressions) {
    auto expression = ParseExpression(nlohmann::json::parse(json));
    ASSERT_TRUE(expression.ok()) << json << ": " << expression.status().ToString();
    ASSERT_TRUE(CheckExpression(*expression, table_).ok() ||
                CheckPredicate(*expression, table_).ok())
        << json;
    EXPECT_EQ(ByArrow(*expression), ByDuckDb(*expression)) << json;
  }
}

TEST_F(ArrowExpressionTest, OverflowIsAnErrorAsInDuckDb) {
  auto expression =
      ParseExpression(nlohmann::json::parse(R"({"call":"multiply","args":[{"field":"id"},)"
                                            R"({"literal":9223372036854775807}]})"))
          .ValueOrDie();
  auto bound = ToArrowExpression(expression, table_).ValueOrDie().Bind(*rows_->schema());
  ASSERT_TRUE(bound.ok());
  auto result = cp::ExecuteScalarExpression(*bound, cp::ExecBatch(*rows_));
  EXPECT_FALSE(result.ok());
}

}  // namespace
}  // namespace teatree

namespace teatree {
namespace {

TEST_F(ArrowExpressionTest, StatisticsRuleOutOnlyFilesNoRowOfWhichCanMatch) {
  const std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> ranges = {
      {"id", {1, 4}}, {"day", {"2026-01-01", "2026-02-01"}}, {"price", {-1.25, 2.5}}};
  auto may = [&](const std::string& json) {
    auto expression = ParseExpression(nlohmann::json::parse(json)).ValueOrDie();
    return MayMatch(expression, table_, ranges).ValueOrDie();
  };
  EXPECT_FALSE(may(R"({"call":"equal","args":[{"field":"id"},{"literal":7}]})"));
  EXPECT_FALSE(may(R"({"call":"greater","args":[{"field":"day"},{"literal":"2026-03-01"}]})"));
  EXPECT_FALSE(may(R"({"call":"and","args":[{"call":"less","args":[{"field":"id"},{"literal":1}]},)"
                   R"({"field":"flag"}]})"));
  EXPECT_TRUE(may(R"({"call":"equal","args":[{"field":"id"},{"literal":2}]})"));
  EXPECT_TRUE(may(R"({"call":"or","args":[{"call":"equal","args":[{"field":"id"},{"literal":7}]},)"
                  R"({"call":"is_null","args":[{"field":"name"}]}]})"));
  // Floating-point bounds prove nothing (NaN sits outside any min/max).
  EXPECT_TRUE(may(R"({"call":"greater","args":[{"field":"price"},{"literal":1000}]})"));
  // Without statistics for a column, nothing is ruled out.
  EXPECT_TRUE(may(R"({"call":"equal","args":[{"field":"n"},{"literal":12345}]})"));
}

}  // namespace
}  // namespace teatree
