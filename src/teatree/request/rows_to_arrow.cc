#include "teatree/request/rows_to_arrow.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "teatree/request/message_internal.h"
#include "teatree/request/temporal_internal.h"

namespace teatree {
namespace {

using nlohmann::json;
using request_internal::Quoted;
using request_internal::Snippet;
using Kind = ColumnType::Kind;

constexpr int kMaxDecimalPrecision = 38;

// ---------------------------------------------------------------------------------------
// JSON rows.

// Row-major pointers to the cells of the rows; nullptr where an object row lacks a column.
struct Cells {
  int64_t rows = 0;
  size_t columns = 0;
  std::vector<const json*> cells;

  const json* at(int64_t row, size_t column) const { return cells[row * columns + column]; }
};

Status IndexObjectRow(const json& row, int64_t r, const TableSchema& schema,
                      const std::unordered_map<std::string_view, size_t>& index, Cells* out) {
  for (auto it = row.begin(); it != row.end(); ++it) {
    const auto found = index.find(it.key());
    if (found == index.end()) {
      return Status::Invalid("row ", r + 1, " has column ", Quoted(it.key()), ", which table ",
                             schema.name, " does not have (columns: ", schema.ColumnNames(), ")");
    }
    out->cells[r * out->columns + found->second] = &it.value();
  }
  return Status::OK();
}

Result<Cells> IndexRows(const json& rows, const TableSchema& schema) {
  if (!rows.is_array()) {
    return Status::Invalid("rows must be an array of rows, got ", Snippet(rows));
  }
  Cells out;
  out.rows = static_cast<int64_t>(rows.size());
  out.columns = schema.columns.size();
  out.cells.assign(out.rows * out.columns, nullptr);
  std::unordered_map<std::string_view, size_t> index;
  for (size_t c = 0; c < out.columns; ++c) index.emplace(schema.columns[c].name, c);
  for (int64_t r = 0; r < out.rows; ++r) {
    const json& row = rows[r];
    if (row.is_object()) {
      ARROW_RETURN_NOT_OK(IndexObjectRow(row, r, schema, index, &out));
    } else if (!row.is_array()) {
      return Status::Invalid("row ", r + 1, " is ", Snippet(row),
                             ": each row must be an array of values or an object by column name");
    } else if (row.size() != out.columns) {
      return Status::Invalid("row ", r + 1, " has ", row.size(), " values, table ", schema.name,
                             " has ", out.columns, " columns (", schema.ColumnNames(), ")");
    } else {
      for (size_t c = 0; c < out.columns; ++c) out.cells[r * out.columns + c] = &row[c];
    }
  }
  return out;
}

std::string Expected(const ColumnType& type) {
  switch (type.kind) {
    case Kind::kDate:
      return "DATE " + std::string(request_internal::kDateFormat);
    case Kind::kTimestamp:
      return "TIMESTAMP " + std::string(request_internal::kTimestampFormat);
    case Kind::kTimestampTz:
      return "TIMESTAMPTZ " + std::string(request_internal::kTimestampTzFormat);
    case Kind::kList:
      return type.ToString() + " (a JSON array)";
    default:
      return type.ToString();
  }
}

Status Mismatch(const ColumnType& type, const json& value) {
  return Status::Invalid("expected ", Expected(type), ", got ", Snippet(value));
}

Status AppendValue(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder);

Status AppendInteger(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder) {
  int64_t number;
  if (value.is_number_unsigned()) {
    const uint64_t unsigned_number = value.get<uint64_t>();
    if (unsigned_number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::Invalid(Snippet(value), " is out of range for ", type.ToString());
    }
    number = static_cast<int64_t>(unsigned_number);
  } else if (value.is_number_integer()) {
    number = value.get<int64_t>();
  } else {
    return Mismatch(type, value);
  }
  if (type.kind == Kind::kBigint) {
    return static_cast<arrow::Int64Builder*>(builder)->Append(number);
  }
  if (number < std::numeric_limits<int32_t>::min() ||
      number > std::numeric_limits<int32_t>::max()) {
    return Status::Invalid(Snippet(value), " is out of range for INTEGER (use BIGINT for ",
                           "larger numbers)");
  }
  return static_cast<arrow::Int32Builder*>(builder)->Append(static_cast<int32_t>(number));
}

// Parses `text` exactly as a value of DECIMAL(p,s), refusing values with more digits before
// or after the point than the type holds (no silent rounding).
Result<arrow::Decimal128> ParseDecimal(std::string_view text, const ColumnType& type,
                                       const json& value) {
  arrow::Decimal128 decimal;
  int32_t precision = 0, scale = 0;
  if (!arrow::Decimal128::FromString(text, &decimal, &precision, &scale).ok()) {
    return Mismatch(type, value);
  }
  const Status too_many_digits = Status::Invalid(
      Snippet(value), " does not fit ", type.ToString(), ": it allows at most ",
      type.precision - type.scale, " digits before the point and ", type.scale, " after it");
  if (precision > kMaxDecimalPrecision || precision - scale > type.precision - type.scale) {
    return too_many_digits;
  }
  auto rescaled = decimal.Rescale(scale, type.scale);
  if (!rescaled.ok() || !rescaled->FitsInPrecision(type.precision)) return too_many_digits;
  return *rescaled;
}

Status AppendDecimal(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number_unsigned()) {
    text = std::to_string(value.get<uint64_t>());
  } else if (value.is_number_integer()) {
    text = std::to_string(value.get<int64_t>());
  } else if (value.is_number_float()) {
    // The shortest text that reads back as the same double: what the client wrote, in
    // practice ("9.95", not 9.949999999999999289...).
    char buffer[64];
    auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value.get<double>());
    if (error != std::errc()) return Mismatch(type, value);
    text.assign(buffer, end);
  } else {
    return Mismatch(type, value);
  }
  ARROW_ASSIGN_OR_RAISE(arrow::Decimal128 decimal, ParseDecimal(text, type, value));
  return static_cast<arrow::Decimal128Builder*>(builder)->Append(decimal);
}

