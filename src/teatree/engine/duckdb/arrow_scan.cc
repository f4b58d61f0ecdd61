// DuckConnection::RegisterArrowScan: a DuckDB table function over ArrowTables, fed through the
// Arrow C data interface one DuckDB vector's worth of rows at a time.
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include <mutex>

#include "teatree/engine/duckdb/duckdb_database_internal.h"
#include "teatree/engine/duckdb/duckdb_status_internal.h"

namespace teatree {
namespace {

/// A connection of the scan's own: DuckDB's Arrow conversions read their settings from one.
struct OwnConnection {
  duckdb_connection connection = nullptr;
  ~OwnConnection() { duckdb_disconnect(&connection); }
  Status Open(duckdb_database database) {
    return FromDuck(duckdb_connect(database, &connection), "cannot connect for an Arrow scan",
                    nullptr);
  }
};

/// DuckDB's reading of an Arrow schema, for converting arrays of it.
struct ConvertedSchema {
  duckdb_arrow_converted_schema converted = nullptr;
  ~ConvertedSchema() { duckdb_destroy_arrow_converted_schema(&converted); }
  Status Make(duckdb_connection connection, const arrow::Schema& schema) {
    ArrowSchema c_schema;
    ARROW_RETURN_NOT_OK(arrow::ExportSchema(schema, &c_schema));
    Status status = FromDuck(duckdb_schema_from_arrow(connection, &c_schema, &converted),
                             "DuckDB cannot read these Arrow columns");
    if (c_schema.release != nullptr) c_schema.release(&c_schema);
    return status;
  }
};

/// `batch` (at most one DuckDB vector of rows) as a DuckDB chunk, which the caller destroys.
Result<duckdb_data_chunk> ToChunk(duckdb_connection connection, const ConvertedSchema& schema,
                                  const arrow::RecordBatch& batch) {
  ArrowArray c_array;
  ARROW_RETURN_NOT_OK(arrow::ExportRecordBatch(batch, &c_array));
  duckdb_data_chunk chunk = nullptr;
  // On success DuckDB owns the array's buffers; on failure they are still ours to release.
  Status status =
      FromDuck(duckdb_data_chunk_from_arrow(connection, &c_array, schema.converted, &chunk),
               "cannot convert Arrow rows for DuckDB");
  if (!status.ok()) {
    if (c_array.release != nullptr) c_array.release(&c_array);
    return status;
  }
  return chunk;
}

/// DuckDB runs a table function on at most as many threads as it has.
constexpr idx_t kMaxThreads = 1024;

struct FunctionInfo {
  duckdb_database database;  // The database the function is registered in outlives it.
  std::shared_ptr<const ArrowTables> tables;
};

struct BindData {
  std::string table;
  std::shared_ptr<arrow::Schema> schema;
};

/// A scan shared by DuckDB's threads: each takes the next slice of rows under the lock and
/// converts it on its own.
struct ScanState {
  std::mutex mutex;
  std::shared_ptr<arrow::RecordBatchReader> reader;
  // For each column DuckDB asked for, its position in the scanned batches; -1 for a row id,
  // which DuckDB asks for (e.g. for count(*)) but does not read.
  std::vector<int> sources;
  std::shared_ptr<arrow::RecordBatch> batch;
  int64_t offset = 0;

