// Doctor checks for DuckDB on its own and for the DuckDB <-> Arrow bridge.
#include <arrow/api.h>

#include "teatree/common/sql_quote.h"
#include "teatree/common/temp_dir.h"
#include "teatree/common/version.h"
#include "teatree/doctor/checks_internal.h"
#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree {
namespace {

Result<std::string> ScalarText(DuckConnection& connection, const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto table, connection.QueryTable(sql));
  if (table->num_rows() != 1) return Status::Invalid("expected one row from: ", sql);
  ARROW_ASSIGN_OR_RAISE(auto scalar, table->column(0)->GetScalar(0));
  return scalar->ToString();
}

Status Expect(const std::string& what, const std::string& got, const std::string& want) {
  if (got == want) return Status::OK();
  return Status::Invalid(what, ": got ", got, ", expected ", want);
}

Status DuckDBMissing(const Status& cause) {
  return cause.WithMessage(cause.message(),
                           " (is libduckdb.so present? run scripts/bootstrap to reinstall)");
}

}  // namespace

Result<CheckOutcome> CheckDuckDB(const DoctorOptions&) {
  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-doctor-"));
  auto db = DuckDatabase::Open({});
  if (!db.ok()) return DuckDBMissing(db.status());
  ARROW_ASSIGN_OR_RAISE(auto connection, (*db)->Connect());
  const std::string parquet = SqlStringLiteral((dir->path() / "check.parquet").string());
  ARROW_RETURN_NOT_OK(connection->Execute(
      "CREATE TABLE t AS SELECT range AS id, range * 0.5 AS amount FROM range(1000)"));
  ARROW_RETURN_NOT_OK(connection->Execute("COPY t TO " + parquet + " (FORMAT parquet)"));
  ARROW_ASSIGN_OR_RAISE(auto back, ScalarText(*connection,
                                              "SELECT count(*) || ',' || "
                                              "sum(amount) FROM read_parquet(" +
                                                  parquet + ")"));
  ARROW_RETURN_NOT_OK(Expect("Parquet round trip (rows,sum)", back, "1000,249750.0"));
  ARROW_ASSIGN_OR_RAISE(auto version, ScalarText(*connection, "SELECT version()"));
  std::string detail = "in-memory database; 1000 rows written to Parquet and read back";
  if (version != std::string("v") + kPinnedDuckDBVersion) {
    detail += "; note: this build pins " + std::string(kPinnedDuckDBBuild);
  }
  return CheckOutcome{version, detail};
}

Result<CheckOutcome> CheckDuckDBArrow(const DoctorOptions&) {
  auto db = DuckDatabase::Open({});
  if (!db.ok()) return DuckDBMissing(db.status());
  ARROW_ASSIGN_OR_RAISE(auto connection, (*db)->Connect());

  // DuckDB -> Arrow: a query result imported as record batches through the C data interface.
  ARROW_ASSIGN_OR_RAISE(auto reader,
                        connection->Query("SELECT range AS id, range::DOUBLE * 1.5 AS v "
                                          "FROM range(10000)"));
  int64_t rows = 0;
  int batches = 0;
  for (std::shared_ptr<arrow::RecordBatch> batch;;) {
    ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
    if (!batch) break;
    ARROW_RETURN_NOT_OK(batch->ValidateFull());
    rows += batch->num_rows();
    ++batches;
  }
  ARROW_RETURN_NOT_OK(Expect("rows through the C data interface", std::to_string(rows), "10000"));
  ARROW_RETURN_NOT_OK(
      Expect("Arrow schema of the result", reader->schema()->ToString(), "id: int64\nv: double"));

  // Arrow -> DuckDB: an Arrow table scanned from SQL.
  arrow::Int64Builder builder;
  for (int64_t i = 1; i <= 100; ++i) ARROW_RETURN_NOT_OK(builder.Append(i));
  ARROW_ASSIGN_OR_RAISE(auto values, builder.Finish());
  auto table = arrow::Table::Make(arrow::schema({arrow::field("x", arrow::int64())}), {values});
  ARROW_RETURN_NOT_OK(connection->RegisterArrowView(
      "arrow_input", std::make_shared<arrow::TableBatchReader>(table)));
  ARROW_ASSIGN_OR_RAISE(auto sum, ScalarText(*connection, "SELECT sum(x) FROM arrow_input"));
  ARROW_RETURN_NOT_OK(Expect("sum over an Arrow table scanned by DuckDB", sum, "5050"));

  return CheckOutcome{
      DuckDatabase::LibraryVersion() + " / " + arrow::GetBuildInfo().version_string,
      "query -> " + std::to_string(batches) +
          " Arrow record batches via the C data interface; Arrow table scanned from SQL"};
}

}  // namespace teatree
