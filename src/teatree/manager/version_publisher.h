#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "teatree/common/status.h"

namespace teatree {

class Archive;
class CatalogRecorder;
class Engine;

struct PublisherOptions {
  std::filesystem::path data_dir;
  std::string model;
  /// How long a version file stays readable after a newer one is published…
  std::chrono::milliseconds retention_grace = std::chrono::seconds(60);
  /// …and how many of the newest stay whatever their age.
  int keep_versions = 2;
  /// At most one publication per interval (a `snapshot` request publishes at once): each
  /// copies the model file and replays its log, so publishing after every commit of a busy
  /// model would take a core and the disk from its writer. Live reads see every commit
  /// regardless.
  std::chrono::milliseconds min_interval = std::chrono::milliseconds(500);
  /// Paces publications by their cost instead (PublishPolicy::kAuto): the next one starts
  /// once three times as long has passed since the last one ended as it took, so a busy
  /// model's publisher keeps at most a quarter of a core (half a core cost the writer's tail
  /// 1-5 ms at p99), and a quiet model gets a file for every version.
  /// At most min_interval apart still; while the archive or catalog does not answer, exactly.
  bool pace_by_cost = false;
  /// Called from the publisher's thread after each version is published; may be empty.
  std::function<void(int64_t version)> on_published;
  /// Also copy each version file and its checksum into the archive (kMirroredVersionFile).
  bool mirror_versions = false;
};

/// The name of a version file mirrored into the archive, in <archive>/<model>/v<N>/.
inline constexpr const char* kMirroredVersionFile = "version.duckdb";

/// Turns committed versions into immutable version files, off the writer's path. Its thread
/// waits for a version newer than the published one, freezes it under the writer lock
/// (Engine::PrepareSnapshot: DuckDB notes where its log ends, and checkpoints only a long log),
/// then copies, replays, verifies, fsyncs and renames it into versions/v<N>.duckdb without
/// holding the lock, writes
/// a `sha256sum`-style checksum beside it, archives each table as Parquet, hands its record
/// to the catalog recorder, and removes versions beyond the newest `keep_versions` once they
/// have been superseded for the grace period. When commits outrun it, it publishes the newest
/// version and skips the ones in between, unless the writer waits for each (WaitWritten()).
/// Thread-safe: Notify()/Wait…()/Stop() from any thread.
class VersionPublisher {
 public:
  /// `engine`, `writer_mutex`, `catalog` and `archive` (may be null) must outlive it.
  VersionPublisher(const PublisherOptions& options, Engine& engine, std::mutex& writer_mutex,
                   CatalogRecorder& catalog, Archive* archive, int64_t published);
  ~VersionPublisher();

  /// Starts the thread.
  void Start();
  /// Wakes the thread after a commit; `force` publishes even an unchanged version;
  /// `immediate` publishes without waiting out the interval (every version gets a file).
  void Notify(bool force = false, bool immediate = false);
  /// Waits until the file of `version` (or a newer one) is in place, not yet archived or
  /// recorded: the writer of a model whose every version is published waits here before
  /// committing the next.
  Status WaitWritten(int64_t version, std::chrono::milliseconds timeout);
  /// Waits until `version` or a newer one is published: its file in place, archived,
  /// handed to the catalog recorder, and older versions past their grace period removed.
  Status WaitPublished(int64_t version, std::chrono::milliseconds timeout);
  /// Publishes what is pending, then stops the thread.
  Status Stop();
  int64_t published() const;
  /// Published versions not archived and recorded yet (their archive did not answer).
  int64_t unfinished() const { return unfinished_count_; }
  /// Archives and records an already published version (used when reconciling at start).
  Status Finish(int64_t version);

 private:
  void Run();
  Status PublishOnce();
  Status RemoveExpiredVersions();
  /// Copies version file `file` (self-contained: exported when linked) and its checksum
  /// into the archive.
  Status Mirror(int64_t version, const std::filesystem::path& file);

  PublisherOptions options_;
  Engine& engine_;
  std::mutex& writer_mutex_;
  CatalogRecorder& catalog_;
  Archive* archive_;
  std::thread thread_;
  // Published versions still to archive and record; used by the publisher's thread only.
  std::set<int64_t> unfinished_;
  std::atomic<int64_t> unfinished_count_{0};  // unfinished_.size(), for other threads.

  // State below is protected by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int64_t published_;
  int64_t written_;  // The newest version whose file is in place.
  bool force_ = false;
  bool immediate_ = false;
  std::chrono::steady_clock::time_point last_publish_{};
  std::chrono::steady_clock::duration last_cost_{};  // What the last publication took.
  bool stopping_ = false;
  Status last_error_;
};

}  // namespace teatree