Status AppendTemporal(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder) {
  if (!value.is_string()) return Mismatch(type, value);
  const std::string& text = value.get_ref<const std::string&>();
  if (type.kind == Kind::kDate) {
    int32_t days;
    if (!request_internal::ParseDate(text, &days)) return Mismatch(type, value);
    return static_cast<arrow::Date32Builder*>(builder)->Append(days);
  }
  const auto zone = type.kind == Kind::kTimestampTz ? request_internal::ZoneOffset::kRequired
                                                    : request_internal::ZoneOffset::kForbidden;
  int64_t micros;
  if (!request_internal::ParseTimestamp(text, zone, &micros)) return Mismatch(type, value);
  return static_cast<arrow::TimestampBuilder*>(builder)->Append(micros);
}

Status AppendList(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder) {
  if (!value.is_array()) return Mismatch(type, value);
  auto* list = static_cast<arrow::ListBuilder*>(builder);
  ARROW_RETURN_NOT_OK(list->Append());
  arrow::ArrayBuilder* elements = list->value_builder();
  for (size_t i = 0; i < value.size(); ++i) {
    const json& element = value[i];
    Status status =
        element.is_null() ? elements->AppendNull() : AppendValue(*type.element, element, elements);
    if (!status.ok()) return status.WithMessage("list element ", i + 1, ": ", status.message());
  }
  return Status::OK();
}

