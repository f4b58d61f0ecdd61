#pragma once

#include <filesystem>
#include <memory>

#include "teatree/common/status.h"
#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/engine/duckdb/duckdb_reader.h"

namespace teatree {

/// Native functions on an Arrow-engine model: a table is a dataset over its files
/// (OpenTableDataset: the hot copies memory-mapped, Parquet for the rest), so a scan reads
/// only the columns it needs and skips Parquet row groups its filter rules out.
class ManifestFunctionContext final : public FunctionContext {
 public:
  ManifestFunctionContext(std::filesystem::path model_dir, Manifest manifest, nlohmann::json args,
                          StepRecorder& steps)
      : FunctionContext(std::move(args), steps),
        model_dir_(std::move(model_dir)),
        manifest_(std::move(manifest)) {}
  std::vector<std::string> Tables() const override;
  Result<std::shared_ptr<arrow::dataset::Dataset>> Table(const std::string& name) override;

 private:
  std::filesystem::path model_dir_;
  Manifest manifest_;
};

/// The read path over one version of an Arrow-engine model, so users keep SQL: an in-memory
/// DuckDB whose views scan the version's tables through the Arrow C data interface (the
/// datasets native functions read: hot copies memory-mapped, Parquet for the rest; the
/// columns a query uses pushed into the scan, on all of DuckDB's threads), with Teatree's
/// bookkeeping tables, served by a DuckReader exactly like a DuckDB model (the same statement
/// check, limits and streaming). DuckDB may read files only under the model's datasets/
/// directory; a user's SQL may not name files, nor the scan function, at all.
Result<std::shared_ptr<DuckReader>> OpenVersionReader(const ManifestStore& store,
                                                      const Manifest& manifest,
                                                      const DuckReaderOptions& options);

/// Writes one version of an Arrow-engine model (whose directory is `model_dir`) as a
/// self-contained DuckDB file at `target` (which must not exist): every table copied in, and
/// the bookkeeping tables, so that it opens in any DuckDB client. What `teatree pull` ships.
Status ExportVersionFile(const std::filesystem::path& model_dir, const Manifest& manifest,
                         const std::filesystem::path& target);

/// Writes one version as a small DuckDB file of views over the version's Parquet files (by
/// absolute path) and the bookkeeping tables: the version file the publisher writes, in
/// milliseconds whatever the model's size. It reads only on this machine, while the files it
/// names are kept (the engine keeps every version that has a version file).
Status LinkVersionFile(const std::filesystem::path& model_dir, const Manifest& manifest,
                       const std::filesystem::path& target);

/// A version file as it can leave the machine: itself when self-contained (the DuckDB
/// engine's), or, for a linked one, an export of its version written beside it under a
/// temporary name, which the caller removes once shipped.
struct ShippableVersion {
  std::filesystem::path path;
  bool temporary = false;
};
Result<ShippableVersion> ShippableVersionFile(const std::filesystem::path& version_file);

}  // namespace teatree
