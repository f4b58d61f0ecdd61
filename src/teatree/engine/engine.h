#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/outcome.h"

namespace arrow {
class Table;
}  // namespace arrow

namespace teatree {

class DuckReader;
class FunctionRegistry;

/// Where an engine keeps a model and what it may read.
struct EngineOptions {
  /// The model's directory, D/models/<model>.
  std::filesystem::path model_dir;
  std::string model;
  /// `source` files and `attach` paths must lie under one of these (relative paths are
  /// resolved against the first).
  std::vector<std::filesystem::path> input_dirs;
  /// Where the model's staged uploads wait (StagingDir), which `source.staged` names.
  std::filesystem::path staging_dir;
  /// Functions `invoke` may call; may be null (then only built-ins).
  const FunctionRegistry* functions = nullptr;
  /// Worker threads for the engine; 0 lets it choose.
  int threads = 0;
  /// The engine's memory limit, e.g. "4GB"; empty: its default.
  std::string memory_limit;
  /// How long the files of a superseded version stay for the reads still using them (the
  /// Arrow engine's data files and manifests).
  std::chrono::milliseconds retention = std::chrono::seconds(60);
  /// How many bytes of a model's newest data the Arrow engine keeps as hot copies, memory-
  /// mapped Arrow IPC files beside the Parquet (ManifestStore::RefreshHotCopies); 0: none.
  int64_t hot_bytes = int64_t{1} << 30;
  /// How long the DuckDB engine lets a model's write-ahead log grow before a snapshot
  /// checkpoints it into the main file (the writer waits for that); until then a snapshot
  /// only notes where the log ends, and each version file replays at most this much.
  int64_t snapshot_log_bytes = int64_t{4} << 20;
};

/// A version frozen for publication: PrepareSnapshot() returns it under the writer lock,
/// WriteVersionFile() turns it into an immutable file without blocking the writer.
struct Snapshot {
  int64_t version = 0;
  std::filesystem::path source;
  /// DuckDB: how many bytes of the source's write-ahead log bring its last checkpoint up to
  /// `version` (the log only grows until the next checkpoint); 0 when the file alone holds it.
  int64_t log_bytes = 0;
  /// While set, the engine keeps `source` as the snapshot saw it (DuckDB: no checkpoint);
  /// released once the version file is written.
  std::shared_ptr<const void> hold;
};

/// A storage engine for one model. Thread-safety: ApplyBatch() and PrepareSnapshot() belong
/// to the single writer (callers serialize them); Query() and WriteVersionFile() may run on
/// other threads at the same time.
class Engine {
 public:
  virtual ~Engine() = default;

  /// Applies a batch in one transaction: each request's effect plus its row in the model's
  /// request table, and one new version when anything changed. Known request ids return
  /// their stored outcome; invalid requests are rejected, recorded, and do not stop the
  /// rest. An error Status means nothing was committed.
  virtual Result<BatchResult> ApplyBatch(const std::vector<Request>& batch) = 0;
  /// The committed version.
  virtual int64_t version() const = 0;
  /// "duckdb" or "arrow": what `create_table`'s `engine` names.
  virtual std::string_view kind() const = 0;
  /// A read on the live model (sees every committed batch), as an Arrow table.
  virtual Result<std::shared_ptr<arrow::Table>> Query(const std::string& sql) = 0;
  /// The read path on the live model, as of the newest committed batch: the same checks,
  /// limits and streaming as a version file. Never waits for the writer.
  virtual Result<std::shared_ptr<DuckReader>> LiveReader() = 0;
  /// The stored outcomes of the requests committed at `version` or later (what the control
  /// catalog may have missed in a crash).
  virtual Result<std::vector<RequestOutcome>> OutcomesSince(int64_t version) = 0;
  /// The user tables, sorted.
  virtual Result<std::vector<std::string>> Tables() = 0;
  /// Freezes the committed state for copying (e.g. notes where the log ends, or checkpoints);
  /// writer only, so cheap: the writer waits meanwhile.
  virtual Result<Snapshot> PrepareSnapshot() = 0;
  /// Writes `snapshot` to `target` (which must not exist) and verifies it holds exactly that
  /// version. Does not fsync or rename: the publisher does.
  virtual Status WriteVersionFile(const Snapshot& snapshot,
                                  const std::filesystem::path& target) = 0;
};

}  // namespace teatree
