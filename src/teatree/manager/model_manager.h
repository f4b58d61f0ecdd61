#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/outcome.h"

namespace teatree {

class ControlStore;
class DuckReader;
class Engine;

/// Which committed versions get a version file (`--publish`).
enum class PublishPolicy {
  /// Every version: the writer commits the next batch once the previous version's file is
  /// written, so `--at-version` reads any version in the retention window.
  kEvery,
  /// The newest version at most once per publish_interval; versions in between are skipped.
  kCoalesce,
  /// Paced by what publishing costs, and the writer never waits: the next version is
  /// published once three times as long has passed since the last publication ended as it
  /// took (at most publish_interval). A model written less often than that gets a file for
  /// every version; a busy one, as many as a quarter of a core can publish
  /// (PublisherOptions::pace_by_cost).
  kAuto,
};

struct ManagerOptions {
  /// The data directory: models/, archive/, input/, control.sqlite live here.
  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  /// Control catalog URL; empty means sqlite://<data_dir>/control.sqlite.
  std::string control_url;
  /// Archive URL or directory; empty means <data_dir>/archive, "none" disables archiving.
  std::string archive_url;
  /// Also copy each version file (and its checksum) into the archive, beside its tables,
  /// as <archive>/<model>/v<N>/version.duckdb: what `teatree pull --from-archive` fetches.
  bool mirror_versions = false;
  /// Where `source` and `attach` paths may point; empty means <data_dir>/input.
  std::vector<std::filesystem::path> input_dirs;
  /// JSON file of SQL functions for `invoke`, besides the built-ins; may be empty.
  std::filesystem::path functions_file;
  /// Shared libraries of native functions (see functions/plugin.h), loaded at open.
  std::vector<std::filesystem::path> plugins;
  /// Version files kept: the newest keep_versions, and any other for retention_grace after a
  /// newer one was published.
  int keep_versions = 2;
  std::chrono::milliseconds retention_grace = std::chrono::seconds(60);
  /// Paced by cost by default: under `every` each batch waits for the previous version's
  /// file, which costs the tail of submit → outcome (docs/operations.md).
  PublishPolicy publish = PublishPolicy::kAuto;
  /// Under kCoalesce (and kAuto at most) one version publication per interval; `snapshot`
  /// requests publish at once.
  std::chrono::milliseconds publish_interval = std::chrono::milliseconds(500);
  /// DuckDB worker threads; 0 lets DuckDB choose.
  int threads = 0;
  /// DuckDB's memory limit for the model (writer and live reads), e.g. "4GB"; empty: DuckDB's
  /// default, 80% of RAM.
  std::string memory_limit;
  /// Bytes of an Arrow-engine model's newest data kept as memory-mapped Arrow IPC copies
  /// for native functions and rewrites (EngineOptions::hot_bytes); 0: none.
  int64_t hot_bytes = int64_t{1} << 30;
  /// Called from the publisher's thread after each version is published; may be empty.
  std::function<void(int64_t version)> on_published;
  /// Who runs this manager (e.g. "manager host pid 42"), recorded in the catalog as the
  /// model's lease_holder while it runs; empty records nothing.
  std::string holder;
};

/// Owns one model: its engine (the single writer, DuckEngine or ArrowEngine as the model's
/// directory says; a new model's first batch chooses), the version publisher and the catalog
/// recorder. Apply() may be called from any thread (calls are serialized: one writer);
/// versions are published by a background thread, off the writer's path. Open() records in
/// the catalog that the model is "starting" (and who holds it) before anything else, so a
/// crash at any later moment leaves a state other than "stopped" for the dispatcher to
/// recover; it reconciles the catalog with the model's own file, which is the source of
/// truth, removes temporary files a crash left behind, republishes the newest version if it
/// is missing and publishes committed versions that were not. The catalog's status is
/// "applying" while a batch runs or a committed version waits for its publication, "idle"
/// when everything committed is published, "stopped" after Close(), "error" after a failed
/// batch or publication.
class ModelManager {
 public:
  static Result<std::unique_ptr<ModelManager>> Open(const ManagerOptions& options);
  /// Publishes the newest version, then stops.
  ~ModelManager();

  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  /// Applies one batch as one transaction (group commit) and hands its outcomes to the
  /// catalog recorder. The outcomes are final once this returns: the batch is durable in the
  /// model's file (the catalog follows shortly; see FlushCatalog()).
  Result<BatchResult> Apply(const std::vector<Request>& batch);
  /// When every version is published (PublishPolicy), waits until the committed version's
  /// file is written: the next Apply() would wait for it first. Lets a caller keep that wait
  /// out of what it attributes to the next batch.
  Status WaitForVersionFile();
  /// Waits until `version` (or a newer one) is published and recorded in the control
  /// catalog, or fails after `timeout`.
  Status WaitPublished(int64_t version, std::chrono::milliseconds timeout);
  /// Records in the control catalog's request log a request refused before it reached the
  /// engine (a queue message that is not a valid request); `op` as the message gave it.
  void LogRejected(const std::string& request_id, const std::string& op, const std::string& error);
  /// Waits until every outcome and state change so far is in the control catalog (it is
  /// written by a thread of its own, behind the writer).
  Status FlushCatalog(std::chrono::milliseconds timeout);
  /// Records in the catalog where this manager serves reads (a Flight URL), "" for nowhere.
  void SetEndpoint(const std::string& endpoint);
  /// Publishes the newest version and stops the publisher; Apply() fails afterwards.
  Status Close();

  int64_t version() const;
  int64_t published_version() const;
  /// Catalog updates not written yet (the catalog did not answer), and published versions
  /// not archived yet: what `teatree status` shows as held back.
  int64_t catalog_backlog() const;
  int64_t archive_backlog() const;
  /// The model's engine; null for a new model until its first batch chooses one
  /// (create_table's `engine`; the DuckDB engine by default).
  Engine* engine();
  /// The live model's reader (Engine::LiveReader()); a KeyError for a new model without an
  /// engine yet.
  Result<std::shared_ptr<DuckReader>> LiveReader();
  const ManagerOptions& options() const;

 private:
  struct Impl;
  explicit ModelManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The model directory D/models/<model>.
std::filesystem::path ModelDir(const std::filesystem::path& data_dir, const std::string& model);
/// D/models/<model>/versions/v<N>.duckdb
std::filesystem::path VersionFilePath(const std::filesystem::path& data_dir,
                                      const std::string& model, int64_t version);
/// The published version files of a model, ascending by version.
Result<std::vector<int64_t>> ListVersionFiles(const std::filesystem::path& data_dir,
                                              const std::string& model);

}  // namespace teatree
