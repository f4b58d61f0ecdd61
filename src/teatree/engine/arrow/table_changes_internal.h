#pragma once

// The Arrow engine's changes to a table's files: key checks, upsert, update and delete as
// copy-on-write over the files whose statistics allow an affected row, and merges of small
// files. Used by ArrowEngine only; none of it is thread-safe beyond what ManifestStore is.

#include <arrow/api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/request/expression.h"
#include "teatree/request/request.h"

namespace teatree {

/// Files below this size are small: a stream of small appends makes many of them.
constexpr int64_t kSmallFileBytes = 8 << 20;
/// A table's small files are merged into one once there are this many.
constexpr int64_t kCompactAt = 16;

inline bool IsSmall(const DataFile& file) { return file.bytes < kSmallFileBytes; }

/// A merge of a table's small files, made off the writer's path by the background worker.
struct Compaction {
  std::string table;
  TableSchema schema;
  std::vector<DataFile> small;  // What it merges, as the newest manifest had them.
  DataFile merged;              // Set once done.
  double ms = 0;
};

/// What an upsert did: the rows to add (one per key) and how many rows they replace.
struct Upserted {
  std::shared_ptr<arrow::RecordBatch> rows;
  int64_t replaced = 0;
};

/// Refuses rows whose key is NULL or repeats among them, among the rows appended earlier in
/// the batch (`pending`), or in `table`'s files, with Arrow compute hash lookups. Files whose
/// key statistics cannot hold the rows' keys are not read, so appending ever higher keys
/// reads no file.
Status CheckKeys(const ManifestStore& store, const TableManifest& table,
                 const std::vector<std::shared_ptr<arrow::RecordBatch>>& pending,
                 const std::shared_ptr<arrow::RecordBatch>& rows);

/// Writes the rows of `compaction.small` as one file.
Status Merge(ManifestStore& store, Compaction& compaction);

/// Puts a finished merge into `table`: the merged file in place of the first small one, the
/// others dropped. False (and `table` unchanged) when a small file is no longer there (an
/// update or delete rewrote it meanwhile).
bool ApplyCompaction(const Compaction& compaction, TableManifest& table);

/// The table a request names, in the version being built.
Result<TableManifest*> FindTable(Manifest& next, const Request& request);

/// Upsert by key as copy-on-write: removes from `table`'s files the rows whose key `rows`
/// brings again (files whose key statistics rule that out are not read) and returns the rows
/// to add, the last one of each key.
Result<Upserted> UpsertRows(ManifestStore& store, TableManifest& table,
                            std::shared_ptr<arrow::RecordBatch> rows);

/// Deletes the rows `predicate` selects; returns how many.
Result<int64_t> DeleteWhere(ManifestStore& store, const Expression& predicate,
                            TableManifest& table);

/// Updates the rows `request.where` selects; returns how many.
Result<int64_t> UpdateWhere(ManifestStore& store, const Request& request, TableManifest& table);

/// `table` after an alter_table whose `changes` make its schema `altered` (AlterSchema):
/// every file read and written again with the new columns (added ones all NULL, widened ones
/// cast exactly), so that every file of a version has its table's schema and every reader
/// (scans, rewrites, version files, the archive) reads it as it is. Costs a read and a write
/// of the whole table; the old files stay for the versions that name them.
Result<TableManifest> AlterTableFiles(ManifestStore& store, const TableManifest& table,
                                      const TableSchema& altered,
                                      const std::vector<ColumnChange>& changes);

/// `rows` with `schema`: each column, by position, cast to its type (safely).
Result<std::shared_ptr<arrow::RecordBatch>> ConformTo(const arrow::Table& rows,
                                                      const std::shared_ptr<arrow::Schema>& target);

}  // namespace teatree
