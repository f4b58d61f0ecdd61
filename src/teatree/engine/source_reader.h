#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/engine.h"
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

/// What the client calls a `source` file (never where the server keeps it).
std::string SourceName(const SourceRef& source);

/// The file a `source` names: under the input directories, or a staged upload of the model.
Result<std::filesystem::path> SourcePath(const SourceRef& source, const EngineOptions& options);

/// Reads a `source` file (Parquet, CSV or Arrow IPC) with Arrow, validating the data fully:
/// a file under the input directories, or a staged upload of the model.
Result<std::shared_ptr<arrow::Table>> ReadSource(const SourceRef& source,
                                                 const EngineOptions& options,
                                                 const TableSchema& schema);

/// Gives `table` exactly the table's schema: columns matched by name and reordered, types
/// cast safely (no truncation or overflow), missing or extra columns and NULL keys refused.
/// The chunks stay as they are (no copy into one batch).
Result<std::shared_ptr<arrow::Table>> ConformToSchema(const arrow::Table& table,
                                                      const TableSchema& schema);

/// The Parquet `source` file of an append that can be stored as it is: its columns are the
/// table's, by name, with exactly the table's types, so a reader of its own (DuckDB's) can
/// insert it without a conversion. Empty when the file needs one (RequestTable() does it),
/// or the source is not Parquet. Refuses, as RequestTable() would, a file that cannot be
/// read or whose columns do not fit the table; reads only the file's footer.
Result<std::optional<std::filesystem::path>> ParquetToStoreAsIs(const SourceRef& source,
                                                                const EngineOptions& options,
                                                                const TableSchema& schema);

/// The rows an append or upsert carries (inline JSON, Arrow IPC, a source file or a staged
/// upload) with the table's schema, in the chunks they were read in.
Result<std::shared_ptr<arrow::Table>> RequestTable(const Request& request,
                                                   const TableSchema& schema,
                                                   const EngineOptions& options);
/// RequestTable() as one record batch.
Result<std::shared_ptr<arrow::RecordBatch>> RequestRows(const Request& request,
                                                        const TableSchema& schema,
                                                        const EngineOptions& options);

}  // namespace teatree
