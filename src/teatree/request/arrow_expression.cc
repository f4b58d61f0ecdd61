#include "teatree/request/arrow_expression.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "teatree/common/json_text.h"
#include "teatree/request/rows_to_arrow.h"

namespace teatree {
namespace cp = arrow::compute;
namespace {

/// A JSON literal as an Arrow scalar of `type` (null: the literal's own type), parsed the
/// way the codec reads rows: "2026-01-02" is a DATE when `type` is DATE, and so on.
Result<std::shared_ptr<arrow::Scalar>> LiteralScalar(const nlohmann::json& value,
                                                     const std::optional<ColumnType>& type) {
  if (type) {
    TableSchema one{.name = "literal", .columns = {{"v", *type}}};
    ARROW_ASSIGN_OR_RAISE(auto batch, RowsToRecordBatch(nlohmann::json::array({{value}}), one));
    return batch->column(0)->GetScalar(0);
  }
  if (value.is_null()) return arrow::MakeNullScalar(arrow::null());
  if (value.is_boolean()) return arrow::MakeScalar(value.get<bool>());
  if (value.is_number_integer()) return arrow::MakeScalar(value.get<int64_t>());
  if (value.is_number()) return arrow::MakeScalar(value.get<double>());
  if (value.is_string()) return arrow::MakeScalar(value.get<std::string>());
  return Status::Invalid("literal ", DumpJson(value), " has no scalar form");
}

bool IsComparison(const std::string& name) {
  return name == "equal" || name == "not_equal" || name == "less" || name == "less_equal" ||
         name == "greater" || name == "greater_equal";
}

/// The type a string literal takes beside `other` in a comparison: `other`'s when it is
/// temporal (a string literal compared with a DATE is that DATE).
Result<std::optional<ColumnType>> TemporalPartner(const Expression& other,
                                                  const TableSchema& table) {
  ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(other, table));
  if (type && type->is_temporal()) return type;
  return std::nullopt;
}

Result<cp::Expression> Convert(const Expression& expression, const TableSchema& table);

Result<std::vector<cp::Expression>> ConvertAll(const std::vector<Expression>& args,
                                               const TableSchema& table) {
  std::vector<cp::Expression> out;
  for (const auto& arg : args) {
    ARROW_ASSIGN_OR_RAISE(auto converted, Convert(arg, table));
    out.push_back(std::move(converted));
  }
  return out;
}

/// A comparison, with a string literal on either side read as its partner's temporal type.
Result<cp::Expression> Compare(const std::string& name, const std::vector<Expression>& args,
                               std::vector<cp::Expression> sides, const TableSchema& table) {
  for (size_t i = 0; i < 2; ++i) {
    const Expression& side = args.at(i);
    if (side.kind != Expression::Kind::kLiteral || !side.literal.is_string()) continue;
    ARROW_ASSIGN_OR_RAISE(auto partner, TemporalPartner(args.at(1 - i), table));
    if (!partner) continue;
    ARROW_ASSIGN_OR_RAISE(auto scalar, LiteralScalar(side.literal, partner));
    sides[i] = cp::literal(std::move(scalar));
  }
  return cp::call(name, std::move(sides));
}

/// is_in(value, [list]): the list cast to the value's type.
Result<cp::Expression> IsIn(const std::vector<Expression>& args, const TableSchema& table) {
  // Nothing is in an empty list, not even NULL (as the DuckDB engine reads it).
  if (args.at(1).literal.empty()) return cp::literal(false);
  ARROW_ASSIGN_OR_RAISE(auto value, Convert(args.at(0), table));
  ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(args.at(0), table));
  if (!type) return cp::literal(arrow::MakeNullScalar(arrow::boolean()));
  // A list with a fraction beside an INTEGER, BIGINT or DECIMAL value compares as DOUBLE, as
  // DuckDB reads id IN (1, 2.5): the list cannot take the value's type.
  const auto& items = args.at(1).literal;
  if (type->is_numeric() && type->kind != ColumnType::Kind::kDouble &&
      std::any_of(items.begin(), items.end(),
                  [](const nlohmann::json& item) { return item.is_number_float(); })) {
    type = ColumnType::Of(ColumnType::Kind::kDouble);
    value = cp::call("cast", {std::move(value)}, cp::CastOptions::Safe(arrow::float64()));
  }
  const TableSchema one{.name = "literal", .columns = {{"v", *type}}};
  nlohmann::json rows = nlohmann::json::array();
  // Each item as a row of one value: an explicit array, as push_back({item}) pushes the item
  // itself with clang (CWG 1467) and a one-value row only with GCC.
  for (const auto& item : items) rows.push_back(nlohmann::json::array({item}));
  ARROW_ASSIGN_OR_RAISE(auto set, RowsToRecordBatch(rows, one));
  // SQL's IN: NULL for a NULL value, and for a value not found in a list holding NULL.
  return cp::call("is_in", {std::move(value)},
                  cp::SetLookupOptions(set->column(0),
                                       cp::SetLookupOptions::NullMatchingBehavior::INCONCLUSIVE));
}

