#pragma once

#include <duckdb.h>

#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// The one conversion from DuckDB's C API results to Status. `detail` is DuckDB's message
/// (may be null); `context` says what Teatree was doing.
Status FromDuck(duckdb_state state, std::string_view context, const char* detail);
/// The same for the C API calls that report through duckdb_error_data; destroys `error`.
Status FromDuck(duckdb_error_data error, std::string_view context);

}  // namespace teatree
