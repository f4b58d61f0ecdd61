#include "teatree/engine/duckdb/duckdb_database.h"

#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/util/utf8.h>
#include <duckdb.h>

#include <vector>

#include "teatree/engine/duckdb/duckdb_database_internal.h"
#include "teatree/engine/duckdb/duckdb_status_internal.h"

namespace teatree {
namespace {

/// Owns a prepared statement.
struct PreparedHandle {
  duckdb_prepared_statement statement = nullptr;
  ~PreparedHandle() { duckdb_destroy_prepare(&statement); }
};

/// Owns a materialized or streaming duckdb_result, and the statement a stream comes from.
struct ResultHandle {
  PreparedHandle prepared;
  duckdb_result result{};
  ~ResultHandle() { duckdb_destroy_result(&result); }
};

/// Describes DuckDB columns as an Arrow schema, the way DuckDB converts their values.
Result<std::shared_ptr<arrow::Schema>> ToArrowSchema(duckdb_arrow_options options,
                                                     std::vector<duckdb_logical_type>& types,
                                                     std::vector<const char*>& names) {
  ArrowSchema c_schema;
  duckdb_error_data error =
      duckdb_to_arrow_schema(options, types.data(), names.data(), types.size(), &c_schema);
  for (auto& type : types) duckdb_destroy_logical_type(&type);
  ARROW_RETURN_NOT_OK(FromDuck(error, "cannot describe a DuckDB result as an Arrow schema"));
  return arrow::ImportSchema(&c_schema);
}

/// Owns a duckdb_value.
struct ValueHandle {
  duckdb_value value = nullptr;
  ~ValueHandle() { duckdb_destroy_value(&value); }
};

duckdb_value MakeValue(const DuckParam& param) {
  struct Visitor {
    duckdb_value operator()(std::monostate) const { return nullptr; }
    duckdb_value operator()(bool v) const { return duckdb_create_bool(v); }
    duckdb_value operator()(int64_t v) const { return duckdb_create_int64(v); }
    duckdb_value operator()(double v) const { return duckdb_create_double(v); }
    duckdb_value operator()(const std::string& v) const {
      return duckdb_create_varchar_length(v.data(), v.size());
    }
  };
  return std::visit(Visitor{}, param);
}

/// Binds every `$name` placeholder the statement uses from `params`; extra params are ignored.
Status BindParams(duckdb_prepared_statement statement, const DuckParams& params) {
  const idx_t count = duckdb_nparams(statement);
  for (idx_t index = 1; index <= count; ++index) {
    const char* raw_name = duckdb_parameter_name(statement, index);
    const std::string name = raw_name != nullptr ? raw_name : std::to_string(index);
    duckdb_free(const_cast<char*>(raw_name));
    auto it = params.find(name);
    if (it == params.end()) {
      return Status::Invalid("the statement uses $", name, " but no value was given for it");
    }
    const DuckParam& param = it->second;
    // DuckDB throws a C++ exception through its C API for text that is not UTF-8, which ends
    // the process; refuse it here instead.
    if (const auto* text = std::get_if<std::string>(&param)) {
      arrow::util::InitializeUTF8();
      if (!arrow::util::ValidateUTF8(reinterpret_cast<const uint8_t*>(text->data()),
                                     static_cast<int64_t>(text->size()))) {
        return Status::Invalid("the value for $", name, " is not valid UTF-8 text");
      }
    }
    ValueHandle value{MakeValue(param)};
    duckdb_state state = value.value == nullptr ? duckdb_bind_null(statement, index)
                                                : duckdb_bind_value(statement, index, value.value);
    ARROW_RETURN_NOT_OK(FromDuck(state, "cannot bind parameter $" + name, nullptr));
  }
  return Status::OK();
}

/// Streams a DuckDB result as Arrow record batches: each DuckDB chunk is converted to Arrow
/// columns by DuckDB itself and handed over through the C data interface.
class DuckResultReader final : public arrow::RecordBatchReader {
 public:
  static Result<std::unique_ptr<DuckResultReader>> Make(std::unique_ptr<ResultHandle> handle) {
    auto reader = std::unique_ptr<DuckResultReader>(new DuckResultReader(std::move(handle)));
    ARROW_RETURN_NOT_OK(reader->ImportSchema());
    return reader;
  }

