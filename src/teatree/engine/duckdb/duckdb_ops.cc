// What each op checks before the transaction and does inside it, on the DuckDB engine.
#include <arrow/api.h>
#include <arrow/dataset/api.h>

#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"
#include "teatree/engine/batch_screen.h"
#include "teatree/engine/duckdb/duckdb_engine_internal.h"
#include "teatree/engine/duckdb/model_sql.h"
#include "teatree/engine/duckdb/sql_expression.h"
#include "teatree/engine/source_reader.h"

namespace teatree {

const char* const kBookkeepingSql =
    "CREATE TABLE IF NOT EXISTS _teatree_version(version BIGINT NOT NULL);"
    "INSERT INTO _teatree_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM _teatree_version);"
    "CREATE TABLE IF NOT EXISTS _teatree_requests(request_id VARCHAR PRIMARY KEY, "
    "version BIGINT NOT NULL, status VARCHAR NOT NULL, op VARCHAR NOT NULL, "
    "payload_hash VARCHAR NOT NULL, outcome VARCHAR NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _teatree_tables(name VARCHAR PRIMARY KEY, schema VARCHAR NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _teatree_attachments(name VARCHAR PRIMARY KEY, "
    "path VARCHAR NOT NULL);";

namespace {

constexpr const char* kInputView = "_teatree_input";

Status NotASelect() {
  return Status::Invalid(
      "query must be a single SELECT statement; writes go through append, "
      "upsert, update, delete or invoke");
}

std::string Columns(const TableSchema& schema, const std::string& prefix = "") {
  std::string out;
  for (const auto& column : schema.columns) {
    out += (out.empty() ? "" : ", ") + prefix + SqlIdentifier(column.name);
  }
  return out;
}

std::string KeyColumns(const TableSchema& schema) {
  std::string out;
  for (const auto& key : schema.primary_key) out += (out.empty() ? "" : ", ") + SqlIdentifier(key);
  return out;
}

Result<const TableSchema*> FindTable(const ModelState& state, const Request& request) {
  auto it = state.tables.find(request.table);
  if (it == state.tables.end()) {
    return Status::Invalid("table ", request.table, " does not exist in model ", request.model,
                           ": create it first with create_table");
  }
  return &it->second;
}

std::vector<std::string> TableNames(const ModelState& state) {
  std::vector<std::string> names;
  for (const auto& [name, schema] : state.tables) names.push_back(name);
  return names;
}

/// The table a drop_table or alter_table names; the refusal lists the model's tables.
Result<TableSchema*> TableToChange(ModelState& state, const Request& request) {
  auto it = state.tables.find(request.table);
  if (it == state.tables.end()) return NoSuchTable(request, TableNames(state));
  return &it->second;
}

Status ValidatePredicate(const TableSchema& schema, const std::optional<Expression>& where) {
  return where ? CheckPredicate(*where, schema) : Status::OK();
}

Status ValidateAttach(const OpContext& context, const ModelState& state, PlannedRequest& planned) {
  const Request& request = *planned.request;
  if (state.attachments.count(request.name) != 0) {
    return Status::Invalid("an attachment named ", request.name, " already exists in model ",
                           request.model, ": choose another name");
  }
  ARROW_ASSIGN_OR_RAISE(planned.attach_path, CheckAttachment(request, context.options->input_dirs));
  return Status::OK();
}

Status Validate(const OpContext& context, ModelState& state, PlannedRequest& planned) {
  const Request& request = *planned.request;
  switch (request.op) {
    case Op::kCreateTable: {
      if (state.tables.count(request.table) != 0) {
        return Status::Invalid("table ", request.table, " already exists in model ", request.model);
      }
      ARROW_RETURN_NOT_OK(CheckEngineChoice(request, "duckdb"));
      state.tables[request.table] = *request.schema;
      return Status::OK();
    }
    case Op::kAppend:
    case Op::kUpsert: {
      ARROW_ASSIGN_OR_RAISE(auto schema, FindTable(state, request));
      if (request.op == Op::kUpsert) ARROW_RETURN_NOT_OK(CheckUpsertKey(*schema));
      const auto start = std::chrono::steady_clock::now();
      if (request.op == Op::kAppend && request.source) {
        // A large Parquet load goes through DuckDB's own reader when no conversion is needed:
        // in parallel, straight into the table, without an Arrow copy in between.
        ARROW_ASSIGN_OR_RAISE(auto as_is,
                              ParquetToStoreAsIs(*request.source, *context.options, *schema));
        if (as_is) {
          planned.parquet_file = std::move(*as_is);
          return Status::OK();
        }
      }
      ARROW_ASSIGN_OR_RAISE(planned.rows, RequestTable(request, *schema, *context.options));
      if (request.source) {
        planned.read_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
      }
      return Status::OK();
    }
    case Op::kUpdate: {
      ARROW_ASSIGN_OR_RAISE(auto schema, FindTable(state, request));
      ARROW_RETURN_NOT_OK(CheckUpdate(*schema, request));
      return ValidatePredicate(*schema, request.where);
    }
    case Op::kDelete: {
      ARROW_ASSIGN_OR_RAISE(auto schema, FindTable(state, request));
      return ValidatePredicate(*schema, request.where);
    }
    case Op::kInvoke: {
      ARROW_ASSIGN_OR_RAISE(planned.function, context.functions->Lookup(request.function));
      ARROW_ASSIGN_OR_RAISE(planned.args, BindArguments(*planned.function, request.args));
      return Status::OK();
    }
    case Op::kQuery: {
      // Only parsed here: the tables it reads may be created earlier in the same batch.
      ARROW_ASSIGN_OR_RAISE(size_t statements, context.writer->CountStatements(request.sql));
      if (statements != 1) return NotASelect();
      return Status::OK();
    }
    case Op::kSnapshot:
      return Status::OK();
    case Op::kAttach: {
      ARROW_RETURN_NOT_OK(ValidateAttach(context, state, planned));
      state.attachments[request.name] = planned.attach_path.string();
      return Status::OK();
    }
    case Op::kDropTable: {
      ARROW_RETURN_NOT_OK(TableToChange(state, request).status());
      state.tables.erase(request.table);
      return Status::OK();
    }
    case Op::kAlterTable: {
      ARROW_ASSIGN_OR_RAISE(TableSchema * schema, TableToChange(state, request));
      ARROW_ASSIGN_OR_RAISE(*schema, AlterSchema(*schema, request.changes));
      return Status::OK();
    }
  }
  return Status::Invalid("unknown op");
}

/// Drops the table and its row in _teatree_tables.
Status DropTable(DuckConnection& writer, ModelState& state, const Request& request) {
  ARROW_RETURN_NOT_OK(TableToChange(state, request).status());
  ARROW_RETURN_NOT_OK(writer.Execute("DROP TABLE " + SqlIdentifier(request.table)));
  ARROW_RETURN_NOT_OK(writer.Execute("DELETE FROM _teatree_tables WHERE name = " +
                                     SqlStringLiteral(request.table)));
  state.tables.erase(request.table);
  return Status::OK();
}

/// Builds `altered` anew from `table`'s rows: each column cast from the one it comes from, or
/// NULL for an added one. What alter_table does where ALTER TABLE cannot (RowsChanged).
Status RebuildTable(DuckConnection& writer, const TableSchema& table, const TableSchema& altered,
                    const std::vector<ColumnChange>& changes) {
  TableSchema rebuilt = altered;
  rebuilt.name = "_teatree_altered";
  const std::vector<std::string> origins = ColumnOrigins(table, changes);
  std::string values;
  for (size_t i = 0; i < altered.columns.size(); ++i) {
    values += (i ? ", " : "") + std::string("CAST(") +
              (origins[i].empty() ? "NULL" : SqlIdentifier(origins[i])) + " AS " +
              altered.columns[i].type.ToString() + ")";
  }
  ARROW_RETURN_NOT_OK(writer.Execute(CreateTableSql(rebuilt)));
  ARROW_RETURN_NOT_OK(writer.Execute("INSERT INTO " + SqlIdentifier(rebuilt.name) + " SELECT " +
                                     values + " FROM " + SqlIdentifier(table.name)));
  ARROW_RETURN_NOT_OK(writer.Execute("DROP TABLE " + SqlIdentifier(table.name)));
  return writer.Execute("ALTER TABLE " + SqlIdentifier(rebuilt.name) + " RENAME TO " +
                        SqlIdentifier(table.name));
}

/// Whether DuckDB would refuse to commit `changes` as ALTER TABLE statements: it cannot add,
/// drop or retype a column of a table whose rows the same transaction updated or deleted.
bool NeedsRebuild(const ModelState& state, const Request& request) {
  if (!state.rows_changed.contains(request.table)) return false;
  return std::any_of(request.changes.begin(), request.changes.end(),
                     [](const ColumnChange& c) { return c.kind != ColumnChange::Kind::kRename; });
}

/// Makes the changes in the batch's transaction, so a failure rolls them all back with it:
/// with DuckDB's ALTER TABLE, one statement each (adding, dropping and renaming a column
/// rewrite no rows; a type change rewrites its column), or by rebuilding the table where
/// ALTER TABLE cannot be committed (NeedsRebuild), which copies its rows.
Status AlterTable(DuckConnection& writer, ModelState& state, const Request& request) {
  ARROW_ASSIGN_OR_RAISE(TableSchema * schema, TableToChange(state, request));
  ARROW_ASSIGN_OR_RAISE(TableSchema altered, AlterSchema(*schema, request.changes));
  if (NeedsRebuild(state, request)) {
    ARROW_RETURN_NOT_OK(RebuildTable(writer, *schema, altered, request.changes));
  } else {
    for (const auto& change : request.changes) {
      ARROW_RETURN_NOT_OK(writer.Execute(AlterColumnSql(request.table, change)));
    }
  }
  ARROW_RETURN_NOT_OK(writer.Execute(
      "UPDATE _teatree_tables SET schema = " + SqlStringLiteral(DumpJson(altered.ToJson())) +
      " WHERE name = " + SqlStringLiteral(request.table)));
  *schema = std::move(altered);
  return Status::OK();
}

Result<int64_t> InsertRows(DuckConnection& writer, const std::string& sql,
                           const std::shared_ptr<arrow::RecordBatch>& rows) {
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::RecordBatchReader::Make({rows}, rows->schema()));
  int64_t count = 0;
  ARROW_RETURN_NOT_OK(writer.WithArrowView(kInputView, reader, [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(count, writer.ExecuteCount(sql));
    return Status::OK();
  }));
  return count;
}

/// Inserts the rows of a Parquet file that needs no conversion (ParquetToStoreAsIs).
Result<int64_t> InsertParquet(DuckConnection& writer, const TableSchema& schema,
                              const std::filesystem::path& file, const SourceRef& source) {
  auto inserted = writer.ExecuteCount(
      "INSERT INTO " + SqlIdentifier(schema.name) + " (" + Columns(schema) + ") SELECT " +
      Columns(schema) + " FROM read_parquet(" + SqlStringLiteral(file.string()) + ")");
  if (inserted.ok()) return inserted;
  // DuckDB's message names the file as the server keeps it and quotes the statement: the
  // client gets its first line, with the file named as the client gave it.
  const std::string shown = SourceName(source);
  std::string message = inserted.status().message();
  message =
      "parquet file " + Quoted(shown) + " was not stored: " + message.substr(0, message.find('\n'));
  const std::string kept = file.string();
  for (size_t at = message.find(kept); at != std::string::npos;
       at = message.find(kept, at + shown.size())) {
    message.replace(at, kept.size(), shown);
  }
  return Status(inserted.status().code(), message);
}

Result<int64_t> Upsert(DuckConnection& writer, const TableSchema& schema,
                       const std::shared_ptr<arrow::RecordBatch>& rows) {
  // The last row of each key wins, as if the rows were applied one after another.
  arrow::Int64Builder ordinal;
  ARROW_RETURN_NOT_OK(ordinal.Reserve(rows->num_rows()));
  for (int64_t i = 0; i < rows->num_rows(); ++i) ordinal.UnsafeAppend(i);
  ARROW_ASSIGN_OR_RAISE(auto ordinals, ordinal.Finish());
  ARROW_ASSIGN_OR_RAISE(auto numbered,
                        rows->AddColumn(rows->num_columns(), "_teatree_ord", ordinals));
  std::string updates;
  for (const auto& column : schema.columns) {
    if (schema.IsKey(column.name)) continue;
    updates += (updates.empty() ? "" : ", ") + SqlIdentifier(column.name) + " = excluded." +
               SqlIdentifier(column.name);
  }
  const std::string sql = "INSERT INTO " + SqlIdentifier(schema.name) + " SELECT " +
                          Columns(schema) + " FROM " + kInputView +
                          " QUALIFY row_number() OVER (PARTITION BY " + KeyColumns(schema) +
                          " ORDER BY _teatree_ord DESC) = 1 ON CONFLICT (" + KeyColumns(schema) +
                          ") DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
  return InsertRows(writer, sql, numbered);
}

DuckParams ToDuckParams(const nlohmann::json& args) {
  DuckParams params;
  for (const auto& [name, value] : args.items()) {
    if (value.is_boolean()) {
      params[name] = value.get<bool>();
    } else if (value.is_number_integer()) {
      params[name] = value.get<int64_t>();
    } else if (value.is_number()) {
      params[name] = value.get<double>();
    } else if (value.is_string()) {
      params[name] = value.get<std::string>();
    } else if (value.is_null()) {
      params[name] = std::monostate{};
    } else {
      params[name] = DumpJson(value);
    }
  }
  return params;
}

/// Runs `statement` (which reads `sql`) with a native function's result as `_teatree_result`
/// when there is one.
Result<std::shared_ptr<arrow::Table>> RunWithResult(DuckConnection& writer,
                                                    const std::string& statement,
                                                    const DuckParams& params,
                                                    const std::shared_ptr<arrow::Table>& result) {
  if (!result) return writer.QueryParams(statement, params);
  std::shared_ptr<arrow::Table> answer;
  auto reader = std::make_shared<arrow::TableBatchReader>(result);
  ARROW_RETURN_NOT_OK(writer.WithArrowView("_teatree_result", reader, [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(answer, writer.QueryParams(statement, params));
    return Status::OK();
  }));
  return answer;
}

Result<Executed> Invoke(const OpContext& context, ModelState& state,
                        const PlannedRequest& planned) {
  const ModelFunction& function = *planned.function;
  DuckConnection& writer = *context.writer;
  Executed executed;
  std::string sql;
  DuckParams params;
  std::shared_ptr<arrow::Table> native_result;
  if (function.native) {
    StepRecorder steps;
    std::vector<std::string> tables;
    for (const auto& [name, schema] : state.tables) tables.push_back(name);
    DuckFunctionContext native(writer, std::move(tables), planned.args, steps);
    ARROW_ASSIGN_OR_RAISE(native_result, RunNativeFunction(function, native));
    executed.steps = steps.Take();
    // Copied whole: DuckDB 1.4 misreads a registered stream scanned for some columns only.
    sql = "SELECT * FROM _teatree_result";
  } else {
    std::vector<std::string> tables;
    for (const auto& [name, schema] : state.tables) tables.push_back(name);
    ARROW_ASSIGN_OR_RAISE(auto call, FunctionCallSql(function, planned.args, tables));
    sql = std::move(call.sql);
    params = std::move(call.params);
  }
  if (!function.write) {
    if (native_result) {
      executed.result = std::move(native_result);
    } else {
      ARROW_ASSIGN_OR_RAISE(executed.result, writer.QueryParams(sql, params));
    }
    executed.rows = executed.result->num_rows();
    return executed;
  }
  const std::string target = SqlIdentifier(function.write->table);
  const bool exists = state.tables.count(function.write->table) != 0;
  const std::string statement = function.write->replace || !exists
                                    ? "CREATE OR REPLACE TABLE " + target + " AS " + sql
                                    : "INSERT INTO " + target + " " + sql;
  ARROW_ASSIGN_OR_RAISE(auto counted, RunWithResult(writer, statement, params, native_result));
  ARROW_ASSIGN_OR_RAISE(auto written, writer.QueryTable("SELECT * FROM " + target + " LIMIT 0"));
  TableSchema schema;
  schema.name = function.write->table;
  for (const auto& field : written->schema()->fields()) {
    ARROW_ASSIGN_OR_RAISE(auto type, ColumnTypeFromArrow(*field->type()));
    schema.columns.push_back({field->name(), type});
  }
  if (counted->num_rows() == 1 && counted->num_columns() == 1) {
    ARROW_ASSIGN_OR_RAISE(auto count, counted->column(0)->GetScalar(0));
    ARROW_ASSIGN_OR_RAISE(auto as_int, count->CastTo(arrow::int64()));
    executed.rows = std::static_pointer_cast<arrow::Int64Scalar>(as_int)->value;
  }
  ARROW_RETURN_NOT_OK(writer.Execute("INSERT OR REPLACE INTO _teatree_tables VALUES (" +
                                     SqlStringLiteral(schema.name) + ", " +
                                     SqlStringLiteral(DumpJson(schema.ToJson())) + ")"));
  state.tables[schema.name] = std::move(schema);
  executed.changed_data = true;
  return executed;
}

}  // namespace

