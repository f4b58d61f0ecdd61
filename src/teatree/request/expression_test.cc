#include "teatree/request/expression.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace teatree {
namespace {

using nlohmann::json;
using Kind = ColumnType::Kind;

TableSchema Table() {
  auto schema = TableSchema::FromJson("orders", json::parse(R"j([
      {"name":"id","type":"BIGINT"},{"name":"qty","type":"INTEGER"},
      {"name":"amount","type":"DOUBLE"},{"name":"price","type":"DECIMAL(10,2)"},
      {"name":"rate","type":"DECIMAL(5,3)"},{"name":"big","type":"DECIMAL(38,20)"},
      {"name":"region","type":"VARCHAR"},{"name":"paid","type":"BOOLEAN"},
      {"name":"day","type":"DATE"},{"name":"at","type":"TIMESTAMP"},
      {"name":"at_tz","type":"TIMESTAMPTZ"},{"name":"tags","type":"VARCHAR[]"},
      {"name":"raw","type":"BLOB"}])j"),
                                      json::array({"id"}));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return *schema;
}

Result<Expression> Parse(std::string_view text) { return ParseExpression(json::parse(text)); }

std::string ParseError(std::string_view text) {
  auto result = Parse(text);
  return result.ok() ? "ok" : result.status().message();
}

// The type of the expression, or the error message.
std::string TypeOf(std::string_view text) {
  auto expression = Parse(text);
  if (!expression.ok()) return "parse error: " + expression.status().message();
  auto type = CheckExpression(*expression, Table());
  return type.ok() ? type->ToString() : type.status().message();
}

std::string Call(std::string_view function, std::string_view args) {
  return R"({"call":")" + std::string(function) + R"(","args":[)" + std::string(args) + "]}";
}

TEST(ExpressionTest, ParsesTheUpdateAndDeleteExamples) {
  auto set = Parse(R"({"call":"multiply","args":[{"field":"amount"},{"literal":1.1}]})");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->kind, Expression::Kind::kCall);
  EXPECT_EQ(set->name, "multiply");
  ASSERT_EQ(set->args.size(), 2u);
  EXPECT_EQ(set->args[0], Expression::Field("amount"));
  EXPECT_EQ(set->args[1], Expression::Literal(1.1));
  EXPECT_EQ(set->ToString(), "multiply(amount, 1.1)");
  auto where = Parse(R"({"call":"less","args":[{"field":"amount"},{"literal":1}]})");
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(where->ToJson().dump(), R"({"args":[{"field":"amount"},{"literal":1}],"call":"less"})");
}

TEST(ExpressionTest, ToJsonRoundTrips) {
  const char* text = R"({"call":"and","args":[
      {"call":"is_in","args":[{"field":"region"},{"literal":["eu","us",null]}]},
      {"call":"not","args":[{"call":"is_null","args":[{"field":"amount"}]}]},
      {"call":"equal","args":[{"literal":null},{"literal":"x"}]}]})";
  auto expression = Parse(text);
  ASSERT_TRUE(expression.ok()) << expression.status().ToString();
  auto again = ParseExpression(expression->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *expression);
  EXPECT_EQ(expression->ToJson(), json::parse(text));
}

TEST(ExpressionTest, InvertIsReadAsNot) {
  auto expression = Parse(Call("invert", R"({"field":"paid"})"));
  ASSERT_TRUE(expression.ok());
  EXPECT_EQ(expression->name, "not");
}

