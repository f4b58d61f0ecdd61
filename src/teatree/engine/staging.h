#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// Uploads waiting for the request that names them. A payload too large for the queue
/// (Parquet, CSV or Arrow IPC) is uploaded first, over Flight or HTTP, into its model's
/// staging directory, <data-dir>/staging/<model>/<id>; then an append or upsert names it as
/// `"source": {"format": "parquet", "staged": "<id>"}`. The manager applies the request once
/// and removes the upload after its outcome is out. Uploads that no request took within
/// StagingLimits::keep, and uploads cut off half way, are swept away.

/// What one staging area lets its clients take.
struct StagingLimits {
  /// An upload longer than this is refused as soon as it passes it.
  int64_t max_bytes = int64_t{64} << 30;
  /// An upload is refused (and what it wrote removed) when it would leave less free space
  /// on the staging filesystem than this.
  int64_t min_free_bytes = int64_t{1} << 30;
  /// How long an upload waits for its request before the sweep removes it.
  std::chrono::seconds keep = std::chrono::hours(24);
};

/// A finished upload: its id (ValidateStagedId) and size.
struct StagedFile {
  std::string id;
  int64_t bytes = 0;
};

/// <data-dir>/staging/<model>.
std::filesystem::path StagingDir(const std::filesystem::path& data_dir, const std::string& model);

/// The file of staged upload `id` in the staging directory `dir`, or an Invalid status that
/// tells the client to upload it again. Never names the directory.
Result<std::filesystem::path> FindStaged(const std::filesystem::path& dir, const std::string& id);

/// Removes staged upload `id` from `dir`, if it is there. Thread-safe.
void RemoveStaged(const std::filesystem::path& dir, const std::string& id);

/// Removes the uploads in `dir` older than `keep`, and unfinished ones no one has written to
/// for ten minutes (their client is gone); returns how many went. Thread-safe.
int SweepStaging(const std::filesystem::path& dir, std::chrono::seconds keep);

/// One upload being written into a staging directory: bytes go to a hidden temporary file
/// that Finish() makes durable and names by a new random id. Destroyed unfinished (the
/// client went away, a limit was passed), it leaves nothing behind.
class StagedUpload {
 public:
  /// Starts an upload into `dir` (created if missing), after sweeping it.
  static Result<std::unique_ptr<StagedUpload>> Begin(const std::filesystem::path& dir,
                                                     const StagingLimits& limits);
  ~StagedUpload();
  StagedUpload(const StagedUpload&) = delete;
  StagedUpload& operator=(const StagedUpload&) = delete;

  /// Appends `bytes`; an error (the upload is over a limit, the disk is full) ends it.
  Status Write(std::string_view bytes);
  /// fsyncs the file and publishes it under its id.
  Result<StagedFile> Finish();

 private:
  StagedUpload(std::filesystem::path dir, std::filesystem::path tmp, int fd, StagingLimits limits);
  /// The free space left on the staging filesystem, checked every so often.
  Status CheckSpace();

  std::filesystem::path dir_;
  std::filesystem::path tmp_;
  int fd_ = -1;
  StagingLimits limits_;
  int64_t bytes_ = 0;
  int64_t checked_at_ = 0;
  bool direct_ = false;  // Written with O_DIRECT, in whole aligned blocks.
  struct Free {
    void operator()(char* block) const { std::free(block); }
  };
  std::unique_ptr<char, Free> block_;  // The block being filled, aligned for O_DIRECT.
  size_t filled_ = 0;
};

}  // namespace teatree
