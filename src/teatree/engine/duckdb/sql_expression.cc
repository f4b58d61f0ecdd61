#include "teatree/engine/duckdb/sql_expression.h"

#include <map>

#include "teatree/common/sql_quote.h"

namespace teatree {
namespace {

std::string LiteralToSql(const nlohmann::json& value) {
  if (value.is_null()) return "NULL";
  if (value.is_boolean()) return value.get<bool>() ? "TRUE" : "FALSE";
  if (value.is_number()) return value.dump();
  if (value.is_string()) return SqlStringLiteral(value.get<std::string>());
  std::string list;
  for (const auto& item : value) list += (list.empty() ? "" : ", ") + LiteralToSql(item);
  return "(" + list + ")";
}

std::string Join(const std::vector<Expression>& args, const std::string& separator) {
  std::string out;
  for (const auto& arg : args) out += (out.empty() ? "" : separator) + ExpressionToSql(arg);
  return out;
}

}  // namespace

std::string ExpressionToSql(const Expression& expression) {
  static const std::map<std::string, std::string> kInfix = {
      {"equal", " = "},        {"not_equal", " <> "}, {"less", " < "},   {"less_equal", " <= "},
      {"greater", " > "},      {"greater_equal", " >= "}, {"and", " AND "}, {"or", " OR "},
      {"add", " + "},          {"subtract", " - "},   {"multiply", " * "}, {"divide", " / "}};
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
  if (auto it = kInfix.find(name); it != kInfix.end()) return "(" + Join(args, it->second) + ")";
  if (auto it = kCalls.find(name); it != kCalls.end()) return it->second + "(" + Join(args, ", ") + ")";
  if (name == "not" || name == "invert") return "(NOT " + ExpressionToSql(args.at(0)) + ")";
  if (name == "negate") return "(-" + ExpressionToSql(args.at(0)) + ")";
  if (name == "is_null") return "(" + ExpressionToSql(args.at(0)) + " IS NULL)";
  if (name == "is_valid") return "(" + ExpressionToSql(args.at(0)) + " IS NOT NULL)";
  if (name == "is_in") {
    if (args.at(1).literal.empty()) return "FALSE";
    return "(" + ExpressionToSql(args.at(0)) + " IN " + LiteralToSql(args.at(1).literal) + ")";
  }
  if (name == "if_else") {
    return "(CASE WHEN " + ExpressionToSql(args.at(0)) + " THEN " + ExpressionToSql(args.at(1)) +
           " ELSE " + ExpressionToSql(args.at(2)) + " END)";
  }
  // CheckExpression admits only the functions above; reaching here is a programming error.
  return "error('unsupported function " + name + "')";
}

}  // namespace teatree
