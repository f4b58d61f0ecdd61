#include "teatree/functions/native_builtins.h"

#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/dataset/api.h>

#include <algorithm>
#include <sstream>

#include "teatree/common/json_text.h"
#include "teatree/request/arrow_expression.h"

namespace teatree {
namespace {

namespace ac = arrow::acero;
namespace cp = arrow::compute;

using TablePtr = std::shared_ptr<arrow::Table>;

/// The comma-separated column names of argument `param` ("region, day").
Result<std::vector<std::string>> ColumnList(const nlohmann::json& args, const std::string& param) {
  std::vector<std::string> names;
  std::stringstream list(args[param].get<std::string>());
  for (std::string name; std::getline(list, name, ',');) {
    const auto first = name.find_first_not_of(' ');
    if (first == std::string::npos) {
      return Status::Invalid(param, " has an empty column name: list columns as \"a,b\"");
    }
    names.push_back(name.substr(first, name.find_last_not_of(' ') - first + 1));
    if (std::count(names.begin(), names.end(), names.back()) > 1) {
      return Status::Invalid(param, " names column ", names.back(), " twice");
    }
  }
  if (names.empty()) return Status::Invalid(param, " names no column: list columns as \"a,b\"");
  return names;
}

std::vector<arrow::FieldRef> Refs(const std::vector<std::string>& names) {
  return {names.begin(), names.end()};
}

ac::Declaration Source(TablePtr table) {
  return {"table_source", ac::TableSourceNodeOptions(std::move(table))};
}

/// `rows` sorted by `columns` ascending, NULLs last. Step "sort".
Result<TablePtr> SortBy(FunctionContext& context, const TablePtr& rows,
                        const std::vector<std::string>& columns) {
  const auto start = StepRecorder::Clock::now();
  std::vector<cp::SortKey> keys;
  for (const auto& column : columns) {
    keys.emplace_back(column, cp::SortOrder::Ascending, cp::NullPlacement::AtEnd);
  }
  ARROW_ASSIGN_OR_RAISE(auto order, cp::SortIndices(arrow::Datum(rows), cp::SortOptions(keys)));
  ARROW_ASSIGN_OR_RAISE(auto sorted, cp::Take(rows, order));
  context.steps().Record("sort", start, rows->num_rows());
  return sorted.table();
}

/// ScanTable over `dataset`, table `table` of the context, opened already; its step started
/// at `start`.
Result<TablePtr> ScanDataset(FunctionContext& context, const std::string& table,
                             arrow::dataset::Dataset& dataset,
                             const std::vector<std::string>& columns, const cp::Expression& filter,
                             StepRecorder::Clock::time_point start) {
  for (const auto& column : columns) {
    if (dataset.schema()->GetFieldIndex(column) < 0) {
      std::string known;
      for (const auto& name : dataset.schema()->field_names())
        known += (known.empty() ? "" : ", ") + name;
      return Status::Invalid("table ", table, " has no column ", column, " (its columns: ", known,
                             ")");
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto builder, dataset.NewScan());
  if (!columns.empty()) ARROW_RETURN_NOT_OK(builder->Project(columns));
  ARROW_RETURN_NOT_OK(builder->Filter(filter));
  ARROW_RETURN_NOT_OK(builder->UseThreads(true));
  ARROW_ASSIGN_OR_RAISE(auto scanner, builder->Finish());
  ARROW_ASSIGN_OR_RAISE(auto rows, scanner->ToTable());
  context.steps().Record("scan " + table, start, rows->num_rows());
  return rows;
}

// ---------------------------------------------------------------------------------------
// rollup

/// One rollup level's aggregation: over the scanned rows for the finest level, over the
/// finest level's partial results for the coarser ones.
std::vector<cp::Aggregate> RollupAggregates(bool finest, bool grouped, const std::string& value) {
  const std::string hash = grouped ? "hash_" : "";
  if (finest) {
    return {{hash + "count_all", "rows"},
            {hash + "count", nullptr, arrow::FieldRef(value), "values"},
            {hash + "sum", nullptr, arrow::FieldRef(value), "sum"},
            {hash + "min", nullptr, arrow::FieldRef(value), "min"},
            {hash + "max", nullptr, arrow::FieldRef(value), "max"}};
  }
  // Counts add up to 0 over nothing (the grand total of an empty table), not to NULL.
  auto counts = std::make_shared<cp::ScalarAggregateOptions>(/*skip_nulls=*/true, /*min_count=*/0);
  return {{hash + "sum", counts, arrow::FieldRef("rows"), "rows"},
          {hash + "sum", counts, arrow::FieldRef("values"), "values"},
          {hash + "sum", nullptr, arrow::FieldRef("sum"), "sum"},
          {hash + "min", nullptr, arrow::FieldRef("min"), "min"},
          {hash + "max", nullptr, arrow::FieldRef("max"), "max"}};
}

/// A level in the rollup's shape: every key (NULL where rolled up), rows, sum, mean, min and
/// max, with the finest level's types.
Result<TablePtr> RollupShape(const TablePtr& level, const arrow::Schema& finest,
                             const std::vector<std::string>& keys) {
  const int64_t length = level->num_rows();
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  auto add = [&](const std::string& name, const std::shared_ptr<arrow::DataType>& type,
                 std::shared_ptr<arrow::ChunkedArray> column) -> Status {
    if (column == nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto nulls, arrow::MakeArrayOfNull(type, length));
      column = std::make_shared<arrow::ChunkedArray>(nulls);
    } else if (!column->type()->Equals(type)) {
      ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(column, type));
      column = cast.chunked_array();
    }
    fields.push_back(arrow::field(name, type));
    columns.push_back(std::move(column));
    return Status::OK();
  };
  for (const auto& key : keys) {
    ARROW_RETURN_NOT_OK(add(key, finest.GetFieldByName(key)->type(), level->GetColumnByName(key)));
  }
  for (const char* name : {"rows", "sum"}) {
    ARROW_RETURN_NOT_OK(
        add(name, finest.GetFieldByName(name)->type(), level->GetColumnByName(name)));
  }
  ARROW_ASSIGN_OR_RAISE(auto sum, cp::Cast(level->GetColumnByName("sum"), arrow::float64()));
  ARROW_ASSIGN_OR_RAISE(auto values, cp::Cast(level->GetColumnByName("values"), arrow::float64()));
  ARROW_ASSIGN_OR_RAISE(auto mean, cp::CallFunction("divide", {sum, values}));
  ARROW_RETURN_NOT_OK(add("mean", arrow::float64(), mean.chunked_array()));
  for (const char* name : {"min", "max"}) {
    ARROW_RETURN_NOT_OK(
        add(name, finest.GetFieldByName(name)->type(), level->GetColumnByName(name)));
  }
  return arrow::Table::Make(arrow::schema(fields), columns, length);
}

Result<TablePtr> Rollup(FunctionContext& context) {
  const auto& args = context.args();
  ARROW_ASSIGN_OR_RAISE(auto keys, ColumnList(args, "keys"));
  const std::string value = args["value"].get<std::string>();
  std::vector<std::string> columns = keys;
  if (std::find(keys.begin(), keys.end(), value) == keys.end()) columns.push_back(value);
  ARROW_ASSIGN_OR_RAISE(
      auto rows, ScanTable(context, args["table"].get<std::string>(), columns, cp::literal(true)));
  ARROW_ASSIGN_OR_RAISE(
      auto finest,
      RunPlan(context, "aggregate",
              {"aggregate",
               {Source(rows)},
               ac::AggregateNodeOptions(RollupAggregates(true, true, value), Refs(keys))}));
  std::vector<TablePtr> levels;
  ARROW_ASSIGN_OR_RAISE(levels.emplace_back(), RollupShape(finest, *finest->schema(), keys));
  for (size_t depth = keys.size(); depth-- > 0;) {
    const std::vector<std::string> group(keys.begin(), keys.begin() + depth);
    ARROW_ASSIGN_OR_RAISE(
        auto level, RunPlan(context, "rollup " + std::to_string(depth),
                            {"aggregate",
                             {Source(finest)},
                             ac::AggregateNodeOptions(
                                 RollupAggregates(false, !group.empty(), value), Refs(group))}));
    ARROW_ASSIGN_OR_RAISE(levels.emplace_back(), RollupShape(level, *finest->schema(), keys));
  }
  ARROW_ASSIGN_OR_RAISE(auto all, arrow::ConcatenateTables(levels));
  return SortBy(context, all, keys);
}

// ---------------------------------------------------------------------------------------
// rolling

Result<TablePtr> Rolling(FunctionContext& context) {
  const auto& args = context.args();
  const std::string order_by = args["order_by"].get<std::string>();
  const std::string value = args["value"].get<std::string>();
  const std::string partition = args["partition_by"].get<std::string>();
  const int64_t window = args["window"].get<int64_t>();
  if (window < 1) return Status::Invalid("window must be at least 1 row, not ", window);
  std::vector<std::string> columns;
  if (!partition.empty()) columns.push_back(partition);
  columns.push_back(order_by);
  if (value != order_by && value != partition) columns.push_back(value);
  ARROW_ASSIGN_OR_RAISE(
      auto rows, ScanTable(context, args["table"].get<std::string>(), columns, cp::literal(true)));
  std::vector<std::string> order = {order_by};
  if (!partition.empty()) order.insert(order.begin(), partition);
  ARROW_ASSIGN_OR_RAISE(rows, SortBy(context, rows, order));
  ARROW_ASSIGN_OR_RAISE(rows, rows->CombineChunks());

  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(rows->GetColumnByName(value), arrow::float64()));
  const auto& values = static_cast<const arrow::DoubleArray&>(*cast.chunked_array()->chunk(0));
  const std::shared_ptr<arrow::Array> groups =
      partition.empty() ? nullptr : rows->GetColumnByName(partition)->chunk(0);
  const int64_t length = rows->num_rows();
  // Running totals: the window ending at row i sums rows [first, i] of its partition.
  std::vector<double> sums(length + 1, 0);
  std::vector<int64_t> counts(length + 1, 0);
  arrow::DoubleBuilder rolling_sum;
  arrow::DoubleBuilder rolling_mean;
  ARROW_RETURN_NOT_OK(rolling_sum.Reserve(length));
  ARROW_RETURN_NOT_OK(rolling_mean.Reserve(length));
  int64_t partition_start = 0;
  for (int64_t i = 0; i < length; ++i) {
    if (groups != nullptr && i > 0 && !groups->RangeEquals(*groups, i, i + 1, i - 1)) {
      partition_start = i;
    }
    const bool valid = values.IsValid(i);
    sums[i + 1] = sums[i] + (valid ? values.Value(i) : 0);
    counts[i + 1] = counts[i] + (valid ? 1 : 0);
    const int64_t first = std::max(partition_start, i - window + 1);
    const int64_t n = counts[i + 1] - counts[first];
    if (n == 0) {
      rolling_sum.UnsafeAppendNull();
      rolling_mean.UnsafeAppendNull();
      continue;
    }
    const double sum = sums[i + 1] - sums[first];
    rolling_sum.UnsafeAppend(sum);
    rolling_mean.UnsafeAppend(sum / static_cast<double>(n));
  }
  ARROW_ASSIGN_OR_RAISE(auto sum_array, rolling_sum.Finish());
  ARROW_ASSIGN_OR_RAISE(auto mean_array, rolling_mean.Finish());
  ARROW_ASSIGN_OR_RAISE(
      rows, rows->AddColumn(rows->num_columns(), arrow::field("rolling_sum", arrow::float64()),
                            std::make_shared<arrow::ChunkedArray>(sum_array)));
  ARROW_ASSIGN_OR_RAISE(
      rows, rows->AddColumn(rows->num_columns(), arrow::field("rolling_mean", arrow::float64()),
                            std::make_shared<arrow::ChunkedArray>(mean_array)));
  context.steps().Record("window", start, length);
  return rows;
}