bool Is(const std::optional<ColumnType>& type, ColumnType::Kind kind) {
  return type && type->kind == kind;
}

bool IsInteger(const std::optional<ColumnType>& type) {
  return Is(type, ColumnType::Kind::kInteger) || Is(type, ColumnType::Kind::kBigint);
}

/// Arrow mixes DECIMAL with other numbers less freely than DuckDB; casts make the mix explicit
/// the way DuckDB reads it: with a DOUBLE (or in a division) a DECIMAL is a DOUBLE; with an
/// integer, the integer is a DECIMAL wide enough for any BIGINT.
Result<std::vector<cp::Expression>> MixNumbers(const std::string& function,
                                               const std::vector<Expression>& args,
                                               std::vector<cp::Expression> converted,
                                               const TableSchema& table) {
  std::vector<std::optional<ColumnType>> types;
  bool decimal = false, floating = false, integer = false;
  for (const auto& arg : args) {
    ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(arg, table));
    decimal |= Is(type, ColumnType::Kind::kDecimal);
    floating |= Is(type, ColumnType::Kind::kDouble);
    integer |= IsInteger(type);
    types.push_back(std::move(type));
  }
  if (!decimal || (!floating && !integer && function != "divide")) return converted;
  const bool as_double = floating || function == "divide";
  for (size_t i = 0; i < converted.size(); ++i) {
    if (as_double && Is(types[i], ColumnType::Kind::kDecimal)) {
      converted[i] = cp::call("cast", {converted[i]}, cp::CastOptions::Safe(arrow::float64()));
    } else if (!as_double && IsInteger(types[i])) {
      converted[i] =
          cp::call("cast", {converted[i]}, cp::CastOptions::Safe(arrow::decimal128(19, 0)));
    }
  }
  return converted;
}

/// A NULL literal has no type of its own: beside other arguments it takes theirs (Arrow's
/// kernels want one), else BOOLEAN.
Result<std::vector<cp::Expression>> TypeNulls(const std::vector<Expression>& args,
                                              std::vector<cp::Expression> converted,
                                              const TableSchema& table) {
  std::shared_ptr<arrow::DataType> sibling = arrow::boolean();
  bool any_null = false;
  for (const auto& arg : args) {
    if (arg.kind == Expression::Kind::kLiteral && arg.literal.is_null()) {
      any_null = true;
      continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(arg, table));
    if (type && sibling->id() == arrow::Type::BOOL && type->kind != ColumnType::Kind::kBoolean) {
      sibling = type->ToArrow();
    }
  }
  if (!any_null) return converted;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].kind == Expression::Kind::kLiteral && args[i].literal.is_null()) {
      converted[i] = cp::literal(arrow::MakeNullScalar(sibling));
    }
  }
  return converted;
}

/// The precision and scale of a decimal argument as Arrow sees it after MixNumbers (an integer
/// is a DECIMAL(19,0)); nullopt for a NULL literal or a DOUBLE.
std::optional<std::pair<int, int>> DecimalDigits(const std::optional<ColumnType>& type) {
  if (IsInteger(type)) return std::pair{19, 0};
  if (Is(type, ColumnType::Kind::kDecimal)) return std::pair{type->precision, type->scale};
  return std::nullopt;
}