  /// The next rows, at most one DuckDB vector's worth; null at the end.
  Result<std::shared_ptr<arrow::RecordBatch>> NextSlice() {
    std::lock_guard lock(mutex);
    while (!batch || offset >= batch->num_rows()) {
      ARROW_ASSIGN_OR_RAISE(batch, reader->Next());
      offset = 0;
      if (!batch) return nullptr;
    }
    auto slice = batch->Slice(offset, static_cast<int64_t>(duckdb_vector_size()));
    offset += slice->num_rows();
    return slice;
  }
};

/// What one of DuckDB's threads converts with, set up at its first rows.
struct ThreadState {
  OwnConnection own;
  ConvertedSchema converted;
};

template <typename T>
void Delete(void* data) {
  delete static_cast<T*>(data);
}

/// The table function's result columns: the table's, with the DuckDB types of its Arrow ones.
Status Bind(duckdb_bind_info info) {
  const auto* function = static_cast<const FunctionInfo*>(duckdb_bind_get_extra_info(info));
  duckdb_value parameter = duckdb_bind_get_parameter(info, 0);
  char* text = duckdb_get_varchar(parameter);
  auto bind = std::make_unique<BindData>();
  bind->table = text != nullptr ? text : "";
  duckdb_free(text);
  duckdb_destroy_value(&parameter);
  ARROW_ASSIGN_OR_RAISE(bind->schema, function->tables->Schema(bind->table));
  // The types DuckDB gives the columns are those of an empty chunk converted from them.
  OwnConnection own;
  ARROW_RETURN_NOT_OK(own.Open(function->database));
  ConvertedSchema converted;
  ARROW_RETURN_NOT_OK(converted.Make(own.connection, *bind->schema));
  ARROW_ASSIGN_OR_RAISE(auto empty, arrow::RecordBatch::MakeEmpty(bind->schema));
  ARROW_ASSIGN_OR_RAISE(duckdb_data_chunk chunk, ToChunk(own.connection, converted, *empty));
  for (int i = 0; i < bind->schema->num_fields(); ++i) {
    duckdb_logical_type type =
        duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    duckdb_bind_add_result_column(info, bind->schema->field(i)->name().c_str(), type);
    duckdb_destroy_logical_type(&type);
  }
  duckdb_destroy_data_chunk(&chunk);
  duckdb_bind_set_bind_data(info, bind.release(), Delete<BindData>);
  return Status::OK();
}

/// Starts a scan of the columns the query uses.
Status Init(duckdb_init_info info) {
  const auto* function = static_cast<const FunctionInfo*>(duckdb_init_get_extra_info(info));
  const auto* bind = static_cast<const BindData*>(duckdb_init_get_bind_data(info));
  auto state = std::make_unique<ScanState>();
  std::vector<std::string> columns;
  for (idx_t i = 0; i < duckdb_init_get_column_count(info); ++i) {
    const idx_t index = duckdb_init_get_column_index(info, i);
    if (index >= static_cast<idx_t>(bind->schema->num_fields())) {
      state->sources.push_back(-1);
      continue;
    }
    state->sources.push_back(static_cast<int>(columns.size()));
    columns.push_back(bind->schema->field(static_cast<int>(index))->name());
  }
  ARROW_ASSIGN_OR_RAISE(state->reader, function->tables->Scan(bind->table, columns));
  duckdb_init_set_init_data(info, state.release(), Delete<ScanState>);
  // As many threads as DuckDB has; a query that must keep the rows' order reads with one.
  duckdb_init_set_max_threads(info, kMaxThreads);
  return Status::OK();
}

/// Fills `output` with the next rows, at most one vector's worth; none at the end.
Status Next(duckdb_function_info info, duckdb_data_chunk output) {
  auto* state = static_cast<ScanState*>(duckdb_function_get_init_data(info));
  auto* thread = static_cast<ThreadState*>(duckdb_function_get_local_init_data(info));
  ARROW_ASSIGN_OR_RAISE(auto slice, state->NextSlice());
  if (!slice) {
    duckdb_data_chunk_set_size(output, 0);
    return Status::OK();
  }
  if (slice->num_columns() > 0) {
    if (thread->own.connection == nullptr) {
      const auto* function = static_cast<const FunctionInfo*>(duckdb_function_get_extra_info(info));
      ARROW_RETURN_NOT_OK(thread->own.Open(function->database));
      ARROW_RETURN_NOT_OK(thread->converted.Make(thread->own.connection, *slice->schema()));
    }
    ARROW_ASSIGN_OR_RAISE(duckdb_data_chunk chunk,
                          ToChunk(thread->own.connection, thread->converted, *slice));
    for (size_t i = 0; i < state->sources.size(); ++i) {
      if (state->sources[i] < 0) continue;
      duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, i),
                                     duckdb_data_chunk_get_vector(chunk, state->sources[i]));
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_data_chunk_set_size(output, static_cast<idx_t>(slice->num_rows()));
  return Status::OK();
}

}  // namespace

Status DuckConnection::RegisterArrowScan(const std::string& function,
                                         std::shared_ptr<const ArrowTables> tables) {
  duckdb_table_function table_function = duckdb_create_table_function();
  duckdb_table_function_set_name(table_function, function.c_str());
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_add_parameter(table_function, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_table_function_set_extra_info(
      table_function, new FunctionInfo{impl_->database->impl_->database, std::move(tables)},
      Delete<FunctionInfo>);
  duckdb_table_function_set_bind(table_function, [](duckdb_bind_info info) {
    if (Status status = Bind(info); !status.ok()) {
      duckdb_bind_set_error(info, status.message().c_str());
    }
  });
  duckdb_table_function_set_init(table_function, [](duckdb_init_info info) {
    if (Status status = Init(info); !status.ok()) {
      duckdb_init_set_error(info, status.message().c_str());
    }
  });
  duckdb_table_function_set_local_init(table_function, [](duckdb_init_info info) {
    duckdb_init_set_init_data(info, new ThreadState, Delete<ThreadState>);
  });
  duckdb_table_function_set_function(table_function,
                                     [](duckdb_function_info info, duckdb_data_chunk output) {
                                       if (Status status = Next(info, output); !status.ok()) {
                                         duckdb_function_set_error(info, status.message().c_str());
                                       }
                                     });
  duckdb_table_function_supports_projection_pushdown(table_function, true);
  const duckdb_state state = duckdb_register_table_function(impl_->connection, table_function);
  duckdb_destroy_table_function(&table_function);
  return FromDuck(state, "cannot register the table function " + function, nullptr);
}

}  // namespace teatree
