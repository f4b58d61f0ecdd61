#pragma once

#include <memory>

#include "teatree/engine/engine.h"

namespace teatree {

class DuckReader;

/// The DuckDB engine: a model is one read-write DuckDB file, D/models/<m>/rw/<m>.duckdb,
/// written through one connection, with Teatree's bookkeeping in tables that user names can
/// never collide with (`_teatree_version`, `_teatree_requests`, `_teatree_tables`,
/// `_teatree_attachments`). Automatic checkpoints are off: between the checkpoints that
/// PrepareSnapshot() makes once the WAL outgrows EngineOptions::snapshot_log_bytes, the
/// checkpointed main file stays as it was and the WAL only grows, so a version is frozen by noting
/// where the WAL ends (no I/O under the writer lock) and the publisher copies the file and that
/// much of the WAL while the writer goes on committing, then replays the copy into one file.
/// Thread-safety as described on Engine.
class DuckEngine final : public Engine {
 public:
  /// Opens the model's file, creating it if new; DuckDB replays its WAL after a crash.
  static Result<std::unique_ptr<DuckEngine>> Open(const EngineOptions& options);
  ~DuckEngine() override;

  Result<BatchResult> ApplyBatch(const std::vector<Request>& batch) override;
  int64_t version() const override;
  std::string_view kind() const override { return "duckdb"; }
  Result<std::shared_ptr<arrow::Table>> Query(const std::string& sql) override;
  /// Reads through a pool of connections to the model's file: they see every committed
  /// batch.
  Result<std::shared_ptr<DuckReader>> LiveReader() override;
  Result<std::vector<RequestOutcome>> OutcomesSince(int64_t version) override;
  Result<std::vector<std::string>> Tables() override;
  Result<Snapshot> PrepareSnapshot() override;
  Status WriteVersionFile(const Snapshot& snapshot, const std::filesystem::path& target) override;

  /// The read-write file.
  const std::filesystem::path& path() const;
  /// Reads the version recorded inside a DuckDB model or version file.
  static Result<int64_t> ReadFileVersion(const std::filesystem::path& file);

 private:
  /// Brings the copy `target` of snapshot.source up to snapshot.version with the first
  /// snapshot.log_bytes of the source's write-ahead log.
  static Status ReplayLog(const Snapshot& snapshot, const std::filesystem::path& target);

  struct Impl;
  explicit DuckEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