// Appends one non-null JSON value; errors say what was wrong, without the position.
Status AppendValue(const ColumnType& type, const json& value, arrow::ArrayBuilder* builder) {
  switch (type.kind) {
    case Kind::kBoolean:
      if (!value.is_boolean()) return Mismatch(type, value);
      return static_cast<arrow::BooleanBuilder*>(builder)->Append(value.get<bool>());
    case Kind::kInteger:
    case Kind::kBigint:
      return AppendInteger(type, value, builder);
    case Kind::kDouble:
      if (!value.is_number()) return Mismatch(type, value);
      return static_cast<arrow::DoubleBuilder*>(builder)->Append(value.get<double>());
    case Kind::kDecimal:
      return AppendDecimal(type, value, builder);
    case Kind::kVarchar:
    case Kind::kBlob:
      // StringBuilder is a BinaryBuilder; JSON strings are valid UTF-8.
      if (!value.is_string()) return Mismatch(type, value);
      return static_cast<arrow::BinaryBuilder*>(builder)->Append(
          value.get_ref<const std::string&>());
    case Kind::kDate:
    case Kind::kTimestamp:
    case Kind::kTimestampTz:
      return AppendTemporal(type, value, builder);
    case Kind::kList:
      return AppendList(type, value, builder);
  }
  return Mismatch(type, value);
}

Status FillColumn(const Cells& cells, size_t c, const TableSchema& schema,
                  arrow::ArrayBuilder* builder) {
  const ColumnSpec& column = schema.columns[c];
  const bool key = schema.IsKey(column.name);
  ARROW_RETURN_NOT_OK(builder->Reserve(cells.rows));
  for (int64_t r = 0; r < cells.rows; ++r) {
    const json* value = cells.at(r, c);
    Status status;
    if (value == nullptr || value->is_null()) {
      if (key) {
        return Status::Invalid("row ", r + 1, ", column ", Quoted(column.name),
                               ": NULL in a key column; every row needs a value for the key (",
                               request_internal::Join(schema.primary_key), ")");
      }
      status = builder->AppendNull();
    } else {
      status = AppendValue(column.type, *value, builder);
    }
    if (!status.ok()) {
      return status.WithMessage("row ", r + 1, ", column ", Quoted(column.name), ": ",
                                status.message());
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Arrow IPC.

// The end-of-stream marker every stream writer writes on Close(): continuation token, then
// a zero metadata length.
constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};

Status IpcError(std::string_view what, const Status& status) {
  return Status::Invalid("rows_ipc is not a valid Arrow IPC stream (", what,
                         "): ", status.message());
}

std::string DescribeColumns(const TableSchema& table) {
  std::vector<std::string> columns;
  for (const auto& column : table.columns) {
    columns.push_back(column.name + " " + column.type.ToString());
  }
  return request_internal::Join(columns);
}

Status CheckIpcSchema(const arrow::Schema& got, const TableSchema& table) {
  if (static_cast<size_t>(got.num_fields()) != table.columns.size()) {
    return Status::Invalid("rows_ipc has ", got.num_fields(), " columns (",
                           request_internal::Join(got.field_names()), "), table ", table.name,
                           " has ", table.columns.size(), " (", DescribeColumns(table), ")");
  }
  for (int i = 0; i < got.num_fields(); ++i) {
    const arrow::Field& field = *got.field(i);
    const ColumnSpec& expected = table.columns[i];
    if (field.name() != expected.name) {
      return Status::Invalid("rows_ipc column ", i + 1, " is ", Quoted(field.name()), " but table ",
                             table.name, " has ", Quoted(expected.name),
                             " there: send the columns in table order (", table.ColumnNames(), ")");
    }
    auto type = ColumnTypeFromArrow(*field.type());
    if (!type.ok() || !(*type == expected.type)) {
      return Status::Invalid("rows_ipc column ", Quoted(field.name()), " is ",
                             field.type()->ToString(), " but table ", table.name, " stores it as ",
                             expected.type.ToString(), " (Arrow ",
                             expected.type.ToArrow()->ToString(), ")");
    }
  }
  return Status::OK();
}

// Gives a batch the table's exact Arrow types and checks its key columns for NULL.
Result<std::shared_ptr<arrow::RecordBatch>> Conform(const arrow::RecordBatch& batch,
                                                    int64_t first_row, const TableSchema& table,
                                                    const std::shared_ptr<arrow::Schema>& target) {
  arrow::ArrayVector columns;
  for (int c = 0; c < batch.num_columns(); ++c) {
    std::shared_ptr<arrow::Array> column = batch.column(c);
    if (table.IsKey(table.columns[c].name) && column->null_count() > 0) {
      int64_t row = 0;
      while (!column->IsNull(row)) ++row;
      return Status::Invalid("rows_ipc row ", first_row + row + 1, ", column ",
                             Quoted(table.columns[c].name),
                             ": NULL in a key column; every row needs a value for the key");
    }
    const auto& type = target->field(c)->type();
    // DataType::Equals ignores a list's child field name; the text does not.
    if (column->type()->ToString() != type->ToString()) {
      ARROW_ASSIGN_OR_RAISE(column, column->View(type));
    }
    columns.push_back(std::move(column));
  }
  return arrow::RecordBatch::Make(target, batch.num_rows(), std::move(columns));
}

Result<std::shared_ptr<arrow::ipc::RecordBatchStreamReader>> OpenIpc(std::string_view ipc) {
  if (ipc.size() < sizeof(kEndOfStream) ||
      std::memcmp(ipc.data() + ipc.size() - sizeof(kEndOfStream), kEndOfStream,
                  sizeof(kEndOfStream)) != 0) {
    return Status::Invalid(
        "rows_ipc is truncated or not an Arrow IPC stream: it does not end with the "
        "end-of-stream marker (close the stream writer before sending; send the stream "
        "format, not the file format)");
  }
  // Copy into Arrow-owned, aligned memory: the batch must not point into the caller's bytes.
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> buffer, arrow::AllocateBuffer(ipc.size()));
  std::memcpy(buffer->mutable_data(), ipc.data(), ipc.size());
  auto input = std::make_shared<arrow::io::BufferReader>(std::move(buffer));
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(input);
  if (!reader.ok()) return IpcError("cannot read its schema", reader.status());
  return reader;
}

}  // namespace

