// Type-checking of expressions against a table (declared in expression.h).
#include <algorithm>
#include <optional>

#include "teatree/request/expression.h"
#include "teatree/request/expression_internal.h"
#include "teatree/request/message_internal.h"
#include "teatree/request/temporal_internal.h"

namespace teatree {
namespace {

using Kind = ColumnType::Kind;
// nullopt: the NULL literal's type, which fits any other.
using MaybeType = std::optional<ColumnType>;
using request_internal::Quoted;
using request_internal::Snippet;

constexpr int kMaxDecimalPrecision = 38;

std::string TypeName(const MaybeType& type) { return type ? type->ToString() : "NULL"; }

bool IsStringLiteral(const Expression& expression) {
  return expression.kind == Expression::Kind::kLiteral && expression.literal.is_string();
}

bool ParsesAs(const std::string& text, const ColumnType& type) {
  int32_t days;
  int64_t micros;
  switch (type.kind) {
    case Kind::kDate:
      return request_internal::ParseDate(text, &days);
    case Kind::kTimestamp:
      return request_internal::ParseTimestamp(text, request_internal::ZoneOffset::kForbidden,
                                              &micros);
    case Kind::kTimestampTz:
      return request_internal::ParseTimestamp(text, request_internal::ZoneOffset::kRequired,
                                              &micros);
    default:
      return false;
  }
}

std::string_view FormatOf(const ColumnType& type) {
  switch (type.kind) {
    case Kind::kDate:
      return request_internal::kDateFormat;
    case Kind::kTimestamp:
      return request_internal::kTimestampFormat;
    default:
      return request_internal::kTimestampTzFormat;
  }
}

Status NotTemporal(const std::string& where, const nlohmann::json& literal,
                   const ColumnType& type) {
  return Status::Invalid(where, Snippet(literal), " is not a ", type.ToString(), ": write ",
                         FormatOf(type));
}

ColumnType AsDecimal(const ColumnType& type) {
  if (type.kind == Kind::kInteger) return ColumnType::Decimal(10, 0);
  if (type.kind == Kind::kBigint) return ColumnType::Decimal(19, 0);
  return type;
}

// Result type of decimal arithmetic, following DuckDB for add/subtract/multiply and the SQL
// Server rule (at least 6 digits after the point) for divide, capped at 38 digits.
ColumnType DecimalResult(std::string_view function, const ColumnType& a, const ColumnType& b) {
  int precision, scale;
  if (function == "add" || function == "subtract") {
    scale = std::max(a.scale, b.scale);
    precision = std::max(a.precision - a.scale, b.precision - b.scale) + scale + 1;
  } else if (function == "multiply") {
    scale = a.scale + b.scale;
    precision = a.precision + b.precision;
    if (scale > kMaxDecimalPrecision) return ColumnType::Of(Kind::kDouble);
  } else {
    scale = std::max(6, a.scale + b.precision + 1);
    precision = a.precision - a.scale + b.scale + scale;
    if (precision > kMaxDecimalPrecision) {
      scale = std::max(kMaxDecimalPrecision - (precision - scale), std::min(scale, 6));
    }
  }
  precision = std::min(precision, kMaxDecimalPrecision);
  return ColumnType::Decimal(precision, std::min(scale, precision));
}

MaybeType ArithmeticResult(std::string_view function, MaybeType a, MaybeType b) {
  if (!a && !b) return std::nullopt;
  if (!a) a = b;
  if (!b) b = a;
  if (a->kind == Kind::kDouble || b->kind == Kind::kDouble) return ColumnType::Of(Kind::kDouble);
  if (a->kind == Kind::kDecimal || b->kind == Kind::kDecimal) {
    return DecimalResult(function, AsDecimal(*a), AsDecimal(*b));
  }
  return ColumnType::Of(Kind::kBigint);
}

bool IsComparison(std::string_view name) {
  return name == "equal" || name == "not_equal" || name == "less" || name == "less_equal" ||
         name == "greater" || name == "greater_equal";
}

// Infers types bottom-up over one table.
class Checker {
 public:
  explicit Checker(const TableSchema& table) : table_(table) {}

  Result<MaybeType> Infer(const Expression& expression) {
    switch (expression.kind) {
      case Expression::Kind::kField:
        return InferField(expression.name);
      case Expression::Kind::kLiteral:
        return InferLiteral(expression.literal);
      case Expression::Kind::kCall:
        return InferCall(expression);
    }
    return Status::Invalid("expression of unknown kind");
  }

