#include "teatree/engine/duckdb/duckdb_status_internal.h"

namespace teatree {

Status FromDuck(duckdb_state state, std::string_view context, const char* detail) {
  if (state == DuckDBSuccess) return Status::OK();
  return Status::Invalid(context, ": ", detail != nullptr ? detail : "DuckDB reported an error");
}

Status FromDuck(duckdb_error_data error, std::string_view context) {
  if (error == nullptr) return Status::OK();
  Status status = Status::OK();
  if (duckdb_error_data_has_error(error)) {
    status = Status::Invalid(context, ": ", duckdb_error_data_message(error));
  }
  duckdb_destroy_error_data(&error);
  return status;
}

}  // namespace teatree