Result<std::shared_ptr<arrow::dataset::Dataset>> DuckFunctionContext::Table(
    const std::string& name) {
  if (std::find(tables_.begin(), tables_.end(), name) == tables_.end()) {
    return Status::Invalid("table ", name, " does not exist in this model");
  }
  ARROW_ASSIGN_OR_RAISE(auto rows, connection_.QueryTable("SELECT * FROM " + SqlIdentifier(name)));
  return std::make_shared<arrow::dataset::InMemoryDataset>(std::move(rows));
}

Result<std::filesystem::path> CheckAttachment(
    const Request& request, const std::vector<std::filesystem::path>& input_dirs) {
  ARROW_ASSIGN_OR_RAISE(auto path, ResolveInputPath(request.path, input_dirs));
  auto db = DuckDatabase::Open({.path = path.string(), .read_only = true});
  if (!db.ok()) {
    return Status::Invalid("cannot attach \"", request.path,
                           "\": it is not a readable DuckDB file (", db.status().message(), ")");
  }
  return std::filesystem::absolute(path);
}

Result<FunctionSql> FunctionCallSql(const ModelFunction& function, const nlohmann::json& args,
                                    const std::vector<std::string>& tables) {
  FunctionSql call{function.sql, ToDuckParams(args)};
  if (function.builder) {
    ARROW_ASSIGN_OR_RAISE(call.sql, function.builder(args, tables));
  }
  return call;
}