TEST(ExpressionTest, KnownFunctionsAreSortedAndComplete) {
  const auto& names = KnownFunctions();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* name :
       {"equal",    "not_equal", "less",    "less_equal", "greater",   "greater_equal",
        "and",      "or",        "not",     "invert",     "add",       "subtract",
        "multiply", "divide",    "negate",  "abs",        "is_null",   "is_valid",
        "is_in",    "coalesce",  "if_else", "utf8_lower", "utf8_upper"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_EQ(names.size(), 23u);
}

TEST(ExpressionTest, RefusesMalformedStructure) {
  for (const char* text :
       {R"(5)", R"({})", R"([])", R"({"field":"a","literal":1})", R"({"call":"abs"})",
        R"({"call":"abs","args":{"field":"a"}})", R"({"call":"abs","args":[],"x":1})",
        R"({"field":1})", R"({"fieldx":"a"})", R"({"call":5,"args":[]})",
        R"({"field":"a","extra":true})"}) {
    EXPECT_NE(ParseError(text).find("is malformed: write {\"field\""), std::string::npos)
        << text << ": " << ParseError(text);
  }
  EXPECT_NE(ParseError(R"({"field":"Amount"})").find("column name \"Amount\" is invalid"),
            std::string::npos);
}

TEST(ExpressionTest, RefusesLiteralsOtherThanScalars) {
  EXPECT_NE(ParseError(R"({"literal":{"a":1}})").find("is not allowed: use null, a boolean"),
            std::string::npos);
  EXPECT_NE(ParseError(R"({"literal":[1,2]})").find("only as the second argument of is_in"),
            std::string::npos);
  EXPECT_NE(ParseError(Call("equal", R"({"field":"a"},{"literal":[1]})"))
                .find("only as the second argument of is_in"),
            std::string::npos);
  EXPECT_NE(ParseError(Call("is_in", R"({"field":"a"},{"literal":[[1]]})"))
                .find("the list of is_in may hold only"),
            std::string::npos);
  EXPECT_NE(ParseError(Call("is_in", R"({"field":"a"},{"field":"b"})"))
                .find("the second argument of is_in must be a list literal"),
            std::string::npos);
  EXPECT_NE(ParseError(R"({"literal":18446744073709551615})").find("must fit a BIGINT"),
            std::string::npos);
  EXPECT_EQ(ParseError(R"({"literal":-9223372036854775808})"), "ok");
}

TEST(ExpressionTest, UnknownFunctionListsTheKnownOnes) {
  std::string error = ParseError(Call("mul", R"({"field":"a"},{"literal":2})"));
  EXPECT_EQ(error.rfind("unknown function \"mul\": use one of abs, add, and, coalesce,", 0), 0u)
      << error;
  EXPECT_NE(error.find("utf8_upper"), std::string::npos);
}

TEST(ExpressionTest, RefusesWrongArity) {
  EXPECT_EQ(ParseError(Call("multiply", R"({"field":"a"})")),
            "multiply(a): multiply takes 2 arguments, got 1");
  EXPECT_EQ(ParseError(Call("abs", R"({"field":"a"},{"field":"b"})")),
            "abs(a, b): abs takes 1 argument, got 2");
  EXPECT_EQ(ParseError(Call("and", R"({"field":"a"})")),
            "and(a): and takes 2 or more arguments, got 1");
  EXPECT_EQ(ParseError(Call("coalesce", "")),
            "coalesce(): coalesce takes 1 or more arguments, got 0");
  EXPECT_NE(ParseError(Call("if_else", R"({"field":"a"},{"field":"b"})")).find("takes 3 arguments"),
            std::string::npos);
  EXPECT_EQ(ParseError(Call("and", R"({"field":"a"},{"field":"b"},{"field":"c"})")), "ok");
}

TEST(ExpressionTest, RefusesDeepNesting) {
  std::string text = R"({"field":"paid"})";
  for (int i = 0; i < 100; ++i) text = Call("not", text);
  EXPECT_NE(ParseError(text).find("nested more than 64 levels"), std::string::npos);
}

TEST(ExpressionCheckTest, Comparisons) {
  EXPECT_EQ(TypeOf(Call("less", R"({"field":"amount"},{"literal":1})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("equal", R"({"field":"price"},{"field":"qty"})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("equal", R"({"field":"region"},{"literal":"eu"})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("not_equal", R"({"field":"paid"},{"literal":true})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("greater", R"({"field":"day"},{"literal":"2024-01-31"})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("less_equal", R"({"literal":"2024-01-31 10:00:00"},{"field":"at"})")),
            "BOOLEAN");
  EXPECT_EQ(
      TypeOf(Call("greater_equal", R"({"field":"at_tz"},{"literal":"2024-01-31T10:00:00Z"})")),
      "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("equal", R"({"field":"amount"},{"literal":null})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("equal", R"({"field":"amount"},{"literal":"eu"})")),
            "equal(amount, \"eu\"): argument 2 is VARCHAR, which does not go with DOUBLE "
            "(argument 1)");
  EXPECT_EQ(TypeOf(Call("greater", R"({"field":"day"},{"literal":"yesterday"})")),
            "greater(day, \"yesterday\"): argument 2 \"yesterday\" is not a DATE: write "
            "\"YYYY-MM-DD\"");
  EXPECT_NE(TypeOf(Call("less", R"({"field":"at_tz"},{"literal":"2024-01-31 10:00:00"})"))
                .find("is not a TIMESTAMPTZ"),
            std::string::npos);
  EXPECT_NE(TypeOf(Call("less", R"({"field":"day"},{"field":"at"})")).find("does not go with DATE"),
            std::string::npos);
  EXPECT_NE(TypeOf(Call("equal", R"({"field":"tags"},{"field":"tags"})")).find("not a list"),
            std::string::npos);
}

TEST(ExpressionCheckTest, LogicNeedsBooleans) {
  EXPECT_EQ(TypeOf(Call("and", R"({"field":"paid"},{"literal":true},{"literal":null})")),
            "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("or", R"({"field":"paid"},{"field":"amount"})")),
            "or(paid, amount): argument 2 is DOUBLE, expected BOOLEAN");
  EXPECT_EQ(TypeOf(Call("not", R"({"field":"region"})")),
            "not(region): argument 1 is VARCHAR, expected BOOLEAN");
}

TEST(ExpressionCheckTest, ArithmeticResultTypes) {
  EXPECT_EQ(TypeOf(Call("multiply", R"({"field":"amount"},{"literal":1.1})")), "DOUBLE");
  EXPECT_EQ(TypeOf(Call("add", R"({"field":"qty"},{"field":"qty"})")), "BIGINT");
  EXPECT_EQ(TypeOf(Call("divide", R"({"field":"id"},{"literal":2})")), "BIGINT");
  EXPECT_EQ(TypeOf(Call("subtract", R"({"field":"price"},{"field":"amount"})")), "DOUBLE");
  EXPECT_EQ(TypeOf(Call("add", R"({"field":"price"},{"field":"rate"})")), "DECIMAL(12,3)");
  EXPECT_EQ(TypeOf(Call("multiply", R"({"field":"price"},{"field":"rate"})")), "DECIMAL(15,5)");
  EXPECT_EQ(TypeOf(Call("divide", R"({"field":"price"},{"field":"rate"})")), "DECIMAL(19,8)");
  EXPECT_EQ(TypeOf(Call("add", R"({"field":"price"},{"literal":1})")), "DECIMAL(22,2)");
  EXPECT_EQ(TypeOf(Call("add", R"({"field":"big"},{"field":"big"})")), "DECIMAL(38,20)");
  EXPECT_EQ(TypeOf(Call("multiply", R"({"field":"big"},{"field":"big"})")), "DOUBLE");
  EXPECT_EQ(TypeOf(Call("add", R"({"field":"qty"},{"literal":null})")), "BIGINT");
  EXPECT_EQ(TypeOf(Call("negate", R"({"field":"qty"})")), "INTEGER");
  EXPECT_EQ(TypeOf(Call("abs", R"({"field":"price"})")), "DECIMAL(10,2)");
  EXPECT_EQ(TypeOf(Call("multiply", R"({"field":"region"},{"literal":1.1})")),
            "multiply(region, 1.1): argument 1 is VARCHAR, expected a number");
  EXPECT_EQ(TypeOf(Call("abs", R"({"field":"day"})")),
            "abs(day): argument 1 is DATE, expected a number");
}

TEST(ExpressionCheckTest, NullTestsTakeAnything) {
  EXPECT_EQ(TypeOf(Call("is_null", R"({"field":"tags"})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("is_valid", R"({"literal":null})")), "BOOLEAN");
}

TEST(ExpressionCheckTest, IsInChecksTheListAgainstTheValue) {
  EXPECT_EQ(TypeOf(Call("is_in", R"({"field":"region"},{"literal":["eu","us",null]})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("is_in", R"({"field":"id"},{"literal":[1,2.5]})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("is_in", R"({"field":"day"},{"literal":["2024-01-01"]})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("is_in", R"({"field":"region"},{"literal":[]})")), "BOOLEAN");
  EXPECT_EQ(TypeOf(Call("is_in", R"({"field":"region"},{"literal":["eu",1]})")),
            "is_in(region, [\"eu\",1]): list element 2 is 1, expected a VARCHAR");
  EXPECT_NE(TypeOf(Call("is_in", R"({"field":"day"},{"literal":["01/02/2024"]})"))
                .find("expected a DATE written \"YYYY-MM-DD\""),
            std::string::npos);
  EXPECT_NE(TypeOf(Call("is_in", R"({"field":"tags"},{"literal":["a"]})")).find("not a list"),
            std::string::npos);
}

TEST(ExpressionCheckTest, CoalesceAndIfElse) {
  EXPECT_EQ(TypeOf(Call("coalesce", R"({"field":"amount"},{"literal":0})")), "DOUBLE");
  EXPECT_EQ(TypeOf(Call("coalesce", R"({"literal":null},{"field":"region"},{"literal":"-"})")),
            "VARCHAR");
  EXPECT_EQ(TypeOf(Call("coalesce", R"({"field":"day"},{"literal":"2024-01-01"})")), "DATE");
  EXPECT_EQ(TypeOf(Call("coalesce", R"({"field":"region"},{"field":"amount"})")),
            "coalesce(region, amount): argument 2 is DOUBLE, which does not go with VARCHAR "
            "(argument 1)");
  EXPECT_EQ(TypeOf(Call("if_else", R"({"field":"paid"},{"field":"amount"},{"literal":0})")),
            "DOUBLE");
  EXPECT_EQ(TypeOf(Call("if_else", R"({"field":"paid"},{"literal":null},{"field":"region"})")),
            "VARCHAR");
  EXPECT_EQ(TypeOf(Call("if_else", R"({"field":"amount"},{"literal":1},{"literal":0})")),
            "if_else(amount, 1, 0): argument 1 is DOUBLE, expected BOOLEAN");
  EXPECT_NE(TypeOf(Call("if_else", R"({"field":"paid"},{"field":"region"},{"literal":0})"))
                .find("argument 3 is BIGINT, which does not go with VARCHAR"),
            std::string::npos);
}

TEST(ExpressionCheckTest, StringFunctions) {
  EXPECT_EQ(TypeOf(Call("utf8_lower", R"({"field":"region"})")), "VARCHAR");
  EXPECT_EQ(TypeOf(Call("utf8_upper", R"({"field":"raw"})")),
            "utf8_upper(raw): argument 1 is BLOB, expected VARCHAR");
}

TEST(ExpressionCheckTest, UnknownColumnNamesTheTable) {
  EXPECT_EQ(TypeOf(Call("less", R"({"field":"amont"},{"literal":1})")),
            "column \"amont\" does not exist in table orders (columns: id, qty, amount, price, "
            "rate, big, region, paid, day, at, at_tz, tags, raw)");
}

TEST(ExpressionCheckTest, FieldsAndLiteralsHaveTheirTypes) {
  EXPECT_EQ(TypeOf(R"({"field":"tags"})"), "VARCHAR[]");
  EXPECT_EQ(TypeOf(R"({"literal":1})"), "BIGINT");
  EXPECT_EQ(TypeOf(R"({"literal":1.5})"), "DOUBLE");
  EXPECT_EQ(TypeOf(R"({"literal":"x"})"), "VARCHAR");
  EXPECT_EQ(TypeOf(R"({"literal":false})"), "BOOLEAN");
}

TEST(ExpressionCheckTest, AlwaysNullExpressionsHaveNoTypeOfTheirOwn) {
  EXPECT_NE(TypeOf(R"({"literal":null})").find("is always NULL"), std::string::npos);
  auto expression = Parse(Call("coalesce", R"({"literal":null},{"literal":null})"));
  ASSERT_TRUE(expression.ok());
  auto type = InferExpressionType(*expression, Table());
  ASSERT_TRUE(type.ok());
  EXPECT_FALSE(type->has_value());
}

TEST(ExpressionCheckTest, HandBuiltCallsAreCheckedToo) {
  Expression bad = Expression::Call("pow", {Expression::Field("amount")});
  EXPECT_NE(CheckExpression(bad, Table()).status().message().find("unknown function"),
            std::string::npos);
  Expression arity = Expression::Call("abs", {});
  EXPECT_NE(CheckExpression(arity, Table()).status().message().find("takes 1 argument"),
            std::string::npos);
  Expression list = Expression::Literal(json::array({1}));
  EXPECT_FALSE(CheckExpression(list, Table()).ok());
}

Status CheckSet(std::string_view column, std::string_view value) {
  auto expression = Parse(value);
  if (!expression.ok()) return expression.status();
  return CheckSetExpression(column, *expression, Table());
}

TEST(ExpressionCheckTest, SetValuesMustFitTheColumn) {
  EXPECT_TRUE(CheckSet("amount", Call("multiply", R"({"field":"amount"},{"literal":1.1})")).ok());
  EXPECT_TRUE(CheckSet("price", Call("multiply", R"({"field":"price"},{"literal":1.1})")).ok());
  EXPECT_TRUE(CheckSet("qty", R"({"literal":1})").ok());
  EXPECT_TRUE(CheckSet("region", R"({"literal":null})").ok());
  EXPECT_TRUE(CheckSet("day", R"({"literal":"2024-02-29"})").ok());
  EXPECT_TRUE(CheckSet("tags", R"({"field":"tags"})").ok());
  EXPECT_EQ(CheckSet("region", R"({"literal":1})").message(),
            "set region = 1: the value is BIGINT but column \"region\" of table orders is VARCHAR");
  EXPECT_EQ(CheckSet("day", R"({"literal":"2023-02-29"})").message(),
            "set day = \"2023-02-29\": the value \"2023-02-29\" is not a DATE: write "
            "\"YYYY-MM-DD\"");
  EXPECT_EQ(CheckSet("id", R"({"literal":null})").message(),
            "set id = null: key column \"id\" of table orders cannot be NULL");
  EXPECT_NE(CheckSet("nope", R"({"literal":1})").message().find("does not exist in table orders"),
            std::string::npos);
}

TEST(ExpressionCheckTest, PredicatesMustBeBoolean) {
  auto check = [](std::string_view text) {
    auto expression = Parse(text);
    return expression.ok() ? CheckPredicate(*expression, Table()) : expression.status();
  };
  EXPECT_TRUE(check(Call("equal", R"({"field":"region"},{"literal":"eu"})")).ok());
  EXPECT_TRUE(check(R"({"literal":true})").ok());
  EXPECT_TRUE(check(R"({"literal":null})").ok());
  EXPECT_TRUE(check(R"({"field":"paid"})").ok());
  EXPECT_NE(check(R"({"field":"amount"})")
                .message()
                .find("condition amount is DOUBLE: a where condition must be BOOLEAN"),
            std::string::npos);
}

}  // namespace
}  // namespace teatree
