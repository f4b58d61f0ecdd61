#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/request.h"

namespace arrow {
class RecordBatch;
class Table;
}  // namespace arrow

namespace teatree {

/// Resolves a client-supplied path against the input directories: relative paths are taken
/// from the first directory; the result must exist and lie under one of them (after
/// resolving symlinks and ".."), otherwise the request is refused.
Result<std::filesystem::path> ResolveInputPath(const std::string& path,
                                               const std::vector<std::filesystem::path>& dirs);

/// Reads a `source` file (Parquet, CSV or Arrow IPC) with Arrow, validating the data fully.
Result<std::shared_ptr<arrow::Table>> ReadSource(const SourceRef& source,
                                                 const std::vector<std::filesystem::path>& dirs,
                                                 const TableSchema& schema);

/// Gives `table` exactly the table's schema: columns matched by name and reordered, types
/// cast safely (no truncation or overflow), missing or extra columns and NULL keys refused.
Result<std::shared_ptr<arrow::RecordBatch>> ConformToSchema(const arrow::Table& table,
                                                            const TableSchema& schema);

/// The rows an append or upsert carries (inline JSON, Arrow IPC or a source file), as one
/// record batch with the table's schema.
Result<std::shared_ptr<arrow::RecordBatch>> RequestRows(
    const Request& request, const TableSchema& schema,
    const std::vector<std::filesystem::path>& dirs);

}  // namespace teatree
