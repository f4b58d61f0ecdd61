#pragma once

#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace arrow {
class Table;
}  // namespace arrow

namespace teatree {

/// Renders a table as aligned text for a terminal: a header row, a rule, one line per row;
/// numbers right-aligned, NULL shown as "NULL". Rows past `max_rows` are summarized.
Result<std::string> FormatTable(const arrow::Table& table, int64_t max_rows = 100);

/// The ways `teatree query` and the HTTP query endpoint write results.
enum class ResultFormat {
  kTable,  // FormatTable's aligned text
  kCsv,    // RFC 4180 CSV with a header row
  kJson,   // a JSON array of row objects; lists as arrays, decimals and times as strings
  kArrow,  // an Arrow IPC stream
};

/// "table", "csv", "json" or "arrow"; anything else is refused naming those.
Result<ResultFormat> ParseResultFormat(std::string_view name);

/// `table` written in `format` (every row, also for kTable).
Result<std::string> WriteResult(const arrow::Table& table, ResultFormat format);

}  // namespace teatree