// ---------------------------------------------------------------------------------------
// enrich

Result<TablePtr> Enrich(FunctionContext& context) {
  const auto& args = context.args();
  const std::string table = args["table"].get<std::string>();
  const std::string lookup = args["lookup"].get<std::string>();
  ARROW_ASSIGN_OR_RAISE(auto on, ColumnList(args, "on"));
  ARROW_ASSIGN_OR_RAISE(auto left, ScanTable(context, table, {}, cp::literal(true)));
  std::vector<std::string> columns;
  if (!args["columns"].get<std::string>().empty()) {
    ARROW_ASSIGN_OR_RAISE(columns, ColumnList(args, "columns"));
  } else {
    ARROW_ASSIGN_OR_RAISE(auto dataset, context.Table(lookup));
    for (const auto& field : dataset->schema()->fields()) {
      if (std::find(on.begin(), on.end(), field->name()) == on.end()) {
        columns.push_back(field->name());
      }
    }
  }
  for (const auto& column : columns) {
    if (left->schema()->GetFieldIndex(column) >= 0) {
      return Status::Invalid("column ", column, " is in both ", table, " and ", lookup,
                             ": leave it out of columns, or name the ones to bring");
    }
  }
  std::vector<std::string> right_columns = on;
  right_columns.insert(right_columns.end(), columns.begin(), columns.end());
  ARROW_ASSIGN_OR_RAISE(auto right, ScanTable(context, lookup, right_columns, cp::literal(true)));
  ac::HashJoinNodeOptions join(ac::JoinType::LEFT_OUTER, Refs(on), Refs(on),
                               Refs(left->schema()->field_names()), Refs(columns));
  return RunPlan(context, "join", {"hashjoin", {Source(left), Source(right)}, std::move(join)});
}