Result<std::shared_ptr<arrow::RecordBatch>> RowsToRecordBatch(const nlohmann::json& rows,
                                                              const TableSchema& schema) {
  ARROW_ASSIGN_OR_RAISE(Cells cells, IndexRows(rows, schema));
  std::shared_ptr<arrow::Schema> arrow_schema = schema.ToArrow();
  arrow::ArrayVector arrays;
  for (size_t c = 0; c < cells.columns; ++c) {
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ArrayBuilder> builder,
                          arrow::MakeBuilder(arrow_schema->field(static_cast<int>(c))->type()));
    ARROW_RETURN_NOT_OK(FillColumn(cells, c, schema, builder.get()));
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Array> array, builder->Finish());
    arrays.push_back(std::move(array));
  }
  return arrow::RecordBatch::Make(std::move(arrow_schema), cells.rows, std::move(arrays));
}

Result<std::shared_ptr<arrow::RecordBatch>> IpcToRecordBatch(std::string_view ipc_stream,
                                                             const TableSchema& schema) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenIpc(ipc_stream));
  ARROW_RETURN_NOT_OK(CheckIpcSchema(*reader->schema(), schema));
  const std::shared_ptr<arrow::Schema> target = schema.ToArrow();
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  int64_t rows = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    const std::string which = "batch " + std::to_string(batches.size() + 1);
    if (Status status = reader->ReadNext(&batch); !status.ok()) return IpcError(which, status);
    if (batch == nullptr) break;
    if (Status status = batch->ValidateFull(); !status.ok()) return IpcError(which, status);
    ARROW_ASSIGN_OR_RAISE(batch, Conform(*batch, rows, schema, target));
    rows += batch->num_rows();
    batches.push_back(std::move(batch));
  }
  if (batches.empty()) return arrow::RecordBatch::MakeEmpty(target);
  if (batches.size() == 1) return batches.front();
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(target, batches));
  return table->CombineChunksToBatch();
}

}  // namespace teatree