  ~DuckResultReader() override { duckdb_destroy_arrow_options(&options_); }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(handle_->result);
    if (chunk == nullptr) {
      out->reset();
      // A stream ends early, without a chunk, when it fails (e.g. when interrupted).
      const char* error = duckdb_result_error(&handle_->result);
      return error != nullptr ? FromDuck(DuckDBError, "DuckDB query failed", error) : Status::OK();
    }
    ArrowArray array;
    duckdb_error_data error = duckdb_data_chunk_to_arrow(options_, chunk, &array);
    duckdb_destroy_data_chunk(&chunk);
    ARROW_RETURN_NOT_OK(FromDuck(error, "cannot convert a DuckDB result chunk to Arrow"));
    ARROW_ASSIGN_OR_RAISE(*out, arrow::ImportRecordBatch(&array, schema_));
    return Status::OK();
  }

 private:
  explicit DuckResultReader(std::unique_ptr<ResultHandle> handle)
      : handle_(std::move(handle)), options_(duckdb_result_get_arrow_options(&handle_->result)) {}

  Status ImportSchema() {
    duckdb_result* result = &handle_->result;
    const idx_t count = duckdb_column_count(result);
    std::vector<duckdb_logical_type> types(count);
    std::vector<const char*> names(count);
    for (idx_t i = 0; i < count; ++i) {
      types[i] = duckdb_column_logical_type(result, i);
      names[i] = duckdb_column_name(result, i);
    }
    ARROW_ASSIGN_OR_RAISE(schema_, ToArrowSchema(options_, types, names));
    return Status::OK();
  }

  std::unique_ptr<ResultHandle> handle_;
  duckdb_arrow_options options_;
  std::shared_ptr<arrow::Schema> schema_;
};

}  // namespace

DuckDatabase::DuckDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DuckDatabase::~DuckDatabase() = default;

Result<std::shared_ptr<DuckDatabase>> DuckDatabase::Open(const DuckDatabaseOptions& options) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) != DuckDBSuccess) {
    return Status::OutOfMemory("cannot allocate a DuckDB configuration");
  }
  auto settings = options.settings;
  if (options.read_only) settings["access_mode"] = "READ_ONLY";
  for (const auto& [name, value] : settings) {
    if (duckdb_set_config(config, name.c_str(), value.c_str()) != DuckDBSuccess) {
      duckdb_destroy_config(&config);
      return Status::Invalid("DuckDB setting ", name, "=", value, " is not valid");
    }
  }
  auto impl = std::make_unique<Impl>();
  char* error = nullptr;
  duckdb_state state = duckdb_open_ext(options.path.c_str(), &impl->database, config, &error);
  duckdb_destroy_config(&config);
  Status status = FromDuck(state, "cannot open DuckDB database " + options.path, error);
  if (error != nullptr) duckdb_free(error);
  ARROW_RETURN_NOT_OK(status);
  return std::shared_ptr<DuckDatabase>(new DuckDatabase(std::move(impl)));
}

Result<std::unique_ptr<DuckConnection>> DuckDatabase::Connect() {
  auto impl = std::make_unique<DuckConnection::Impl>();
  impl->database = shared_from_this();
  ARROW_RETURN_NOT_OK(FromDuck(duckdb_connect(impl_->database, &impl->connection),
                               "cannot connect to DuckDB database", nullptr));
  return std::unique_ptr<DuckConnection>(new DuckConnection(std::move(impl)));
}

std::string DuckDatabase::LibraryVersion() { return duckdb_library_version(); }

