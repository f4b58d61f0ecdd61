#pragma once

#include <memory>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/functions/function_registry.h"

namespace arrow {
class Table;
namespace compute {
class Expression;
}  // namespace compute
namespace acero {
struct Declaration;
}  // namespace acero
}  // namespace arrow

namespace teatree {

/// The native built-ins, run on Arrow compute and Acero by either engine:
///  - scan(table, columns, where): the rows of `table` where `where` holds (the request
///    codec's JSON expression, as text; empty: every row), only the comma-separated
///    `columns` (empty: all), both pushed into the dataset scan: on the Arrow engine Parquet
///    row groups whose statistics rule the predicate out are skipped.
///  - rollup(table, keys, value): GROUP BY ROLLUP over the comma-separated `keys`: for each
///    prefix of the keys (down to the grand total, where they are NULL) the rows, and the
///    sum, mean, min and max of `value`. One hash aggregation over the table; the coarser
///    levels re-aggregate the finest one.
///  - rolling(table, order_by, value, window, partition_by): a rolling sum and mean of
///    `value` over the last `window` rows (this one included) in `order_by` order, within
///    each `partition_by` value when given.
///  - enrich(table, lookup, on, columns): every row of `table` with `columns` (default: all
///    but the keys) of the `lookup` row whose comma-separated `on` columns match (a left
///    join on Acero's hash join; NULLs where none does).
std::vector<ModelFunction> NativeBuiltins();

/// Helpers for native functions; each records its step in `context`.
/// Scans `table` for `columns` (all when empty) where `filter` holds, both pushed into the
/// dataset scan. Step "scan <table>".
Result<std::shared_ptr<arrow::Table>> ScanTable(FunctionContext& context, const std::string& table,
                                                const std::vector<std::string>& columns,
                                                const arrow::compute::Expression& filter);
/// Runs an Acero plan to a table. Step `name`.
Result<std::shared_ptr<arrow::Table>> RunPlan(FunctionContext& context, const std::string& name,
                                              arrow::acero::Declaration plan);

}  // namespace teatree