 private:
  Result<MaybeType> InferField(const std::string& name) const {
    const ColumnSpec* column = table_.FindColumn(name);
    if (column == nullptr) {
      return Status::Invalid("column ", Quoted(name), " does not exist in table ", table_.name,
                             " (columns: ", table_.ColumnNames(), ")");
    }
    return MaybeType(column->type);
  }

  static Result<MaybeType> InferLiteral(const nlohmann::json& literal) {
    if (literal.is_null()) return MaybeType();
    if (literal.is_boolean()) return MaybeType(ColumnType::Of(Kind::kBoolean));
    if (literal.is_number_float()) return MaybeType(ColumnType::Of(Kind::kDouble));
    if (literal.is_number()) return MaybeType(ColumnType::Of(Kind::kBigint));
    if (literal.is_string()) return MaybeType(ColumnType::Of(Kind::kVarchar));
    return Status::Invalid("literal ", Snippet(literal),
                           " is not a scalar: a list literal is allowed only as the second "
                           "argument of is_in");
  }

  Result<MaybeType> InferCall(const Expression& call) {
    ARROW_RETURN_NOT_OK(request_internal::CheckCall(call));
    std::vector<MaybeType> types;
    for (size_t i = 0; i < call.args.size(); ++i) {
      if (call.name == "is_in" && i == 1) {
        types.emplace_back();  // the value list, checked by IsIn()
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(MaybeType type, Infer(call.args[i]));
      types.push_back(std::move(type));
    }
    const std::string_view name = request_internal::FindFunction(call.name)->name;
    const ColumnType boolean = ColumnType::Of(Kind::kBoolean);
    if (IsComparison(name)) {
      ARROW_RETURN_NOT_OK(Comparable(call, types));
      return MaybeType(boolean);
    }
    if (name == "and" || name == "or" || name == "not") {
      ARROW_RETURN_NOT_OK(ExpectAll(call, types, Kind::kBoolean));
      return MaybeType(boolean);
    }
    if (name == "is_null" || name == "is_valid") return MaybeType(boolean);
    if (name == "is_in") {
      ARROW_RETURN_NOT_OK(IsIn(call, types[0]));
      return MaybeType(boolean);
    }
    if (name == "utf8_lower" || name == "utf8_upper") {
      ARROW_RETURN_NOT_OK(ExpectAll(call, types, Kind::kVarchar));
      return MaybeType(ColumnType::Of(Kind::kVarchar));
    }
    if (name == "coalesce") return Coalesce(call, types);
    if (name == "if_else") return IfElse(call, types);
    ARROW_RETURN_NOT_OK(ExpectNumbers(call, types));
    if (name == "negate" || name == "abs") return types[0];
    return ArithmeticResult(name, types[0], types[1]);
  }

  static Status ArgumentError(const Expression& call, size_t index, const MaybeType& type,
                              std::string_view expected) {
    return Status::Invalid(call.ToString(), ": argument ", index + 1, " is ", TypeName(type),
                           ", expected ", expected);
  }

  static Status ExpectAll(const Expression& call, const std::vector<MaybeType>& types, Kind kind) {
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] && types[i]->kind != kind) {
        return ArgumentError(call, i, types[i], ColumnType::Of(kind).ToString());
      }
    }
    return Status::OK();
  }