DuckConnection::DuckConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DuckConnection::~DuckConnection() = default;

Status DuckConnection::Execute(const std::string& sql) {
  ResultHandle handle;
  duckdb_state state = duckdb_query(impl_->connection, sql.c_str(), &handle.result);
  return FromDuck(state, "DuckDB statement failed", duckdb_result_error(&handle.result));
}

Result<int64_t> DuckConnection::ExecuteCount(const std::string& sql) {
  ResultHandle handle;
  duckdb_state state = duckdb_query(impl_->connection, sql.c_str(), &handle.result);
  ARROW_RETURN_NOT_OK(
      FromDuck(state, "DuckDB statement failed", duckdb_result_error(&handle.result)));
  return static_cast<int64_t>(duckdb_rows_changed(&handle.result));
}

struct DuckStatement::Impl {
  PreparedHandle prepared;

  Result<std::unique_ptr<ResultHandle>> Run(const DuckParams& params) {
    ARROW_RETURN_NOT_OK(BindParams(prepared.statement, params));
    auto handle = std::make_unique<ResultHandle>();
    duckdb_state state = duckdb_execute_prepared(prepared.statement, &handle->result);
    ARROW_RETURN_NOT_OK(
        FromDuck(state, "DuckDB statement failed", duckdb_result_error(&handle->result)));
    return handle;
  }
};

