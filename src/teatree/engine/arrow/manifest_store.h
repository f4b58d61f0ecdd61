#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/table_schema.h"

namespace arrow {
class Table;
namespace dataset {
class Dataset;
}  // namespace dataset
}  // namespace arrow

namespace teatree {

/// Statistics of one column of a data file, for skipping files a predicate cannot match.
struct ColumnStats {
  /// The smallest and largest non-NULL values as JSON (numbers, strings, or the text of
  /// decimals and times); null when the column holds only NULLs or has no ordering (lists).
  nlohmann::json min;
  nlohmann::json max;
  int64_t nulls = 0;
};

/// The statistics of each column of `rows`, by name.
Result<std::map<std::string, ColumnStats>> ColumnStatsOf(const arrow::Table& rows);

/// One immutable Parquet file of a table: datasets/<table>/<name>.parquet.
struct DataFile {
  /// Relative to the model directory.
  std::string path;
  int64_t rows = 0;
  int64_t bytes = 0;
  std::map<std::string, ColumnStats> stats;
};

/// A table in a version: its schema and the files holding its rows.
struct TableManifest {
  TableSchema schema;
  std::vector<DataFile> files;
  int64_t rows() const;
};

/// What a version of an Arrow-engine model is: its tables and their files.
struct Manifest {
  int64_t version = 0;
  std::map<std::string, TableManifest> tables;
  /// Read-only DuckDB files attached by name (`attach`), by absolute path.
  std::map<std::string, std::string> attachments;

  nlohmann::json ToJson() const;
  static Result<Manifest> FromJson(const nlohmann::json& json);
};

/// A dataset over a table's files (under `model_dir`), for scans with filters and projections
/// pushed down. A file with a hot copy is read from it, memory-mapped (the mapping lives as
/// long as the dataset, even if the copy is removed meanwhile); the others from Parquet.
Result<std::shared_ptr<arrow::dataset::Dataset>> OpenTableDataset(
    const std::filesystem::path& model_dir, const TableManifest& table);

/// What ManifestStore::RefreshHotCopies() did.
struct HotCopies {
  int64_t files = 0;  // Data files with a hot copy now.
  int64_t bytes = 0;  // The size of those copies.
  int64_t written = 0;
  int64_t removed = 0;
};

/// The storage of an Arrow-engine model under its directory: immutable Parquet data files in
/// datasets/<table>/ (the newest with hot Arrow IPC copies beside them) and one manifest per
/// version in manifests/v<N>.json. Publishing a version
/// writes only its manifest (a temporary file, fsync, rename, fsync of the directory), so its
/// cost follows the change, not the model's size; a crash leaves the last published manifest
/// whole and no half-written file referenced. Not thread-safe: one writer.
class ManifestStore {
 public:
  /// Opens (or creates) the store of the model in `model_dir`; removes temporary files a
  /// crash left behind.
  static Result<std::unique_ptr<ManifestStore>> Open(const std::filesystem::path& model_dir);

  /// The newest published manifest (version 0 and no tables when none is).
  const Manifest& newest() const { return newest_; }
  /// Manifest `version`, or a KeyError when it is not kept.
  Result<Manifest> Load(int64_t version) const;
  /// The versions with a manifest, ascending.
  Result<std::vector<int64_t>> Versions() const;

  /// Writes `rows` (whose schema is `table`'s) as a new data file of `table`, durably, with
  /// its statistics. Nothing references it until a manifest does. Safe beside the writer
  /// (the background worker uses it); the other mutating methods are the writer's.
  Result<DataFile> WriteDataFile(const TableSchema& table, const arrow::Table& rows);
  /// The rows of a data file (from its hot copy when it has one): all its columns, or only
  /// `columns`.
  Result<std::shared_ptr<arrow::Table>> ReadDataFile(
      const DataFile& file, const std::vector<std::string>& columns = {}) const;
  /// Keeps a hot copy of the newest data files of `manifest`: each as an uncompressed Arrow
  /// IPC file beside it (datasets/<table>/<name>.arrow), newest first while the copies fit in
  /// `budget` bytes; removes every other copy. Readers memory-map a file's copy when it has
  /// one (OpenTableDataset, ReadDataFile): no decoding, and the pages are shared through the
  /// OS cache. Parquet stays what manifests, version files and archives name; a copy is only
  /// ever an accelerator, written durably under a temporary name and then renamed. Safe
  /// beside the writer, not beside CollectGarbage().
  Result<HotCopies> RefreshHotCopies(const Manifest& manifest, int64_t budget);
  /// Publishes `manifest` (its version must be above the newest) and makes it the newest.
  Status Publish(Manifest manifest);
  /// Removes the manifests of versions superseded more than `retention` ago (never the
  /// newest, nor those `pinned`), then the data files no remaining manifest references.
  /// Returns the number of data files removed. Writer only: a data file written for a batch
  /// not yet published would count as unreferenced.
  Result<int64_t> CollectGarbage(std::chrono::milliseconds retention,
                                 const std::set<int64_t>& pinned = {},
                                 const std::set<std::string>& keep_files = {});

  const std::filesystem::path& model_dir() const { return model_dir_; }

 private:
  explicit ManifestStore(std::filesystem::path model_dir) : model_dir_(std::move(model_dir)) {}
  std::filesystem::path ManifestPath(int64_t version) const;

  std::filesystem::path model_dir_;
  Manifest newest_;
  std::atomic<uint64_t> next_file_{0};  // WriteDataFile() may run on another thread too.
};

}  // namespace teatree
