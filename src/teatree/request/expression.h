#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/column_type.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// A scalar expression over the columns of one table: the one predicate/expression form of
/// update and delete requests, evaluated the same way by the DuckDB and the Arrow engine.
/// JSON form:
///   {"field": "amount"}                        a column
///   {"literal": 1.1}                           null, a boolean, a number or a string (an
///                                              array only as the 2nd argument of is_in)
///   {"call": "multiply", "args": [...]}        a function, named as in Arrow compute
/// Function semantics both engines must follow:
///   - and/or use SQL's three-valued logic (Arrow: and_kleene/or_kleene); "invert" is read
///     as "not".
///   - add/subtract/multiply/divide: DOUBLE if an argument is DOUBLE, else DECIMAL if one is
///     DECIMAL, else BIGINT; on integers divide truncates (Arrow's divide, DuckDB's //).
///   - a string literal compared with a DATE/TIMESTAMP/TIMESTAMPTZ is that temporal value.
/// A value type; safe for concurrent reads.
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's destructor may allocate.
struct Expression {
  enum class Kind { kField, kLiteral, kCall };

  Kind kind = Kind::kLiteral;
  /// kField: the column; kCall: the function.
  std::string name;
  /// kLiteral: the value.
  nlohmann::json literal;
  /// kCall: the arguments.
  std::vector<Expression> args;

  static Expression Field(std::string column);
  static Expression Literal(nlohmann::json value);
  static Expression Call(std::string function, std::vector<Expression> args);

  /// The JSON form above; ParseExpression(ToJson()) gives back an equal expression.
  nlohmann::json ToJson() const;
  /// A short human-readable form for messages: multiply(amount, 1.1).
  std::string ToString() const;

  bool operator==(const Expression& other) const = default;
};

/// The functions an expression may call, sorted ("invert" included as the alias of "not").
const std::vector<std::string>& KnownFunctions();

/// Reads the JSON form, checking its structure, the names of columns and functions and the
/// number of arguments. Types are checked later against a table by CheckExpression().
Result<Expression> ParseExpression(const nlohmann::json& json);

/// Type-checks `expression` against `table` and returns its result type. Refuses an
/// expression that is NULL whatever the row (e.g. {"literal": null}): it has no type of its
/// own. For update values and predicates, which may be NULL, use CheckSetExpression() and
/// CheckPredicate().
Result<ColumnType> CheckExpression(const Expression& expression, const TableSchema& table);

/// The result type of `expression`, or nullopt when the expression is always NULL (a NULL
/// literal, or a function of NULL literals that returns NULL): that fits any type.
Result<std::optional<ColumnType>> InferExpressionType(const Expression& expression,
                                                      const TableSchema& table);

/// Checks the value of an update's `column = expression`: the column exists, the value's
/// type is the column's type or (for numbers) converts to it, a string literal parses as the
/// column's DATE/TIMESTAMP/TIMESTAMPTZ, and NULL is not assigned to a key column.
Status CheckSetExpression(std::string_view column, const Expression& expression,
                          const TableSchema& table);

/// Checks that `expression` is a condition over `table`: its type is BOOLEAN (or NULL).
Status CheckPredicate(const Expression& expression, const TableSchema& table);

}  // namespace teatree