/// The sides of a comparison of two decimals (or a decimal and an integer) whose common type
/// Arrow cannot hold in decimal128 (DECIMAL(38,20) beside a BIGINT needs 39 digits): both
/// cast to decimal256, where every value of either fits. Other sides as they are.
Result<std::vector<cp::Expression>> WideDecimalSides(const std::vector<Expression>& args,
                                                     std::vector<cp::Expression> sides,
                                                     const TableSchema& table) {
  std::vector<std::pair<int, int>> digits;
  for (const auto& arg : args) {
    ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(arg, table));
    auto one = DecimalDigits(type);
    if (!one || Is(type, ColumnType::Kind::kDouble)) return sides;
    digits.push_back(*one);
  }
  if (digits.size() != 2) return sides;
  const auto [p1, s1] = digits[0];
  const auto [p2, s2] = digits[1];
  if (std::max(s1, s2) + std::max(p1 - s1, p2 - s2) <= arrow::Decimal128Type::kMaxPrecision) {
    return sides;
  }
  for (size_t i = 0; i < 2; ++i) {
    sides[i] =
        cp::call("cast", {sides[i]},
                 cp::CastOptions::Safe(arrow::decimal256(digits[i].first, digits[i].second)));
  }
  return sides;
}

/// Decimal add, subtract and multiply whose result Arrow cannot hold in decimal128. Arrow
/// gives the result all the digits the arguments may need (multiply: p1 + p2 + 1) and refuses
/// more than 38, where the codec, like DuckDB, caps the result at 38 digits and fails only
/// when a value overflows. Such a call runs in decimal256 and is cast safely (overflow is an
/// error) to the codec's type; when the codec's type is DOUBLE (a scale beyond 38), the
/// arguments are DOUBLEs. nullopt: Arrow's own kernel already gives the codec's type.
Result<std::optional<cp::Expression>> WideDecimalArithmetic(const Expression& expression,
                                                            const std::string& function,
                                                            std::vector<cp::Expression> args,
                                                            const TableSchema& table) {
  const std::string& name = expression.name;
  if (name != "add" && name != "subtract" && name != "multiply") return std::nullopt;
  ARROW_ASSIGN_OR_RAISE(auto result, InferExpressionType(expression, table));
  std::vector<std::optional<std::pair<int, int>>> digits;
  for (const auto& arg : expression.args) {
    ARROW_ASSIGN_OR_RAISE(auto type, InferExpressionType(arg, table));
    if (Is(type, ColumnType::Kind::kDouble)) return std::nullopt;  // MixNumbers made DOUBLEs.
    digits.push_back(DecimalDigits(type));
  }
  // A NULL literal took its sibling's type (TypeNulls).
  for (auto& one : digits) {
    if (!one && !digits.empty()) one = digits[0] ? digits[0] : digits.back();
  }
  if (!Is(result, ColumnType::Kind::kDecimal) && !Is(result, ColumnType::Kind::kDouble)) {
    return std::nullopt;
  }
  if (digits.size() != 2 || !digits[0] || !digits[1]) return std::nullopt;
  auto [p1, s1] = *digits[0];
  auto [p2, s2] = *digits[1];
  if (Is(result, ColumnType::Kind::kDouble)) {
    for (auto& arg : args) {
      arg = cp::call("cast", {arg}, cp::CastOptions::Safe(arrow::float64()));
    }
    return cp::call(function, std::move(args));
  }
  const int arrow_precision =
      name == "multiply" ? p1 + p2 + 1 : std::max(s1, s2) + std::max(p1 - s1, p2 - s2) + 1;
  if (arrow_precision <= arrow::Decimal128Type::kMaxPrecision) return std::nullopt;
  // decimal256 holds 76 digits: a product of two 38-digit arguments has one too many, so the
  // wider argument gives up its leading digit (a value using it fails the safe cast).
  if (name == "multiply" && p1 + p2 + 1 > arrow::Decimal256Type::kMaxPrecision) {
    (p1 >= p2 ? p1 : p2) -= p1 + p2 + 1 - arrow::Decimal256Type::kMaxPrecision;
  }
  args[0] = cp::call("cast", {args[0]}, cp::CastOptions::Safe(arrow::decimal256(p1, s1)));
  args[1] = cp::call("cast", {args[1]}, cp::CastOptions::Safe(arrow::decimal256(p2, s2)));
  return cp::call("cast", {cp::call(function, std::move(args))},
                  cp::CastOptions::Safe(result->ToArrow()));
}