DuckStatement::DuckStatement(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DuckStatement::~DuckStatement() = default;

Status DuckStatement::Execute(const DuckParams& params) { return impl_->Run(params).status(); }

Result<std::shared_ptr<arrow::Table>> DuckStatement::Query(const DuckParams& params) {
  ARROW_ASSIGN_OR_RAISE(auto handle, impl_->Run(params));
  ARROW_ASSIGN_OR_RAISE(auto reader, DuckResultReader::Make(std::move(handle)));
  return reader->ToTable();
}

Result<std::unique_ptr<DuckStatement>> DuckConnection::Prepare(const std::string& sql) {
  auto impl = std::make_unique<DuckStatement::Impl>();
  duckdb_state state = duckdb_prepare(impl_->connection, sql.c_str(), &impl->prepared.statement);
  ARROW_RETURN_NOT_OK(
      FromDuck(state, "DuckDB statement failed", duckdb_prepare_error(impl->prepared.statement)));
  return std::unique_ptr<DuckStatement>(new DuckStatement(std::move(impl)));
}

Result<std::shared_ptr<arrow::Table>> DuckConnection::QueryParams(const std::string& sql,
                                                                  const DuckParams& params) {
  ARROW_ASSIGN_OR_RAISE(auto statement, Prepare(sql));
  return statement->Query(params);
}

Result<bool> DuckConnection::IsSingleSelect(const std::string& sql) {
  duckdb_extracted_statements extracted = nullptr;
  idx_t count = duckdb_extract_statements(impl_->connection, sql.c_str(), &extracted);
  struct Cleanup {
    duckdb_extracted_statements* extracted;
    ~Cleanup() { duckdb_destroy_extracted(extracted); }
  } cleanup{&extracted};
  if (count == 0) {
    return FromDuck(DuckDBError, "cannot parse SQL", duckdb_extract_statements_error(extracted));
  }
  if (count != 1) return false;
  PreparedHandle prepared;
  duckdb_state state =
      duckdb_prepare_extracted_statement(impl_->connection, extracted, 0, &prepared.statement);
  ARROW_RETURN_NOT_OK(FromDuck(state, "invalid SQL", duckdb_prepare_error(prepared.statement)));
  return duckdb_prepared_statement_type(prepared.statement) == DUCKDB_STATEMENT_TYPE_SELECT;
}

Result<size_t> DuckConnection::CountStatements(const std::string& sql) {
  duckdb_extracted_statements extracted = nullptr;
  idx_t count = duckdb_extract_statements(impl_->connection, sql.c_str(), &extracted);
  Status status = count == 0 ? FromDuck(DuckDBError, "cannot parse SQL",
                                        duckdb_extract_statements_error(extracted))
                             : Status::OK();
  duckdb_destroy_extracted(&extracted);
  ARROW_RETURN_NOT_OK(status);
  return static_cast<size_t>(count);
}

Result<std::unique_ptr<arrow::RecordBatchReader>> DuckConnection::Query(const std::string& sql) {
  auto handle = std::make_unique<ResultHandle>();
  duckdb_state state = duckdb_query(impl_->connection, sql.c_str(), &handle->result);
  ARROW_RETURN_NOT_OK(FromDuck(state, "DuckDB query failed", duckdb_result_error(&handle->result)));
  ARROW_ASSIGN_OR_RAISE(auto reader, DuckResultReader::Make(std::move(handle)));
  return std::unique_ptr<arrow::RecordBatchReader>(std::move(reader));
}

Result<std::unique_ptr<arrow::RecordBatchReader>> DuckConnection::Stream(const std::string& sql,
                                                                         const DuckParams& params) {
  auto handle = std::make_unique<ResultHandle>();
  duckdb_prepared_statement& statement = handle->prepared.statement;
  duckdb_state state = duckdb_prepare(impl_->connection, sql.c_str(), &statement);
  ARROW_RETURN_NOT_OK(FromDuck(state, "DuckDB query failed", duckdb_prepare_error(statement)));
  ARROW_RETURN_NOT_OK(BindParams(statement, params));
  duckdb_pending_result pending = nullptr;
  state = duckdb_pending_prepared_streaming(statement, &pending);
  if (state == DuckDBSuccess) state = duckdb_execute_pending(pending, &handle->result);
  Status status =
      FromDuck(state, "DuckDB query failed",
               pending == nullptr                         ? duckdb_prepare_error(statement)
               : duckdb_pending_error(pending) != nullptr ? duckdb_pending_error(pending)
                                                          : duckdb_result_error(&handle->result));
  duckdb_destroy_pending(&pending);
  ARROW_RETURN_NOT_OK(status);
  ARROW_ASSIGN_OR_RAISE(auto reader, DuckResultReader::Make(std::move(handle)));
  return std::unique_ptr<arrow::RecordBatchReader>(std::move(reader));
}

Result<std::shared_ptr<arrow::Schema>> DuckConnection::Describe(const std::string& sql) {
  PreparedHandle prepared;
  duckdb_state state = duckdb_prepare(impl_->connection, sql.c_str(), &prepared.statement);
  ARROW_RETURN_NOT_OK(FromDuck(state, "invalid SQL", duckdb_prepare_error(prepared.statement)));
  const idx_t count = duckdb_prepared_statement_column_count(prepared.statement);
  std::vector<duckdb_logical_type> types(count);
  std::vector<std::string> owned_names(count);
  std::vector<const char*> names(count);
  for (idx_t i = 0; i < count; ++i) {
    types[i] = duckdb_prepared_statement_column_logical_type(prepared.statement, i);
    const char* name = duckdb_prepared_statement_column_name(prepared.statement, i);
    owned_names[i] = name != nullptr ? name : "";
    duckdb_free(const_cast<char*>(name));
    names[i] = owned_names[i].c_str();
  }
  duckdb_arrow_options options = nullptr;
  duckdb_connection_get_arrow_options(impl_->connection, &options);
  auto schema = ToArrowSchema(options, types, names);
  duckdb_destroy_arrow_options(&options);
  return schema;
}

void DuckConnection::Interrupt() { duckdb_interrupt(impl_->connection); }

Result<std::shared_ptr<arrow::Table>> DuckConnection::QueryTable(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto reader, Query(sql));
  return reader->ToTable();
}

