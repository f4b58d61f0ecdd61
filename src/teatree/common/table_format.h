#pragma once

#include <string>

#include "teatree/common/status.h"

namespace arrow {
class Table;
}  // namespace arrow

namespace teatree {

/// Renders a table as aligned text for a terminal: a header row, a rule, one line per row;
/// numbers right-aligned, NULL shown as "NULL". Rows past `max_rows` are summarized.
Result<std::string> FormatTable(const arrow::Table& table, int64_t max_rows = 100);

}  // namespace teatree
