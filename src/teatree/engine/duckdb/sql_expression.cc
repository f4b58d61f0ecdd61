#include "teatree/engine/duckdb/sql_expression.h"

#include <map>

#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"

namespace teatree {
namespace {

std::string LiteralToSql(const nlohmann::json& value) {
  if (value.is_null()) return "NULL";
  if (value.is_boolean()) return value.get<bool>() ? "TRUE" : "FALSE";
  if (value.is_number()) return DumpJson(value);
  if (value.is_string()) return SqlStringLiteral(value.get<std::string>());
  std::string list;
  for (const auto& item : value) list += (list.empty() ? "" : ", ") + LiteralToSql(item);
  return "(" + list + ")";
}

std::string Join(const std::vector<Expression>& args, const std::string& separator,
                 const TableSchema& table) {
  std::string out;
  for (const auto& arg : args) out += (out.empty() ? "" : separator) + ExpressionToSql(arg, table);
  return out;
}

bool IsInteger(const Expression& expression, const TableSchema& table) {
  auto type = InferExpressionType(expression, table);
  if (!type.ok() || !type->has_value()) return false;
  return (*type)->kind == ColumnType::Kind::kInteger || (*type)->kind == ColumnType::Kind::kBigint;
}

}  // namespace

std::string ExpressionToSql(const Expression& expression, const TableSchema& table) {
  static const std::map<std::string, std::string> kInfix = {
      {"equal", " = "},   {"not_equal", " <> "},     {"less", " < "},     {"less_equal", " <= "},
      {"greater", " > "}, {"greater_equal", " >= "}, {"and", " AND "},    {"or", " OR "},
      {"add", " + "},     {"subtract", " - "},       {"multiply", " * "}, {"divide", " / "}};
  static const std::map<std::string, std::string> kCalls = {
      {"abs", "abs"}, {"coalesce", "coalesce"}, {"utf8_lower", "lower"}, {"utf8_upper", "upper"}};
  switch (expression.kind) {
    case Expression::Kind::kField:
      return SqlIdentifier(expression.name);
    case Expression::Kind::kLiteral:
      return LiteralToSql(expression.literal);
    case Expression::Kind::kCall:
      break;
  }
  const std::string& name = expression.name;
  const auto& args = expression.args;
  if (name == "divide" && IsInteger(args.at(0), table) && IsInteger(args.at(1), table)) {
    return "(" + Join(args, " // ", table) + ")";  // Integer division truncates, as in Arrow.
  }
  if (auto it = kInfix.find(name); it != kInfix.end()) {
    return "(" + Join(args, it->second, table) + ")";
  }
  if (auto it = kCalls.find(name); it != kCalls.end()) {
    return it->second + "(" + Join(args, ", ", table) + ")";
  }
  if (name == "not" || name == "invert") return "(NOT " + ExpressionToSql(args.at(0), table) + ")";
  if (name == "negate") return "(-" + ExpressionToSql(args.at(0), table) + ")";
  if (name == "is_null") return "(" + ExpressionToSql(args.at(0), table) + " IS NULL)";
  if (name == "is_valid") return "(" + ExpressionToSql(args.at(0), table) + " IS NOT NULL)";
  if (name == "is_in") {
    if (args.at(1).literal.empty()) return "FALSE";
    return "(" + ExpressionToSql(args.at(0), table) + " IN " + LiteralToSql(args.at(1).literal) +
           ")";
  }
  if (name == "if_else") {
    return "(CASE WHEN " + ExpressionToSql(args.at(0), table) + " THEN " +
           ExpressionToSql(args.at(1), table) + " ELSE " + ExpressionToSql(args.at(2), table) +
           " END)";
  }
  // CheckExpression admits only the functions above; reaching here is a programming error.
  return "error('unsupported function " + name + "')";
}

}  // namespace teatree
