#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/column_change.h"
#include "teatree/request/expression.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// What a request asks the model's manager to do.
enum class Op {
  kCreateTable,
  kAppend,
  kUpsert,
  kUpdate,
  kDelete,
  kInvoke,
  kQuery,
  kSnapshot,
  kAttach,
  kDropTable,
  kAlterTable
};

/// "create_table", "append", "upsert", "update", "delete", "invoke", "query", "snapshot",
/// "attach", "drop_table", "alter_table".
std::string_view OpName(Op op);
/// The inverse of OpName(); an unknown name is an error listing the valid ones.
Result<Op> ParseOp(std::string_view name);

/// A file the manager reads rows from instead of inline rows, so large payloads need not
/// travel through the queue: a file in one of its input directories (`path`), or one a client
/// uploaded into the model's staging area (`staged`, the id the upload returned). Exactly one
/// of the two is set.
struct SourceRef {
  /// "parquet", "csv", "arrow" (an Arrow IPC file or stream) or "json" (the rows as the
  /// `rows` field takes them: a JSON array of arrays or of objects).
  std::string format;
  /// Relative to the manager's first input directory, or absolute under one; never contains
  /// a ".." segment.
  std::string path;
  /// The id of a staged upload (ValidateStagedId); the manager removes the upload once the
  /// request's outcome is out.
  std::string staged;

  bool operator==(const SourceRef& other) const = default;
};

/// One client request to a model, as every entry point (CLI, HTTP, NATS, C++ and Python
/// clients) sends it. Read and write it only with DecodeRequest() / EncodeRequest() (codec.h),
/// which validate it. A value type; safe for concurrent reads. Fields unused by `op` are
/// empty.
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's destructor may allocate.
struct Request {
  /// Client-chosen, unique per model: the request is applied at most once per id.
  std::string request_id;
  std::string model;
  Op op = Op::kSnapshot;
  /// create_table, append, upsert, update, delete, drop_table, alter_table.
  std::string table;
  /// create_table: the columns and primary key (schema->name == table).
  std::optional<TableSchema> schema;
  /// alter_table: the changes, applied in order and all or none.
  std::vector<ColumnChange> changes;
  /// create_table: "duckdb" or "arrow"; chooses the engine of a new model (the DuckDB engine
  /// when the first create_table names none). Empty: the model's engine.
  std::string engine;
  /// append/upsert: an array of arrays (values in column order) or of objects (by column
  /// name); null when absent. Exactly one of rows, rows_ipc and source is given.
  nlohmann::json rows;
  /// append/upsert: Arrow IPC stream bytes (base64 in the JSON field "rows_ipc").
  std::string rows_ipc;
  /// append/upsert: a file to read the rows from.
  std::optional<SourceRef> source;
  /// update: column = value, sorted by column.
  std::vector<std::pair<std::string, Expression>> set;
  /// update: the rows to change (absent: all rows); delete: required ({"literal": true}
  /// deletes every row).
  std::optional<Expression> where;
  /// invoke: the registered function and its named arguments (a JSON object).
  std::string function;
  nlohmann::json args;
  /// query: the SQL and the number of rows per result page (1..1000000).
  std::string sql;
  int64_t page_rows = 1000;
  /// attach: the name SQL sees and the read-only DuckDB file.
  std::string name, path;
  /// SHA-256 (hex) of the canonical encoding without request_id, set by DecodeRequest(): the
  /// same id arriving with a different payload_hash is a different request reusing an id.
  std::string payload_hash;

  bool operator==(const Request& other) const = default;
};

}  // namespace teatree