// ---------------------------------------------------------------------------------------
// scan

/// `schema`'s columns as table `table`'s schema, for checking expressions against it.
Result<TableSchema> SchemaOf(const std::string& table, const arrow::Schema& schema) {
  TableSchema result{.name = table};
  for (const auto& field : schema.fields()) {
    ARROW_ASSIGN_OR_RAISE(auto type, ColumnTypeFromArrow(*field->type()));
    result.columns.push_back({field->name(), std::move(type)});
  }
  return result;
}

/// `where` (the codec's JSON expression, as text) as a filter on `table`, whose columns are
/// `schema`'s; true when empty.
Result<cp::Expression> WhereFilter(const std::string& table, const arrow::Schema& schema,
                                   const std::string& where) {
  if (where.empty()) return cp::literal(true);
  auto json = ParseJson(where, "where", {.max_depth = 256}).ValueOr(nlohmann::json());
  if (json.is_null()) {
    return Status::Invalid(
        "where is not JSON: give a predicate in the request codec's expression form, e.g. "
        R"({"call":"equal","args":[{"field":"id"},{"literal":7}]})");
  }
  ARROW_ASSIGN_OR_RAISE(auto predicate, ParseExpression(json));
  ARROW_ASSIGN_OR_RAISE(auto columns, SchemaOf(table, schema));
  ARROW_RETURN_NOT_OK(CheckPredicate(predicate, columns));
  return ToArrowExpression(predicate, columns);
}

