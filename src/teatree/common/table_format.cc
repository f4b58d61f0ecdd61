#include "teatree/common/table_format.h"

#include <arrow/api.h>
#include <arrow/csv/writer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>

#include <algorithm>
#include <nlohmann/json.hpp>
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

/// A cell as a JSON value: numbers and booleans as such, lists as arrays, everything else
/// (decimals, dates, times, text) as its text.
nlohmann::json CellJson(const arrow::Scalar& scalar) {
  if (!scalar.is_valid) return nullptr;
  switch (scalar.type->id()) {
    case arrow::Type::BOOL:
      return static_cast<const arrow::BooleanScalar&>(scalar).value;
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64: {
      auto cast = scalar.CastTo(arrow::int64());
      return cast.ok() ? nlohmann::json(static_cast<const arrow::Int64Scalar&>(**cast).value)
                       : nlohmann::json(scalar.ToString());
    }
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE: {
      auto cast = scalar.CastTo(arrow::float64());
      return cast.ok() ? nlohmann::json(static_cast<const arrow::DoubleScalar&>(**cast).value)
                       : nlohmann::json(scalar.ToString());
    }
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringScalar&>(scalar).view());
    default:
      break;
  }
  if (const auto* list = dynamic_cast<const arrow::BaseListScalar*>(&scalar)) {
    nlohmann::json items = nlohmann::json::array();
    for (int64_t i = 0; i < list->value->length(); ++i) {
      auto item = list->value->GetScalar(i);
      items.push_back(item.ok() ? CellJson(**item) : nlohmann::json(nullptr));
    }
    return items;
  }
  return scalar.ToString();
}

Result<std::string> ToJsonRows(const arrow::Table& table) {
  std::string out = "[";
  const auto& fields = table.schema()->fields();
  for (const auto& batch : arrow::TableBatchReader(table)) {
    ARROW_ASSIGN_OR_RAISE(auto rows, batch);
    for (int64_t row = 0; row < rows->num_rows(); ++row) {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      for (int column = 0; column < rows->num_columns(); ++column) {
        ARROW_ASSIGN_OR_RAISE(auto cell, rows->column(column)->GetScalar(row));
        object[fields[column]->name()] = CellJson(*cell);
      }
      out += (out.size() > 1 ? ",\n" : "\n") + object.dump();
    }
  }
  return out + "\n]\n";
}

/// Nested columns (lists), which CSV has no type for, as text such as [a, b].
Result<std::shared_ptr<arrow::Table>> NestedAsText(const arrow::Table& table) {
  std::vector<std::shared_ptr<arrow::Field>> fields = table.schema()->fields();
  std::vector<std::shared_ptr<arrow::ChunkedArray>> columns = table.columns();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!arrow::is_nested(fields[i]->type()->id())) continue;
    arrow::StringBuilder text;
    for (int64_t row = 0; row < table.num_rows(); ++row) {
      ARROW_ASSIGN_OR_RAISE(auto cell, columns[i]->GetScalar(row));
      ARROW_RETURN_NOT_OK(cell->is_valid ? text.Append(CellText(*cell)) : text.AppendNull());
    }
    ARROW_ASSIGN_OR_RAISE(auto array, text.Finish());
    columns[i] = std::make_shared<arrow::ChunkedArray>(array);
    fields[i] = arrow::field(fields[i]->name(), arrow::utf8());
  }
  return arrow::Table::Make(arrow::schema(fields), columns, table.num_rows());
}

Result<std::string> ToCsv(const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto flat, NestedAsText(table));
  ARROW_RETURN_NOT_OK(
      arrow::csv::WriteCSV(*flat, arrow::csv::WriteOptions::Defaults(), sink.get()));
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  return buffer->ToString();
}

Result<std::string> ToArrowStream(const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, table.schema()));
  ARROW_RETURN_NOT_OK(writer->WriteTable(table));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  return buffer->ToString();
}

}  // namespace

Result<ResultFormat> ParseResultFormat(std::string_view name) {
  if (name == "table") return ResultFormat::kTable;
  if (name == "csv") return ResultFormat::kCsv;
  if (name == "json") return ResultFormat::kJson;
  if (name == "arrow") return ResultFormat::kArrow;
  return Status::Invalid("unknown result format \"", name, "\": use table, csv, json or arrow");
}

Result<std::string> WriteResult(const arrow::Table& table, ResultFormat format) {
  switch (format) {
    case ResultFormat::kTable:
      return FormatTable(table, table.num_rows());
    case ResultFormat::kCsv:
      return ToCsv(table);
    case ResultFormat::kJson:
      return ToJsonRows(table);
    case ResultFormat::kArrow:
      return ToArrowStream(table);
  }
  return Status::Invalid("unknown result format");
}

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