Result<cp::Expression> Convert(const Expression& expression, const TableSchema& table) {
  static const std::map<std::string, std::string> kRenamed = {{"and", "and_kleene"},
                                                              {"or", "or_kleene"},
                                                              {"not", "invert"},
                                                              {"add", "add_checked"},
                                                              {"subtract", "subtract_checked"},
                                                              {"multiply", "multiply_checked"},
                                                              {"divide", "divide_checked"},
                                                              {"negate", "negate_checked"},
                                                              {"abs", "abs_checked"}};
  switch (expression.kind) {
    case Expression::Kind::kField:
      return cp::field_ref(expression.name);
    case Expression::Kind::kLiteral: {
      ARROW_ASSIGN_OR_RAISE(auto scalar, LiteralScalar(expression.literal, std::nullopt));
      return cp::literal(std::move(scalar));
    }
    case Expression::Kind::kCall:
      break;
  }
  const std::string& name = expression.name;
  if (name == "is_in") return IsIn(expression.args, table);
  ARROW_ASSIGN_OR_RAISE(auto args, ConvertAll(expression.args, table));
  ARROW_ASSIGN_OR_RAISE(args, TypeNulls(expression.args, std::move(args), table));
  ARROW_ASSIGN_OR_RAISE(args, MixNumbers(name, expression.args, std::move(args), table));
  if (IsComparison(name)) {
    ARROW_ASSIGN_OR_RAISE(args, WideDecimalSides(expression.args, std::move(args), table));
    return Compare(name, expression.args, std::move(args), table);
  }
  if (name == "if_else") {
    // SQL's CASE: a NULL condition takes the ELSE branch (Arrow's if_else would give NULL).
    args[0] = cp::call("coalesce", {args[0], cp::literal(false)});
  }
  auto renamed = kRenamed.find(name);
  const std::string function = renamed != kRenamed.end() ? renamed->second : name;
  ARROW_ASSIGN_OR_RAISE(auto wide, WideDecimalArithmetic(expression, function, args, table));
  if (wide) return std::move(*wide);
  if (name == "and" || name == "or") {
    // Arrow's and_kleene/or_kleene take two arguments: a longer list is folded.
    cp::Expression folded = args[0];
    for (size_t i = 1; i < args.size(); ++i) folded = cp::call(function, {folded, args[i]});
    return folded;
  }
  return cp::call(function, std::move(args));
}

}  // namespace

Result<cp::Expression> ToArrowExpression(const Expression& expression, const TableSchema& table) {
  return Convert(expression, table);
}

Result<bool> MayMatch(
    const Expression& predicate, const TableSchema& table,
    const std::map<std::string, std::pair<nlohmann::json, nlohmann::json>>& ranges) {
  std::vector<cp::Expression> known;
  for (const auto& column : table.columns) {
    auto range = ranges.find(column.name);
    if (range == ranges.end() || range->second.first.is_null() || range->second.second.is_null() ||
        column.type.kind == ColumnType::Kind::kDouble ||
        column.type.kind == ColumnType::Kind::kList) {
      continue;
    }
    auto low = LiteralScalar(range->second.first, column.type);
    auto high = LiteralScalar(range->second.second, column.type);
    if (!low.ok() || !high.ok()) continue;  // A bound that does not read back proves nothing.
    known.push_back(cp::call("greater_equal", {cp::field_ref(column.name), cp::literal(*low)}));
    known.push_back(cp::call("less_equal", {cp::field_ref(column.name), cp::literal(*high)}));
  }
  if (known.empty()) return true;
  const auto schema = table.ToArrow();
  ARROW_ASSIGN_OR_RAISE(auto condition, Convert(predicate, table));
  ARROW_ASSIGN_OR_RAISE(condition, condition.Bind(*schema));
  ARROW_ASSIGN_OR_RAISE(auto guarantee, cp::and_(std::move(known)).Bind(*schema));
  ARROW_ASSIGN_OR_RAISE(auto simplified, cp::SimplifyWithGuarantee(condition, guarantee));
  // Only TRUE selects a row: a predicate that is FALSE or NULL for every row selects none.
  if (const auto* value = simplified.literal(); value != nullptr && value->is_scalar()) {
    const auto& scalar = *value->scalar();
    return scalar.is_valid && scalar.type->id() == arrow::Type::BOOL &&
           static_cast<const arrow::BooleanScalar&>(scalar).value;
  }
  return true;
}

Result<cp::Expression> ToArrowValue(const Expression& value, const ColumnType& target,
                                    const TableSchema& table) {
  if (value.kind == Expression::Kind::kLiteral) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, LiteralScalar(value.literal, target));
    return cp::literal(std::move(scalar));
  }
  ARROW_ASSIGN_OR_RAISE(auto computed, Convert(value, table));
  return cp::call("cast", {std::move(computed)}, cp::CastOptions::Safe(target.ToArrow()));
}

}  // namespace teatree
