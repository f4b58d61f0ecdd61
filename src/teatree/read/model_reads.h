#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/duckdb/duckdb_reader.h"

namespace teatree {

struct ModelReadsOptions {
  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  DuckReaderOptions reader;
  /// A replica looks for a newer version file at most this often on its own (a notification
  /// makes it look at once, through Refresh()).
  std::chrono::milliseconds refresh_interval = std::chrono::milliseconds(250);
};

/// A retained version file.
struct VersionFileInfo {
  int64_t version = 0;
  std::filesystem::path path;
  int64_t bytes = 0;
};

/// The live model's reader as of now (Engine::LiveReader()).
using LiveReaderSource = std::function<Result<std::shared_ptr<DuckReader>>()>;

/// Where the reads of one model come from: the live model (in its manager) or, in a replica,
/// the newest published version file, which Refresh() moves forward; any retained version
/// file by number (at_version). A version file stays open while reads of it run, even after
/// a newer one replaced it or the publisher removed it, and closes when its last read ends.
/// Thread-safe.
class ModelReads {
 public:
  /// Reads of the live model through the reader `live` gives.
  static std::unique_ptr<ModelReads> Live(const ModelReadsOptions& options, LiveReaderSource live);
  /// Reads of the newest version file; fails when the model has none yet.
  static Result<std::unique_ptr<ModelReads>> Replica(const ModelReadsOptions& options);
  ~ModelReads();

  const std::string& model() const;
  /// The reader for `version`, or for the newest the source serves when none is given. A
  /// version that is not retained is a KeyError naming those that are.
  Result<std::shared_ptr<DuckReader>> At(std::optional<int64_t> version);
  /// A replica opens the newest version file if it is newer than the one it serves and
  /// returns the version it now serves; the live source returns 0.
  Result<int64_t> Refresh();
  /// The version a read of the newest sees now: the live model's (a one-row read tells), or
  /// a replica's newest version file, looked for at once (Refresh()).
  Result<int64_t> CurrentVersion();
  /// The newest retained version file; 0 when there is none.
  Result<int64_t> PublishedVersion() const;
  /// The retained version files, ascending. A replica that lists a version newer than the
  /// one it reads moves to it at the next read (monotonic reads: what a client was shown
  /// it can read next).
  Result<std::vector<VersionFileInfo>> Versions() const;
  /// Version file `version`, or the newest; a KeyError when there is none.
  Result<VersionFileInfo> VersionFile(std::optional<int64_t> version) const;

 private:
  struct Impl;
  explicit ModelReads(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace teatree
