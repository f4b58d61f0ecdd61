#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "teatree/common/status.h"
#include "teatree/request/table_schema.h"

namespace arrow {
class RecordBatch;
}  // namespace arrow

namespace teatree {

/// Converts the JSON rows of an append/upsert to a record batch whose schema is exactly
/// `schema.ToArrow()`. Rows are arrays of values in column order or objects by column name
/// (a missing key is NULL). JSON encodings: BOOLEAN true/false; INTEGER/BIGINT integers in
/// range; DOUBLE any number; DECIMAL a number or a string, parsed exactly and refused if it
/// has more digits than the type allows; VARCHAR a string; BLOB a string (its bytes); DATE
/// "YYYY-MM-DD"; TIMESTAMP "YYYY-MM-DD HH:MM:SS[.ffffff]" ('T' may replace the space);
/// TIMESTAMPTZ the same ending in Z or +hh:mm (stored as UTC); LIST a JSON array. NULL is
/// refused in key columns. Errors name the row (counted from 1) and the column:
///   row 3, column "amount": expected DOUBLE, got "abc"
/// Thread-safe.
Result<std::shared_ptr<arrow::RecordBatch>> RowsToRecordBatch(const nlohmann::json& rows,
                                                              const TableSchema& schema);

/// Reads the Arrow IPC stream of an append/upsert (all its batches, concatenated) into a
/// record batch with exactly `schema.ToArrow()`. The stream must end with the end-of-stream
/// marker (so a truncated stream is detected), pass ValidateFull(), have the table's columns
/// in order with the table's types (ColumnTypeFromArrow: a list's child name and a
/// timestamp's time zone may differ) and no NULL in key columns. The result owns a copy of
/// the bytes. Thread-safe.
Result<std::shared_ptr<arrow::RecordBatch>> IpcToRecordBatch(std::string_view ipc_stream,
                                                             const TableSchema& schema);

}  // namespace teatree
