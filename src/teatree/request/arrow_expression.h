#pragma once

#include <arrow/compute/expression.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "teatree/common/status.h"
#include "teatree/request/expression.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// The request codec's expression as an Arrow compute expression over `table`'s columns,
/// with the semantics expression.h states for both engines: and/or in three-valued logic
/// (and_kleene/or_kleene), overflow-checked arithmetic (as DuckDB raises), integer division
/// truncating, string literals compared with temporal columns read as those temporal values,
/// is_in's list cast to its value's type. `expression` must have passed CheckExpression()
/// against `table`. Not yet bound: bind it to `table.ToArrow()` before executing.
Result<arrow::compute::Expression> ToArrowExpression(const Expression& expression,
                                                     const TableSchema& table);

/// The value an update assigns to a column of type `target`, as an expression of exactly that
/// type: a literal read the way the codec reads rows (so "2026-01-02" is a DATE and "12.50" a
/// DECIMAL), anything else computed and cast (safely: no truncation or overflow). `value` must
/// have passed CheckSetExpression().
Result<arrow::compute::Expression> ToArrowValue(const Expression& value, const ColumnType& target,
                                                const TableSchema& table);

/// Whether a row of a data file whose column statistics are `stats` (column -> {min, max,
/// nulls}, see ColumnStats) can make `predicate` true: false only when the statistics prove
/// that none can, so a file that need not be read or rewritten is skipped. Columns with
/// NULLs and floating-point columns (NaN has no place in min/max) prove nothing.
Result<bool> MayMatch(
    const Expression& predicate, const TableSchema& table,
    const std::map<std::string, std::pair<nlohmann::json, nlohmann::json>>& ranges);

}  // namespace teatree