Status DuckConnection::RegisterArrowView(const std::string& name,
                                         std::shared_ptr<arrow::RecordBatchReader> reader) {
  auto stream = std::make_unique<ArrowArrayStream>();
  ARROW_RETURN_NOT_OK(arrow::ExportRecordBatchReader(std::move(reader), stream.get()));
  // DuckDB reads the stream through this pointer; the stream stays owned by us.
  duckdb_state state = duckdb_arrow_scan(impl_->connection, name.c_str(),
                                         reinterpret_cast<duckdb_arrow_stream>(stream.get()));
  impl_->streams.push_back(std::move(stream));
  return FromDuck(state, "cannot register Arrow stream as DuckDB view " + name, nullptr);
}

Result<int64_t> DuckConnection::AppendArrow(const std::string& table, const arrow::Table& rows) {
  constexpr int64_t kChunkRows = 2048;  // DuckDB's vector size: one data chunk at most.
  const std::string context = "cannot append to table " + table;
  ArrowSchema c_schema;
  ARROW_RETURN_NOT_OK(arrow::ExportSchema(*rows.schema(), &c_schema));
  duckdb_arrow_converted_schema converted = nullptr;
  Status status =
      FromDuck(duckdb_schema_from_arrow(impl_->connection, &c_schema, &converted), context);
  if (c_schema.release != nullptr) c_schema.release(&c_schema);
  struct Cleanup {
    duckdb_arrow_converted_schema* converted;
    duckdb_appender appender = nullptr;
    ~Cleanup() {
      duckdb_destroy_arrow_converted_schema(converted);
      if (appender != nullptr) duckdb_appender_destroy(&appender);
    }
  } cleanup{&converted};
  ARROW_RETURN_NOT_OK(status);
  if (duckdb_appender_create(impl_->connection, nullptr, table.c_str(), &cleanup.appender) !=
      DuckDBSuccess) {
    return FromDuck(duckdb_appender_error_data(cleanup.appender), context);
  }
  arrow::TableBatchReader chunks(rows);
  chunks.set_chunksize(kChunkRows);
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(chunks.ReadNext(&batch));
    if (batch == nullptr) break;
    ArrowArray c_array;
    ARROW_RETURN_NOT_OK(arrow::ExportRecordBatch(*batch, &c_array));
    duckdb_data_chunk chunk = nullptr;
    // DuckDB takes ownership of the array's buffers.
    ARROW_RETURN_NOT_OK(FromDuck(
        duckdb_data_chunk_from_arrow(impl_->connection, &c_array, converted, &chunk), context));
    duckdb_state state = duckdb_append_data_chunk(cleanup.appender, chunk);
    duckdb_destroy_data_chunk(&chunk);
    if (state != DuckDBSuccess) {
      return FromDuck(duckdb_appender_error_data(cleanup.appender), context);
    }
  }
  if (duckdb_appender_close(cleanup.appender) != DuckDBSuccess) {
    return FromDuck(duckdb_appender_error_data(cleanup.appender), context);
  }
  return rows.num_rows();
}

Status DuckConnection::WithArrowView(const std::string& name,
                                     std::shared_ptr<arrow::RecordBatchReader> reader,
                                     const std::function<Status()>& body) {
  ArrowArrayStream stream;
  ARROW_RETURN_NOT_OK(arrow::ExportRecordBatchReader(std::move(reader), &stream));
  struct Release {
    ArrowArrayStream* stream;
    ~Release() {
      if (stream->release != nullptr) stream->release(stream);
    }
  } release{&stream};
  duckdb_state state = duckdb_arrow_scan(impl_->connection, name.c_str(),
                                         reinterpret_cast<duckdb_arrow_stream>(&stream));
  ARROW_RETURN_NOT_OK(
      FromDuck(state, "cannot register Arrow stream as DuckDB view " + name, nullptr));
  Status status = body();
  Status dropped = Execute("DROP VIEW IF EXISTS \"" + name + "\"");
  return status.ok() ? dropped : status;
}

}  // namespace teatree
