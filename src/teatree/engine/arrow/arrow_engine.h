#pragma once

#include <memory>

#include "teatree/engine/engine.h"

namespace teatree {

/// The Arrow engine: a model as immutable Parquet data files and one manifest per version
/// (ManifestStore), its request ids in a RequestLog beside them, read with SQL through DuckDB
/// views that scan the files through the Arrow C data interface (OpenVersionReader). A batch writes
/// its data files, logs its requests, then publishes its manifest: the manifest is the commit, so a
/// crash at any step leaves the last version whole and a redelivered request applied once. Appends
/// of a batch become one file per table (primary keys checked with hash lookups over the files
/// whose key statistics allow a clash); once a table has 16 small files, a background worker merges
/// them off the writer's path and the next batch publishes the merge. Upsert, update and delete
/// rewrite only the files whose statistics allow an affected row (copy-on-write). After each
/// version, the worker keeps hot copies of its newest files (memory-mapped Arrow IPC, up to
/// EngineOptions::hot_bytes) for native functions, key checks and rewrites. Superseded versions and
/// the files only they reference are removed after the retention window. Thread-safety as described
/// on Engine.
class ArrowEngine final : public Engine {
 public:
  static Result<std::unique_ptr<ArrowEngine>> Open(const EngineOptions& options);
  ~ArrowEngine() override;

  Result<BatchResult> ApplyBatch(const std::vector<Request>& batch) override;
  int64_t version() const override;
  std::string_view kind() const override { return "arrow"; }
  Result<std::shared_ptr<arrow::Table>> Query(const std::string& sql) override;
  /// Reads the newest manifest's files (OpenVersionReader); a read keeps the version it
  /// started on.
  Result<std::shared_ptr<DuckReader>> LiveReader() override;
  /// Waits until the background worker is idle: merges written (published by the next
  /// batch that changes data) and hot copies refreshed. For tests and benchmarks.
  void WaitForBackgroundWork();
  Result<std::vector<RequestOutcome>> OutcomesSince(int64_t version) override;
  Result<std::vector<std::string>> Tables() override;
  /// The newest manifest: versions are immutable, so nothing needs freezing.
  Result<Snapshot> PrepareSnapshot() override;
  /// Writes the snapshot's version as a linked DuckDB file (LinkVersionFile): milliseconds,
  /// whatever the model's size. Its files stay while the version file exists.
  Status WriteVersionFile(const Snapshot& snapshot, const std::filesystem::path& target) override;

 private:
  struct Impl;
  explicit ArrowEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
