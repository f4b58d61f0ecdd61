// A Teatree function plugin: share_of_total(table, keys, value) gives, for each group of the
// comma-separated `keys`, the sum of `value` and its share of the table's total. Build it
// against Teatree's headers and Arrow (see docs/functions.md), then start managers with
// `--plugin libteatree_share_of_total.so`; `invoke` and reads call it by name on either engine.
#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/dataset/api.h>

#include <sstream>

#include "teatree/functions/plugin.h"

namespace {

namespace ac = arrow::acero;
namespace cp = arrow::compute;

arrow::Result<std::shared_ptr<arrow::Table>> ShareOfTotal(teatree::FunctionContext& context) {
  const auto& args = context.args();
  std::vector<arrow::FieldRef> keys;
  std::vector<std::string> columns;
  std::stringstream list(args["keys"].get<std::string>());
  for (std::string key; std::getline(list, key, ',');) {
    key.erase(0, key.find_first_not_of(' '));
    keys.emplace_back(key);
    columns.push_back(key);
  }
  const std::string value = args["value"].get<std::string>();
  columns.push_back(value);

  auto start = teatree::StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(auto dataset, context.Table(args["table"].get<std::string>()));
  ARROW_ASSIGN_OR_RAISE(auto scan, dataset->NewScan());
  ARROW_RETURN_NOT_OK(scan->Project(columns));
  ARROW_ASSIGN_OR_RAISE(auto scanner, scan->Finish());
  ARROW_ASSIGN_OR_RAISE(auto rows, scanner->ToTable());
  context.steps().Record("scan", start, rows->num_rows());

  start = teatree::StepRecorder::Clock::now();
  ac::Declaration plan{
      "aggregate",
      {ac::Declaration{"table_source", ac::TableSourceNodeOptions(rows)}},
      ac::AggregateNodeOptions({{"hash_sum", nullptr, arrow::FieldRef(value), "sum"}}, keys)};
  ARROW_ASSIGN_OR_RAISE(auto groups, ac::DeclarationToTable(std::move(plan)));
  context.steps().Record("aggregate", start, groups->num_rows());

  ARROW_ASSIGN_OR_RAISE(auto sums, cp::Cast(groups->GetColumnByName("sum"), arrow::float64()));
  ARROW_ASSIGN_OR_RAISE(auto total, cp::Sum(sums));
  ARROW_ASSIGN_OR_RAISE(auto share, cp::CallFunction("divide", {sums, total}));
  return groups->AddColumn(groups->num_columns(), arrow::field("share", arrow::float64()),
                           share.chunked_array());
}

std::vector<teatree::ModelFunction> Functions() {
  const teatree::ColumnType varchar{teatree::ColumnType::Kind::kVarchar};
  return {{.name = "share_of_total",
           .description = "per group of keys: the sum of value and its share of the total",
           .params = {{"table", varchar, nullptr},
                      {"keys", varchar, nullptr},
                      {"value", varchar, nullptr}},
           .native = ShareOfTotal}};
}

}  // namespace

TEATREE_PLUGIN(Functions)