Result<TablePtr> Scan(FunctionContext& context) {
  const auto& args = context.args();
  const std::string table = args["table"].get<std::string>();
  std::vector<std::string> columns;
  if (!args["columns"].get<std::string>().empty()) {
    ARROW_ASSIGN_OR_RAISE(columns, ColumnList(args, "columns"));
  }
  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(auto dataset, context.Table(table));
  ARROW_ASSIGN_OR_RAISE(auto filter,
                        WhereFilter(table, *dataset->schema(), args["where"].get<std::string>()));
  return ScanDataset(context, table, *dataset, columns, filter, start);
}

}  // namespace

Result<TablePtr> ScanTable(FunctionContext& context, const std::string& table,
                           const std::vector<std::string>& columns, const cp::Expression& filter) {
  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(auto dataset, context.Table(table));
  return ScanDataset(context, table, *dataset, columns, filter, start);
}

Result<TablePtr> RunPlan(FunctionContext& context, const std::string& name, ac::Declaration plan) {
  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(auto rows, ac::DeclarationToTable(std::move(plan)));
  context.steps().Record(name, start, rows->num_rows());
  return rows;
}

std::vector<ModelFunction> NativeBuiltins() {
  const ColumnType varchar{ColumnType::Kind::kVarchar};
  const ColumnType bigint{ColumnType::Kind::kBigint};
  return {
      {.name = "scan",
       .description = "the rows of a table where a predicate holds (`where`: the request "
                      "codec's JSON expression; default every row), only `columns` (default "
                      "all); both pushed into the dataset scan (native)",
       .params = {{"table", varchar, nullptr}, {"columns", varchar, ""}, {"where", varchar, ""}},
       .native = Scan},
      {.name = "rollup",
       .description = "GROUP BY ROLLUP(keys): rows, sum, mean, min and max of a value for every "
                      "prefix of the keys, down to the grand total (native, Acero)",
       .params = {{"table", varchar, nullptr},
                  {"keys", varchar, nullptr},
                  {"value", varchar, nullptr}},
       .native = Rollup},
      {.name = "rolling",
       .description = "rolling sum and mean of a value over the last `window` rows in order_by "
                      "order, per partition_by value when given (native)",
       .params = {{"table", varchar, nullptr},
                  {"order_by", varchar, nullptr},
                  {"value", varchar, nullptr},
                  {"window", bigint, 7},
                  {"partition_by", varchar, ""}},
       .native = Rolling},
      {.name = "enrich",
       .description = "the rows of a table with columns of the lookup row whose `on` columns "
                      "match (left join on Acero's hash join; native)",
       .params = {{"table", varchar, nullptr},
                  {"lookup", varchar, nullptr},
                  {"on", varchar, nullptr},
                  {"columns", varchar, ""}},
       .native = Enrich},
  };
}

}  // namespace teatree
