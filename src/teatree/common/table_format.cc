#include "teatree/common/table_format.h"

#include <arrow/api.h>

#include <algorithm>
#include <sstream>
#include <vector>

namespace teatree {
namespace {

/// A cell as people write values: lists as [a, b], NULL as NULL.
std::string CellText(const arrow::Scalar& scalar) {
  if (!scalar.is_valid) return "NULL";
  if (const auto* list = dynamic_cast<const arrow::BaseListScalar*>(&scalar)) {
    std::string text = "[";
    for (int64_t i = 0; i < list->value->length(); ++i) {
      auto item = list->value->GetScalar(i);
      text += (i ? ", " : "") + (item.ok() ? CellText(**item) : std::string("?"));
    }
    return text + "]";
  }
  return scalar.ToString();
}

}  // namespace

Result<std::string> FormatTable(const arrow::Table& table, int64_t max_rows) {
  const int columns = table.num_columns();
  const int64_t rows = std::min(table.num_rows(), max_rows);
  std::vector<std::vector<std::string>> cells(rows, std::vector<std::string>(columns));
  std::vector<size_t> widths(columns);
  std::vector<bool> numeric(columns);
  for (int c = 0; c < columns; ++c) {
    const auto& field = table.schema()->field(c);
    widths[c] = field->name().size();
    numeric[c] = arrow::is_numeric(field->type()->id()) || arrow::is_decimal(field->type()->id());
    for (int64_t r = 0; r < rows; ++r) {
      ARROW_ASSIGN_OR_RAISE(auto scalar, table.column(c)->GetScalar(r));
      cells[r][c] = CellText(*scalar);
      widths[c] = std::max(widths[c], cells[r][c].size());
    }
  }
  std::ostringstream out;
  auto pad = [&](const std::string& text, int c) {
    std::string fill(widths[c] - text.size(), ' ');
    out << (c ? "  " : "") << (numeric[c] ? fill + text : text + fill);
  };
  for (int c = 0; c < columns; ++c) pad(table.schema()->field(c)->name(), c);
  out << "\n";
  for (int c = 0; c < columns; ++c) out << (c ? "  " : "") << std::string(widths[c], '-');
  out << "\n";
  for (const auto& row : cells) {
    for (int c = 0; c < columns; ++c) pad(row[c], c);
    out << "\n";
  }
  if (table.num_rows() > rows) out << "... " << table.num_rows() - rows << " more rows\n";
  out << "(" << table.num_rows() << (table.num_rows() == 1 ? " row)" : " rows)") << "\n";
  return out.str();
}

}  // namespace teatree
