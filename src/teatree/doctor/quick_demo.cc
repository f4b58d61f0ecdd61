#include <arrow/acero/exec_plan.h>
#include <arrow/acero/options.h>
#include <arrow/api.h>
#include <arrow/compute/expression.h>

#include <chrono>

#include "teatree/common/arrow_runtime.h"
#include "teatree/common/table_format.h"
#include "teatree/common/temp_dir.h"
#include "teatree/doctor/doctor.h"
#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree {
namespace {

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

Status RunQuickDemo(std::ostream& out) {
  namespace ac = arrow::acero;
  namespace cp = arrow::compute;
  ARROW_RETURN_NOT_OK(InitializeArrow());
  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-demo-"));
  const std::string path = (dir->path() / "sales.duckdb").string();

  auto start = std::chrono::steady_clock::now();
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = path}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  ARROW_RETURN_NOT_OK(connection->Execute(
      "CREATE TABLE orders AS SELECT range AS id, "
      "['eu', 'us', 'apac', 'latam'][range % 4 + 1] AS region, "
      "(((range * 7919) % 10000) / 100.0)::DECIMAL(12, 2) AS amount FROM range(100000)"));
  out << "1. DuckDB wrote 100000 orders into " << path << " (" << MillisecondsSince(start)
      << " ms)\n";

  start = std::chrono::steady_clock::now();
  ARROW_ASSIGN_OR_RAISE(auto reader, connection->Query("SELECT region, amount FROM orders"));
  ac::Declaration plan = ac::Declaration::Sequence({
      {"record_batch_reader_source",
       ac::RecordBatchReaderSourceNodeOptions(
           std::shared_ptr<arrow::RecordBatchReader>(std::move(reader)))},
      {"filter",
       ac::FilterNodeOptions(cp::greater_equal(
           cp::field_ref("amount"), cp::literal(std::make_shared<arrow::Decimal128Scalar>(
                                        arrow::Decimal128(1000), arrow::decimal128(12, 2)))))},
      {"aggregate", ac::AggregateNodeOptions({{"hash_count", nullptr, "amount", "orders"},
                                              {"hash_sum", nullptr, "amount", "total"},
                                              {"hash_mean", nullptr, "amount", "average"}},
                                             {"region"})},
      {"order_by", ac::OrderByNodeOptions(cp::Ordering({cp::SortKey("region")}))},
  });
  ARROW_ASSIGN_OR_RAISE(auto totals, ac::DeclarationToTable(std::move(plan)));
  out << "2. Arrow read them through the C data interface and Acero computed, per region, the "
         "orders of at least 10.00 (filter -> group-by -> sort, "
      << MillisecondsSince(start) << " ms):\n\n";
  ARROW_ASSIGN_OR_RAISE(auto text, FormatTable(*totals));
  out << text;
  return Status::OK();
}

}  // namespace teatree
