#include "teatree/common/table_format.h"

#include <arrow/api.h>
#include <arrow/csv/writer.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "teatree/common/json_text.h"

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

/// Rows as JSON objects, one per line, each line after the first preceded by a comma.
Result<std::string> JsonRows(const arrow::RecordBatch& rows, bool first) {
  std::string out;
  const auto& fields = rows.schema()->fields();
  for (int64_t row = 0; row < rows.num_rows(); ++row) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (int column = 0; column < rows.num_columns(); ++column) {
      ARROW_ASSIGN_OR_RAISE(auto cell, rows.column(column)->GetScalar(row));
      object[fields[column]->name()] = CellJson(*cell);
    }
    out += (first && row == 0 ? "\n" : ",\n") + DumpJson(object);
  }
  return out;
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

/// Rows as CSV, with the header row before the first.
Result<std::string> CsvRows(const std::shared_ptr<arrow::RecordBatch>& rows, bool first) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(auto flat, NestedAsText(*table));
  auto options = arrow::csv::WriteOptions::Defaults();
  options.include_header = first;
  ARROW_RETURN_NOT_OK(arrow::csv::WriteCSV(*flat, options, sink.get()));
  ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
  return buffer->ToString();
}

}  // namespace

struct ResultWriter::State {
  ResultFormat format;
  std::shared_ptr<arrow::Schema> schema;
  bool first = true;
  arrow::RecordBatchVector held;  // kTable: aligned text needs every row first.
  std::shared_ptr<arrow::io::BufferOutputStream> sink;  // kArrow
  std::shared_ptr<arrow::ipc::RecordBatchWriter> ipc;   // kArrow

  /// What the IPC writer produced since the last call.
  Result<std::string> TakeIpc() {
    ARROW_ASSIGN_OR_RAISE(auto bytes, sink->Finish());
    ARROW_RETURN_NOT_OK(sink->Reset());
    return bytes->ToString();
  }
};

ResultWriter::ResultWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
ResultWriter::~ResultWriter() = default;

Result<std::unique_ptr<ResultWriter>> ResultWriter::Make(
    ResultFormat format, const std::shared_ptr<arrow::Schema>& schema) {
  auto state = std::make_unique<State>();
  state->format = format;
  state->schema = schema;
  if (format == ResultFormat::kArrow) {
    ARROW_ASSIGN_OR_RAISE(state->sink, arrow::io::BufferOutputStream::Create());
    ARROW_ASSIGN_OR_RAISE(state->ipc, arrow::ipc::MakeStreamWriter(state->sink, schema));
  }
  return std::unique_ptr<ResultWriter>(new ResultWriter(std::move(state)));
}

Result<std::string> ResultWriter::Write(const std::shared_ptr<arrow::RecordBatch>& rows) {
  State& s = *state_;
  const bool first = s.first;
  s.first = false;
  switch (s.format) {
    case ResultFormat::kTable:
      s.held.push_back(rows);
      return std::string();
    case ResultFormat::kCsv:
      return CsvRows(rows, first);
    case ResultFormat::kJson: {
      ARROW_ASSIGN_OR_RAISE(auto text, JsonRows(*rows, first));
      return (first ? "[" : "") + text;
    }
    case ResultFormat::kArrow:
      ARROW_RETURN_NOT_OK(s.ipc->WriteRecordBatch(*rows));
      return s.TakeIpc();
  }
  return Status::Invalid("unknown result format");
}

Result<std::string> ResultWriter::Finish() {
  State& s = *state_;
  switch (s.format) {
    case ResultFormat::kTable: {
      ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(s.schema, s.held));
      return FormatTable(*table, table->num_rows());
    }
    case ResultFormat::kCsv:
      if (!s.first) return std::string();
      // No rows: the header alone.
      {
        ARROW_ASSIGN_OR_RAISE(auto empty, arrow::RecordBatch::MakeEmpty(s.schema));
        return CsvRows(empty, true);
      }
    case ResultFormat::kJson:
      return s.first ? std::string("[]\n") : std::string("\n]\n");
    case ResultFormat::kArrow:
      ARROW_RETURN_NOT_OK(s.ipc->Close());
      return s.TakeIpc();
  }
  return Status::Invalid("unknown result format");
}

Result<ResultFormat> ParseResultFormat(std::string_view name) {
  if (name == "table") return ResultFormat::kTable;
  if (name == "csv") return ResultFormat::kCsv;
  if (name == "json") return ResultFormat::kJson;
  if (name == "arrow") return ResultFormat::kArrow;
  return Status::Invalid("unknown result format \"", name, "\": use table, csv, json or arrow");
}

Result<std::string> WriteResult(const arrow::Table& table, ResultFormat format) {
  ARROW_ASSIGN_OR_RAISE(auto writer, ResultWriter::Make(format, table.schema()));
  std::string out;
  for (const auto& batch : arrow::TableBatchReader(table)) {
    ARROW_ASSIGN_OR_RAISE(auto rows, batch);
    ARROW_ASSIGN_OR_RAISE(auto text, writer->Write(rows));
    out += text;
  }
  ARROW_ASSIGN_OR_RAISE(auto tail, writer->Finish());
  return out + tail;
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