void ValidateRequest(const OpContext& context, ModelState& state, PlannedRequest& planned) {
  Status status = Validate(context, state, planned);
  if (!status.ok()) planned.rejection = status.message();
}

Result<Executed> ExecuteRequest(const OpContext& context, ModelState& state,
                                const PlannedRequest& planned) {
  const Request& request = *planned.request;
  DuckConnection& writer = *context.writer;
  Executed executed;
  executed.changed_data = true;
  switch (request.op) {
    case Op::kCreateTable: {
      const TableSchema& schema = *request.schema;
      ARROW_RETURN_NOT_OK(writer.Execute(CreateTableSql(schema)));
      ARROW_RETURN_NOT_OK(writer.Execute("INSERT INTO _teatree_tables VALUES (" +
                                         SqlStringLiteral(schema.name) + ", " +
                                         SqlStringLiteral(DumpJson(schema.ToJson())) + ")"));
      state.tables[schema.name] = schema;
      return executed;
    }
    case Op::kAppend: {
      if (!planned.parquet_file.empty()) {
        ARROW_ASSIGN_OR_RAISE(executed.rows, InsertParquet(writer, state.tables.at(request.table),
                                                           planned.parquet_file, *request.source));
        return executed;
      }
      ARROW_ASSIGN_OR_RAISE(executed.rows, writer.AppendArrow(request.table, *planned.rows));
      return executed;
    }
    case Op::kUpsert: {
      ARROW_ASSIGN_OR_RAISE(auto rows, planned.rows->CombineChunksToBatch());
      ARROW_ASSIGN_OR_RAISE(executed.rows, Upsert(writer, state.tables.at(request.table), rows));
      state.rows_changed.insert(request.table);
      return executed;
    }
    case Op::kUpdate: {
      std::string sets;
      for (const auto& [column, expression] : request.set) {
        sets += (sets.empty() ? "" : ", ") + SqlIdentifier(column) + " = " +
                ExpressionToSql(expression, state.tables.at(request.table));
      }
      std::string sql = "UPDATE " + SqlIdentifier(request.table) + " SET " + sets;
      if (request.where) {
        sql += " WHERE " + ExpressionToSql(*request.where, state.tables.at(request.table));
      }
      ARROW_ASSIGN_OR_RAISE(executed.rows, writer.ExecuteCount(sql));
      state.rows_changed.insert(request.table);
      return executed;
    }
    case Op::kDelete: {
      ARROW_ASSIGN_OR_RAISE(
          executed.rows,
          writer.ExecuteCount("DELETE FROM " + SqlIdentifier(request.table) + " WHERE " +
                              ExpressionToSql(*request.where, state.tables.at(request.table))));
      state.rows_changed.insert(request.table);
      return executed;
    }
    case Op::kInvoke:
      return Invoke(context, state, planned);
    case Op::kQuery: {
      ARROW_RETURN_NOT_OK(context.query_check->Check(request.sql));
      ARROW_ASSIGN_OR_RAISE(executed.result, writer.QueryTable(request.sql));
      executed.rows = executed.result->num_rows();
      executed.changed_data = false;
      return executed;
    }
    case Op::kSnapshot:
      executed.changed_data = false;
      return executed;
    case Op::kAttach: {
      ARROW_RETURN_NOT_OK(writer.Execute("INSERT INTO _teatree_attachments VALUES (" +
                                         SqlStringLiteral(request.name) + ", " +
                                         SqlStringLiteral(planned.attach_path.string()) + ")"));
      state.attachments[request.name] = planned.attach_path.string();
      executed.changed_data = false;
      return executed;
    }
    case Op::kDropTable:
      ARROW_RETURN_NOT_OK(DropTable(writer, state, request));
      return executed;
    case Op::kAlterTable:
      ARROW_RETURN_NOT_OK(AlterTable(writer, state, request));
      return executed;
  }
  return Status::Invalid("unknown op");
}

