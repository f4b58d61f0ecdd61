#include "teatree/request/expression.h"

#include <algorithm>

#include "teatree/request/expression_internal.h"
#include "teatree/request/message_internal.h"
#include "teatree/request/names.h"

namespace teatree {
namespace request_internal {
namespace {

constexpr int kMaxDepth = 64;

constexpr FunctionInfo kFunctions[] = {
    {"equal", 2, 2},      {"not_equal", 2, 2},     {"less", 2, 2},      {"less_equal", 2, 2},
    {"greater", 2, 2},    {"greater_equal", 2, 2}, {"and", 2, -1},      {"or", 2, -1},
    {"not", 1, 1},        {"add", 2, 2},           {"subtract", 2, 2},  {"multiply", 2, 2},
    {"divide", 2, 2},     {"negate", 1, 1},        {"abs", 1, 1},       {"is_null", 1, 1},
    {"is_valid", 1, 1},   {"is_in", 2, 2},         {"coalesce", 1, -1}, {"if_else", 3, 3},
    {"utf8_lower", 1, 1}, {"utf8_upper", 1, 1},
};

struct Alias {
  std::string_view alias;
  std::string_view name;
};
constexpr Alias kAliases[] = {{"invert", "not"}};

std::string_view Canonical(std::string_view name) {
  for (const auto& alias : kAliases) {
    if (alias.alias == name) return alias.name;
  }
  return name;
}

bool IsScalarLiteral(const nlohmann::json& value) {
  return value.is_null() || value.is_boolean() || value.is_number() || value.is_string();
}

Status CheckLiteral(const nlohmann::json& value, bool list_allowed) {
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::Invalid("literal ", Snippet(value),
                           " is out of range: integer literals must fit a BIGINT");
  }
  if (IsScalarLiteral(value)) return Status::OK();
  if (value.is_array() && list_allowed) {
    for (const auto& element : value) {
      if (!IsScalarLiteral(element)) {
        return Status::Invalid("the list of is_in may hold only null, booleans, numbers and ",
                               "strings, got ", Snippet(element));
      }
      ARROW_RETURN_NOT_OK(CheckLiteral(element, false));
    }
    return Status::OK();
  }
  if (value.is_array()) {
    return Status::Invalid("literal ", Snippet(value),
                           " is a list: a list literal is allowed only as the second argument "
                           "of is_in");
  }
  return Status::Invalid("literal ", Snippet(value),
                         " is not allowed: use null, a boolean, a number or a string");
}

Status BadShape(const nlohmann::json& json) {
  return Status::Invalid("expression ", Snippet(json),
                         " is malformed: write {\"field\": \"column\"}, {\"literal\": value} or "
                         "{\"call\": \"function\", \"args\": [...]}");
}

Result<Expression> Parse(const nlohmann::json& json, int depth, bool list_allowed);

Result<Expression> ParseCall(const nlohmann::json& json, int depth) {
  const auto call = json.find("call");
  const auto args = json.find("args");
  if (!call->is_string() || args == json.end() || !args->is_array() || json.size() != 2) {
    return BadShape(json);
  }
  Expression expression;
  expression.kind = Expression::Kind::kCall;
  expression.name = std::string(Canonical(call->get<std::string>()));
  for (size_t i = 0; i < args->size(); ++i) {
    const bool list_allowed = expression.name == "is_in" && i == 1;
    ARROW_ASSIGN_OR_RAISE(Expression arg, Parse((*args)[i], depth + 1, list_allowed));
    expression.args.push_back(std::move(arg));
  }
  // Arity after the arguments are read: an unknown name is reported with its arguments.
  ARROW_RETURN_NOT_OK(CheckCall(expression));
  if (expression.name == "is_in" && expression.args[1].kind != Expression::Kind::kLiteral) {
    return Status::Invalid(expression.ToString(),
                           ": the second argument of is_in must be a list literal such as "
                           "{\"literal\": [\"eu\", \"us\"]}");
  }
  return expression;
}

Result<Expression> Parse(const nlohmann::json& json, int depth, bool list_allowed) {
  if (depth > kMaxDepth) {
    return Status::Invalid("expression is nested more than ", kMaxDepth, " levels deep");
  }
  if (!json.is_object() || json.empty()) return BadShape(json);
  if (json.contains("call")) return ParseCall(json, depth);
  if (json.size() != 1) return BadShape(json);
  if (const auto field = json.find("field"); field != json.end()) {
    if (!field->is_string()) return BadShape(json);
    ARROW_RETURN_NOT_OK(ValidateName("column", field->get<std::string>()));
    return Expression::Field(field->get<std::string>());
  }
  if (const auto literal = json.find("literal"); literal != json.end()) {
    ARROW_RETURN_NOT_OK(CheckLiteral(*literal, list_allowed));
    return Expression::Literal(*literal);
  }
  return BadShape(json);
}

}  // namespace

const FunctionInfo* FindFunction(std::string_view name) {
  name = Canonical(name);
  for (const auto& function : kFunctions) {
    if (function.name == name) return &function;
  }
  return nullptr;
}

Status CheckCall(const Expression& call) {
  const FunctionInfo* function = FindFunction(call.name);
  if (function == nullptr) {
    return Status::Invalid("unknown function ", Quoted(call.name), ": use one of ",
                           Join(KnownFunctions()));
  }
  const int count = static_cast<int>(call.args.size());
  if (count < function->min_args || (function->max_args >= 0 && count > function->max_args)) {
    std::string expected = std::to_string(function->min_args);
    if (function->max_args < 0) {
      expected += " or more arguments";
    } else {
      expected += function->min_args == 1 ? " argument" : " arguments";
    }
    return Status::Invalid(call.ToString(), ": ", function->name, " takes ", expected, ", got ",
                           count);
  }
  return Status::OK();
}

}  // namespace request_internal

Expression Expression::Field(std::string column) {
  Expression expression;
  expression.kind = Kind::kField;
  expression.name = std::move(column);
  return expression;
}

Expression Expression::Literal(nlohmann::json value) {
  Expression expression;
  expression.kind = Kind::kLiteral;
  expression.literal = std::move(value);
  return expression;
}

Expression Expression::Call(std::string function, std::vector<Expression> args) {
  Expression expression;
  expression.kind = Kind::kCall;
  expression.name = std::move(function);
  expression.args = std::move(args);
  return expression;
}

nlohmann::json Expression::ToJson() const {
  switch (kind) {
    case Kind::kField:
      return {{"field", name}};
    case Kind::kLiteral:
      return {{"literal", literal}};
    case Kind::kCall: {
      nlohmann::json json_args = nlohmann::json::array();
      for (const auto& arg : args) json_args.push_back(arg.ToJson());
      return {{"call", name}, {"args", std::move(json_args)}};
    }
  }
  return nullptr;
}

std::string Expression::ToString() const {
  switch (kind) {
    case Kind::kField:
      return name;
    case Kind::kLiteral:
      return request_internal::Snippet(literal);
    case Kind::kCall: {
      std::vector<std::string> shown;
      for (const auto& arg : args) shown.push_back(arg.ToString());
      return name + "(" + request_internal::Join(shown) + ")";
    }
  }
  return "?";
}

const std::vector<std::string>& KnownFunctions() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> result;
    for (const auto& function : request_internal::kFunctions) {
      result.emplace_back(function.name);
    }
    for (const auto& alias : request_internal::kAliases) result.emplace_back(alias.alias);
    std::sort(result.begin(), result.end());
    return result;
  }();
  return names;
}

Result<Expression> ParseExpression(const nlohmann::json& json) {
  return request_internal::Parse(json, 0, false);
}

}  // namespace teatree
