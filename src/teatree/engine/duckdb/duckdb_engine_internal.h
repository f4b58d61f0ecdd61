#pragma once

// The per-request steps of DuckEngine::ApplyBatch, shared by duckdb_engine.cc (the batch and
// its transaction) and duckdb_ops.cc (what each op checks and does).

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/model_sql.h"
#include "teatree/engine/duckdb/read_only_sql.h"
#include "teatree/engine/engine.h"
#include "teatree/functions/function_registry.h"
#include "teatree/request/request.h"

namespace arrow {
class RecordBatch;
}  // namespace arrow

namespace teatree {

/// The model's schema as a batch sees it: committed state plus the batch's own changes.
struct ModelState {
  std::map<std::string, TableSchema> tables;
  std::map<std::string, std::string> attachments;  // name -> absolute path
  /// The tables whose rows the batch has updated or deleted in place so far: DuckDB cannot
  /// commit an ALTER TABLE that adds, drops or retypes a column of such a table in the same
  /// transaction, so alter_table rebuilds them instead. Empty between batches.
  std::set<std::string> rows_changed;
};

/// A request that passed the duplicate check, with what validation prepared for it.
struct PlannedRequest {
  size_t index = 0;
  const Request* request = nullptr;
  std::shared_ptr<arrow::Table> rows;       // append, upsert
  std::filesystem::path parquet_file;       // append: read by DuckDB itself, rows stay empty
  double read_ms = 0;                       // append, upsert: reading a source file
  const ModelFunction* function = nullptr;  // invoke
  nlohmann::json args;                      // invoke: complete, checked arguments
  std::filesystem::path attach_path;        // attach
  std::string rejection;                    // non-empty: refused, recorded as rejected
};

/// What executing one request did.
struct Executed {
  int64_t rows = 0;
  bool changed_data = false;
  std::shared_ptr<arrow::Table> result;
  /// The stages a native function recorded; empty for a single-statement op.
  std::vector<Step> steps;
};

/// What the ops need besides the request.
struct OpContext {
  const EngineOptions* options;
  const FunctionRegistry* functions;
  DuckConnection* writer;
  /// The statement check of the `query` op, on the writer (the batch's tables included).
  ReadOnlyCheck* query_check;
};

/// Checks `planned` against `state` and prepares its payload; a refusal goes into
/// planned.rejection. Updates `state` as if the request had applied (create_table, attach).
void ValidateRequest(const OpContext& context, ModelState& state, PlannedRequest& planned);

/// Runs a validated request on the writer inside the batch's transaction.
Result<Executed> ExecuteRequest(const OpContext& context, ModelState& state,
                                const PlannedRequest& planned);

/// Runs consecutive validated appends to one table (`run`, at least one) as a single append:
/// one appender and one conversion for all their rows, which makes a batch of many small
/// appends cheap. Returns the rows appended.
Result<int64_t> ExecuteAppendRun(const OpContext& context,
                                 const std::vector<const PlannedRequest*>& run);

/// A function call as one statement: the function's SQL (built from the arguments for
/// built-ins) and the arguments as its `$name` parameters.
/// Native functions on a DuckDB database (the DuckDB engine's writer, a reader's session): a
/// table is read whole through DuckDB's Arrow export into an in-memory dataset.
class DuckFunctionContext final : public FunctionContext {
 public:
  DuckFunctionContext(DuckConnection& connection, std::vector<std::string> tables,
                      nlohmann::json args, StepRecorder& steps)
      : FunctionContext(std::move(args), steps),
        connection_(connection),
        tables_(std::move(tables)) {}
  std::vector<std::string> Tables() const override { return tables_; }
  Result<std::shared_ptr<arrow::dataset::Dataset>> Table(const std::string& name) override;

 private:
  DuckConnection& connection_;
  std::vector<std::string> tables_;
};

/// The file an `attach` names, resolved within `input_dirs` and checked to be a readable
/// DuckDB file.
Result<std::filesystem::path> CheckAttachment(const Request& request,
                                              const std::vector<std::filesystem::path>& input_dirs);

struct FunctionSql {
  std::string sql;
  DuckParams params;
};
/// `args` must be complete and checked (BindArguments); `tables` are the model's tables.
Result<FunctionSql> FunctionCallSql(const ModelFunction& function, const nlohmann::json& args,
                                    const std::vector<std::string>& tables);

}  // namespace teatree