Result<int64_t> ExecuteAppendRun(const OpContext& context,
                                 const std::vector<const PlannedRequest*>& run) {
  std::vector<std::shared_ptr<arrow::Table>> tables;
  for (const PlannedRequest* planned : run) tables.push_back(planned->rows);
  ARROW_ASSIGN_OR_RAISE(auto rows, arrow::ConcatenateTables(tables));  // Chunks, not copies.
  return context.writer->AppendArrow(run.front()->request->table, *rows);
}

std::string CreateTableSql(const TableSchema& schema) {
  std::string sql = "CREATE TABLE " + SqlIdentifier(schema.name) + " (";
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const auto& column = schema.columns[i];
    sql += (i ? ", " : "") + SqlIdentifier(column.name) + " " + column.type.ToString() +
           (schema.IsKey(column.name) ? " NOT NULL" : "");
  }
  if (!schema.primary_key.empty()) sql += ", PRIMARY KEY (" + KeyColumns(schema) + ")";
  return sql + ")";
}

std::string AlterColumnSql(const std::string& table, const ColumnChange& change) {
  std::string alter = "ALTER TABLE " + SqlIdentifier(table) + " ";
  const std::string column = SqlIdentifier(change.column);
  switch (change.kind) {
    case ColumnChange::Kind::kAdd:
      return alter + "ADD COLUMN " + column + " " + change.type.ToString();
    case ColumnChange::Kind::kDrop:
      return alter + "DROP COLUMN " + column;
    case ColumnChange::Kind::kRename:
      return alter + "RENAME COLUMN " + column + " TO " + SqlIdentifier(change.to);
    case ColumnChange::Kind::kAlterType:
      return alter + "ALTER COLUMN " + column + " TYPE " + change.type.ToString();
  }
  return alter;
}

}  // namespace teatree
