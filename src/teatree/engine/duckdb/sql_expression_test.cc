#include "teatree/engine/duckdb/sql_expression.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TableSchema Orders() {
  nlohmann::json schema =
      nlohmann::json::parse(R"([{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},)"
                            R"({"name":"region","type":"VARCHAR"}])");
  return TableSchema::FromJson("orders", schema, nlohmann::json::array({"id"})).ValueOrDie();
}

std::string Sql(const std::string& json) {
  auto expression = ParseExpression(nlohmann::json::parse(json)).ValueOrDie();
  return ExpressionToSql(expression, Orders());
}

TEST(SqlExpressionTest, QuotesFieldsAndLiterals) {
  EXPECT_EQ(Sql(R"({"call":"equal","args":[{"field":"region"},{"literal":"x' OR 1=1 --"}]})"),
            "(\"region\" = 'x'' OR 1=1 --')");
  EXPECT_EQ(Sql(R"({"call":"and","args":[{"call":"is_null","args":[{"field":"amount"}]},)"
                R"({"call":"not","args":[{"literal":false}]}]})"),
            "((\"amount\" IS NULL) AND (NOT FALSE))");
}

TEST(SqlExpressionTest, IntegerDivisionTruncatesLikeArrow) {
  EXPECT_EQ(Sql(R"({"call":"divide","args":[{"field":"id"},{"literal":2}]})"), "(\"id\" // 2)");
  EXPECT_EQ(Sql(R"({"call":"divide","args":[{"field":"amount"},{"literal":2}]})"),
            "(\"amount\" / 2)");
}

TEST(SqlExpressionTest, IsInListsAndEmptyLists) {
  EXPECT_EQ(Sql(R"({"call":"is_in","args":[{"field":"region"},{"literal":["eu","us"]}]})"),
            "(\"region\" IN ('eu', 'us'))");
  EXPECT_EQ(Sql(R"({"call":"is_in","args":[{"field":"region"},{"literal":[]}]})"), "FALSE");
}

TEST(SqlExpressionTest, ConditionalsAndStrings) {
  EXPECT_EQ(Sql(R"({"call":"if_else","args":[{"call":"greater","args":[{"field":"amount"},)"
                R"({"literal":1}]},{"call":"utf8_upper","args":[{"field":"region"}]},)"
                R"({"literal":"small"}]})"),
            "(CASE WHEN (\"amount\" > 1) THEN upper(\"region\") ELSE 'small' END)");
}

}  // namespace
}  // namespace teatree
