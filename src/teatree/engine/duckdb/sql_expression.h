#pragma once

#include <string>

#include "teatree/request/expression.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// Renders a request expression (already checked with CheckExpression) as DuckDB SQL:
/// fields become quoted identifiers, literals quoted SQL literals, and Arrow compute function
/// names their SQL operators, so the same request means the same thing on both engines
/// (e.g. `divide` of two integers truncates, as Arrow's does). `table` gives field types.
std::string ExpressionToSql(const Expression& expression, const TableSchema& table);

}  // namespace teatree