  static Status ExpectNumbers(const Expression& call, const std::vector<MaybeType>& types) {
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] && !types[i]->is_numeric()) {
        return ArgumentError(call, i, types[i], "a number");
      }
    }
    return Status::OK();
  }

  // Whether argument j can meet argument i in one comparison or one result.
  static Status Compatible(const Expression& call, const std::vector<MaybeType>& types, size_t i,
                           size_t j) {
    const MaybeType& a = types[i];
    const MaybeType& b = types[j];
    if (!a || !b || *a == *b || (a->is_numeric() && b->is_numeric())) return Status::OK();
    for (auto [typed, literal] : {std::pair{i, j}, std::pair{j, i}}) {
      if (types[typed]->is_temporal() && IsStringLiteral(call.args[literal])) {
        if (ParsesAs(call.args[literal].literal.get<std::string>(), *types[typed])) {
          return Status::OK();
        }
        return NotTemporal(call.ToString() + ": argument " + std::to_string(literal + 1) + " ",
                           call.args[literal].literal, *types[typed]);
      }
    }
    return Status::Invalid(call.ToString(), ": argument ", j + 1, " is ", TypeName(b),
                           ", which does not go with ", TypeName(a), " (argument ", i + 1, ")");
  }

  static Status Comparable(const Expression& call, const std::vector<MaybeType>& types) {
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] && types[i]->kind == Kind::kList) {
        return ArgumentError(call, i, types[i], "a value that can be compared (not a list)");
      }
    }
    return Compatible(call, types, 0, 1);
  }

  static bool LiteralFits(const nlohmann::json& value, const ColumnType& type) {
    if (type.is_numeric()) return value.is_number();
    if (type.kind == Kind::kBoolean) return value.is_boolean();
    if (type.kind == Kind::kVarchar || type.kind == Kind::kBlob) return value.is_string();
    if (type.is_temporal()) return value.is_string() && ParsesAs(value.get<std::string>(), type);
    return false;
  }

  static Status IsIn(const Expression& call, const MaybeType& type) {
    const nlohmann::json& values = call.args[1].literal;
    if (call.args[1].kind != Expression::Kind::kLiteral || !values.is_array()) {
      return Status::Invalid(call.ToString(),
                             ": the second argument of is_in must be a list literal such as "
                             "{\"literal\": [\"eu\", \"us\"]}");
    }
    if (type && type->kind == Kind::kList) {
      return ArgumentError(call, 0, type, "a scalar value (not a list)");
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].is_null() || !type || LiteralFits(values[i], *type)) continue;
      return Status::Invalid(call.ToString(), ": list element ", i + 1, " is ", Snippet(values[i]),
                             ", expected a ", type->ToString(),
                             type->is_temporal()
                                 ? std::string(" written ") + std::string(FormatOf(*type))
                                 : std::string());
    }
    return Status::OK();
  }

  static Result<MaybeType> Coalesce(const Expression& call, const std::vector<MaybeType>& types) {
    auto first = std::find_if(types.begin(), types.end(), [](const auto& t) { return t; });
    if (first == types.end()) return MaybeType();
    const size_t index = first - types.begin();
    for (size_t j = index + 1; j < types.size(); ++j) {
      ARROW_RETURN_NOT_OK(Compatible(call, types, index, j));
    }
    return *first;
  }

  static Result<MaybeType> IfElse(const Expression& call, const std::vector<MaybeType>& types) {
    if (types[0] && types[0]->kind != Kind::kBoolean) {
      return ArgumentError(call, 0, types[0], "BOOLEAN");
    }
    ARROW_RETURN_NOT_OK(Compatible(call, types, 1, 2));
    return types[1] ? types[1] : types[2];
  }

  const TableSchema& table_;
};

}  // namespace

Result<std::optional<ColumnType>> InferExpressionType(const Expression& expression,
                                                      const TableSchema& table) {
  return Checker(table).Infer(expression);
}

Result<ColumnType> CheckExpression(const Expression& expression, const TableSchema& table) {
  ARROW_ASSIGN_OR_RAISE(MaybeType type, InferExpressionType(expression, table));
  if (!type) {
    return Status::Invalid("expression ", expression.ToString(),
                           " is always NULL, so it has no type of its own");
  }
  return *type;
}

Status CheckSetExpression(std::string_view column, const Expression& expression,
                          const TableSchema& table) {
  const ColumnSpec* spec = table.FindColumn(column);
  if (spec == nullptr) {
    return Status::Invalid("column ", Quoted(column), " does not exist in table ", table.name,
                           " (columns: ", table.ColumnNames(), ")");
  }
  ARROW_ASSIGN_OR_RAISE(MaybeType type, InferExpressionType(expression, table));
  const std::string where = "set " + spec->name + " = " + expression.ToString() + ": ";
  if (!type) {
    if (!table.IsKey(column)) return Status::OK();
    return Status::Invalid(where, "key column ", Quoted(column), " of table ", table.name,
                           " cannot be NULL");
  }
  if (*type == spec->type || (type->is_numeric() && spec->type.is_numeric())) {
    return Status::OK();
  }
  if (spec->type.is_temporal() && IsStringLiteral(expression)) {
    if (ParsesAs(expression.literal.get<std::string>(), spec->type)) return Status::OK();
    return NotTemporal(where + "the value ", expression.literal, spec->type);
  }
  return Status::Invalid(where, "the value is ", type->ToString(), " but column ", Quoted(column),
                         " of table ", table.name, " is ", spec->type.ToString());
}

Status CheckPredicate(const Expression& expression, const TableSchema& table) {
  ARROW_ASSIGN_OR_RAISE(MaybeType type, InferExpressionType(expression, table));
  if (!type || type->kind == Kind::kBoolean) return Status::OK();
  return Status::Invalid("condition ", expression.ToString(), " is ", type->ToString(),
                         ": a where condition must be BOOLEAN, e.g. {\"call\": \"equal\", "
                         "\"args\": [{\"field\": \"region\"}, {\"literal\": \"eu\"}]}");
}

}  // namespace teatree
