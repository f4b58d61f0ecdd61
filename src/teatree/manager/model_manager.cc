#include "teatree/manager/model_manager.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>

#include "teatree/archive/archive.h"
#include "teatree/common/fault_point.h"
#include "teatree/control/control_store.h"
#include "teatree/engine/arrow/arrow_engine.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/engine/staging.h"
#include "teatree/functions/function_registry.h"
#include "teatree/manager/catalog_recorder.h"
#include "teatree/manager/version_publisher.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr auto kCatalogFlushOnClose = std::chrono::seconds(10);
/// How long Open() waits for the catalog to record that the model is starting; a catalog
/// that does not answer only delays it (the model's file stays the source of truth).
constexpr auto kCatalogFlushOnOpen = std::chrono::seconds(5);

/// Removes what a crash may leave in the versions directory: half-copied files and checksum
/// files whose version file never arrived.
void RemoveLeftovers(const fs::path& versions_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(versions_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool temporary = name.find(".tmp") != std::string::npos;
    const bool orphan_checksum =
        name.size() > 7 && name.ends_with(".sha256") &&
        !fs::exists(entry.path().parent_path() / name.substr(0, name.size() - 7));
    if (temporary || orphan_checksum) {
      spdlog::info("removing leftover {}", entry.path().string());
      fs::remove(entry.path(), ec);
    }
  }
}

std::vector<RequestLogRecord> LogRecords(const std::string& model, const BatchResult& result) {
  std::vector<RequestLogRecord> records;
  for (const auto& outcome : result.outcomes) {
    if (outcome.duplicate || outcome.request_id.empty()) continue;
    records.push_back({.request_id = outcome.request_id,
                       .model = model,
                       .op = std::string(OpName(outcome.op)),
                       .status = outcome.status,
                       .version = outcome.version,
                       .duration_ms = outcome.duration_ms,
                       .error = outcome.error});
  }
  return records;
}

}  // namespace

fs::path ModelDir(const fs::path& data_dir, const std::string& model) {
  return data_dir / "models" / model;
}

fs::path VersionFilePath(const fs::path& data_dir, const std::string& model, int64_t version) {
  return ModelDir(data_dir, model) / "versions" / ("v" + std::to_string(version) + ".duckdb");
}

Result<std::vector<int64_t>> ListVersionFiles(const fs::path& data_dir, const std::string& model) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ModelDir(data_dir, model) / "versions", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 9 || name[0] != 'v' || !name.ends_with(".duckdb")) continue;
    const std::string digits = name.substr(1, name.size() - 8);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    versions.push_back(std::stoll(digits));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

namespace {

/// The engine a model's directory holds; nothing for a new model.
std::optional<std::string> StoredEngine(const fs::path& model_dir, const std::string& model) {
  std::error_code ec;
  if (fs::exists(model_dir / "manifests", ec)) return "arrow";
  if (fs::exists(model_dir / "rw" / (model + ".duckdb"), ec)) return "duckdb";
  return std::nullopt;
}

/// The engine a new model's first batch chooses: the first create_table that names one,
/// else the DuckDB engine.
std::string ChosenEngine(const std::vector<Request>& batch) {
  for (const auto& request : batch) {
    if (request.op == Op::kCreateTable && !request.engine.empty()) return request.engine;
  }
  return "duckdb";
}

Result<std::unique_ptr<Engine>> OpenEngine(const std::string& kind, const EngineOptions& options) {
  if (kind == "arrow") return ArrowEngine::Open(options);
  return DuckEngine::Open(options);
}

}  // namespace

struct ModelManager::Impl {
  ManagerOptions options;
  FunctionRegistry functions = FunctionRegistry::WithBuiltins();
  std::unique_ptr<ControlStore> control;
  std::unique_ptr<CatalogRecorder> catalog;  // Writes to `control`, off the writer's path.
  std::unique_ptr<Archive> archive;
  std::mutex writer_mutex;  // Serializes the single writer: Apply() and snapshots.
  // A new model has no engine until its first batch chooses one; both are set once (under
  // writer_mutex) and read from any thread through the atomic pointers.
  std::unique_ptr<Engine> engine_owner;
  std::unique_ptr<VersionPublisher> publisher_owner;
  std::atomic<Engine*> engine{nullptr};
  std::atomic<VersionPublisher*> publisher{nullptr};
  // What the catalog's status says, besides the versions; protected by state_mutex.
  std::mutex state_mutex;
  bool applying = false;            // A batch is being applied.
  bool failed = false;              // The last batch or the last close failed.
  std::atomic<bool> closed{false};  // Set under writer_mutex.

  /// Hands the model's state (and the batch's outcomes) to the catalog recorder. The model
  /// file is the source of truth: what the catalog misses is repaired at the next start.
  /// Called from the writer and the publisher; under state_mutex, so whichever runs last
  /// records what is true after both.
  void UpdateCatalog(const BatchResult* batch) {
    std::lock_guard lock(state_mutex);
    const VersionPublisher* current = publisher.load();
    const int64_t version = CurrentVersion();
    const bool behind = current != nullptr && current->published() < version;
    std::string status = failed ? "error" : applying || behind ? "applying" : "idle";
    if (closed) status = failed ? "error" : "stopped";
    catalog->SetState(status, version);
    if (batch != nullptr) catalog->LogRequests(LogRecords(options.model, *batch));
  }
  int64_t CurrentVersion() const {
    const Engine* current = engine.load();
    return current == nullptr ? 0 : current->version();
  }

  /// Opens the model's engine and starts publishing its versions; `since`: the newest
  /// version the catalog knew of at start.
  Status StartEngine(const std::string& kind, int64_t since);
  void SetFlags(bool now_applying, bool now_failed) {
    std::lock_guard lock(state_mutex);
    applying = now_applying;
    failed = now_failed;
  }
  Status Reconcile(int64_t published, int64_t since);
  /// The version whose file the next batch waits for (0: none), so that it does not
  /// supersede that version before its file is written (kEvery); set under writer_mutex.
  std::atomic<int64_t> awaited_version{0};
  /// Waits for the file of awaited_version.
  Status WaitForVersionFile();
};

Status ModelManager::Impl::StartEngine(const std::string& kind, int64_t since) {
  ARROW_ASSIGN_OR_RAISE(
      engine_owner, OpenEngine(kind, {.model_dir = ModelDir(options.data_dir, options.model),
                                      .model = options.model,
                                      .input_dirs = options.input_dirs,
                                      .staging_dir = StagingDir(options.data_dir, options.model),
                                      .functions = &functions,
                                      .threads = options.threads,
                                      .memory_limit = options.memory_limit,
                                      .retention = options.retention_grace,
                                      .hot_bytes = options.hot_bytes}));
  catalog->SetEngine(kind);
  ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(options.data_dir, options.model));
  const int64_t published = versions.empty() ? 0 : versions.back();
  auto on_published = [this](int64_t version) {
    UpdateCatalog(nullptr);  // Idle once the newest committed version is published.
    if (options.on_published) options.on_published(version);
  };
  publisher_owner = std::make_unique<VersionPublisher>(
      PublisherOptions{.data_dir = options.data_dir,
                       .model = options.model,
                       .retention_grace = options.retention_grace,
                       .keep_versions = options.keep_versions,
                       .min_interval = options.publish_interval,
                       .pace_by_cost = options.publish == PublishPolicy::kAuto,
                       .on_published = on_published,
                       .mirror_versions = options.mirror_versions},
      *engine_owner, writer_mutex, *catalog, archive.get(), published);
  engine = engine_owner.get();
  publisher = publisher_owner.get();
  ARROW_RETURN_NOT_OK(Reconcile(published, since));
  publisher_owner->Start();
  return Status::OK();
}

Status ModelManager::Impl::Reconcile(int64_t published, int64_t since) {
  // Requests committed after the catalog last heard of the model (a crash between the
  // commit and the catalog update) are logged again; logging is idempotent.
  BatchResult replay;
  ARROW_ASSIGN_OR_RAISE(replay.outcomes, engine.load()->OutcomesSince(since));
  UpdateCatalog(&replay);
  if (engine.load()->version() > published) {
    spdlog::info(
        "model {}: publishing version {}, committed before the last stop but not published",
        options.model, engine.load()->version());
  }
  if (published == 0) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto content, control->ListContent(options.model));
  const bool recorded = std::any_of(content.begin(), content.end(), [&](const auto& record) {
    return record.version == published;
  });
  if (!recorded) {
    spdlog::info("model {}: archiving and recording version {} again", options.model, published);
    ARROW_RETURN_NOT_OK(publisher.load()->Finish(published));
  }
  return Status::OK();
}

Status ModelManager::Impl::WaitForVersionFile() {
  constexpr auto kPatience = std::chrono::seconds(30);
  VersionPublisher* current = publisher.load();
  const int64_t version = awaited_version.exchange(0);
  if (current == nullptr || version == 0) return Status::OK();
  for (;;) {
    Status written = current->WaitWritten(version, kPatience);
    if (written.ok() || closed) return Status::OK();
    spdlog::warn(
        "model {}: {}; every version is published, so the next batch waits for it "
        "(--publish coalesce would go on)",
        options.model, written.message());
  }
}

ModelManager::ModelManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelManager::~ModelManager() {
  Status status = Close();
  if (!status.ok()) spdlog::error("model {}: {}", impl_->options.model, status.message());
}

Result<std::unique_ptr<ModelManager>> ModelManager::Open(const ManagerOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateName("model", options.model));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ManagerOptions& o = impl->options;
  if (o.control_url.empty())
    o.control_url = "sqlite://" + fs::absolute(o.data_dir / "control.sqlite").string();
  if (o.archive_url.empty()) o.archive_url = fs::absolute(o.data_dir / "archive").string();
  if (o.input_dirs.empty()) o.input_dirs.push_back(o.data_dir / "input");
  if (!o.functions_file.empty()) {
    ARROW_RETURN_NOT_OK(impl->functions.LoadFile(o.functions_file));
  }
  for (const auto& plugin : o.plugins) ARROW_RETURN_NOT_OK(impl->functions.LoadPlugin(plugin));

  const fs::path model_dir = ModelDir(o.data_dir, o.model);
  std::error_code ec;
  fs::create_directories(model_dir / "versions", ec);
  if (ec) return Status::IOError("cannot create ", model_dir.string(), ": ", ec.message());
  RemoveLeftovers(model_dir / "versions");

  ARROW_ASSIGN_OR_RAISE(impl->control, ControlStore::Open(o.control_url));
  if (o.archive_url != "none") {
    ARROW_ASSIGN_OR_RAISE(impl->archive, Archive::Open(o.archive_url));
    // A misconfigured archive is an error now; an unreachable one only delays archiving.
    Status usable = impl->archive->Check();
    if (usable.IsInvalid()) return usable;
    if (usable.ok()) usable = impl->archive->CleanTemporaries(o.model);
    if (!usable.ok()) {
      spdlog::warn("model {}: {}; versions are archived once it answers", o.model,
                   usable.message());
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto known, impl->control->GetModel(o.model));
  ModelRecord start = known.value_or(ModelRecord{.id = o.model});
  start.manager_endpoint.clear();  // Until this manager serves reads.
  const int64_t catalog_version = start.current_version;
  const auto stored = StoredEngine(model_dir, o.model);
  impl->catalog = std::make_unique<CatalogRecorder>(*impl->control, std::move(start));
  // Recorded before any request is applied: from here on a crash leaves a state that is not
  // "stopped", which tells the dispatcher to restart this model and publish its work.
  impl->catalog->SetLeaseHolder(o.holder);
  impl->catalog->SetState("starting", catalog_version);
  if (Status recorded = impl->catalog->Flush(kCatalogFlushOnOpen); !recorded.ok()) {
    spdlog::warn("model {}: the control catalog did not record the start ({}); going on", o.model,
                 recorded.message());
  }
  if (stored) ARROW_RETURN_NOT_OK(impl->StartEngine(*stored, catalog_version));
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(impl)));
}

Result<BatchResult> ModelManager::Apply(const std::vector<Request>& batch) {
  ARROW_RETURN_NOT_OK(WaitForVersionFile());
  std::lock_guard writer(impl_->writer_mutex);
  if (impl_->closed) return Status::Invalid("model ", impl_->options.model, " is closed");
  if (impl_->engine == nullptr) {
    ARROW_RETURN_NOT_OK(impl_->StartEngine(ChosenEngine(batch), 0));
  }
  impl_->SetFlags(/*applying=*/true, /*failed=*/false);
  impl_->UpdateCatalog(nullptr);
  auto result = impl_->engine.load()->ApplyBatch(batch);
  impl_->SetFlags(/*applying=*/false, /*failed=*/!result.ok());
  if (!result.ok()) {
    impl_->UpdateCatalog(nullptr);
    return result;
  }
  FaultPoint("manager.after_commit");
  impl_->UpdateCatalog(&*result);
  if (result->new_version || result->publish_requested) {
    if (result->new_version && impl_->options.publish == PublishPolicy::kEvery) {
      impl_->awaited_version = impl_->CurrentVersion();
    }
    impl_->publisher.load()->Notify(result->publish_requested,
                                    impl_->options.publish == PublishPolicy::kEvery);
  }
  return result;
}

Status ModelManager::WaitForVersionFile() {
  // Outside the writer lock: the publisher takes it to freeze the version.
  return impl_->WaitForVersionFile();
}

Status ModelManager::WaitPublished(int64_t version, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  VersionPublisher* publisher = impl_->publisher;
  if (publisher == nullptr && version > 0) {
    return Status::Invalid("model ", impl_->options.model, " has no version ", version);
  }
  if (publisher != nullptr) ARROW_RETURN_NOT_OK(publisher->WaitPublished(version, timeout));
  return impl_->catalog->Flush(std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now()));
}

void ModelManager::LogRejected(const std::string& request_id, const std::string& op,
                               const std::string& error) {
  impl_->catalog->LogRequests({{.request_id = request_id,
                                .model = impl_->options.model,
                                .op = op,
                                .status = "rejected",
                                .version = impl_->CurrentVersion(),
                                .error = error}});
}

Status ModelManager::FlushCatalog(std::chrono::milliseconds timeout) {
  return impl_->catalog->Flush(timeout);
}

void ModelManager::SetEndpoint(const std::string& endpoint) {
  impl_->catalog->SetEndpoint(endpoint);
}

Status ModelManager::Close() {
  {
    std::lock_guard writer(impl_->writer_mutex);
    if (impl_->closed) return Status::OK();
    impl_->closed = true;
  }
  VersionPublisher* publisher = impl_->publisher;
  Status status = publisher == nullptr ? Status::OK() : publisher->Stop();
  impl_->catalog->SetEndpoint("");
  impl_->catalog->SetLeaseHolder("");
  {
    std::lock_guard lock(impl_->state_mutex);
    impl_->failed = !status.ok();  // Unpublished work: not "stopped", so it is recovered.
  }
  impl_->UpdateCatalog(nullptr);
  Status recorded = impl_->catalog->Flush(kCatalogFlushOnClose);
  if (!recorded.ok()) {
    spdlog::warn(
        "model {}: control catalog not up to date ({}); it is reconciled at the next "
        "start",
        impl_->options.model, recorded.message());
  }
  return status;
}

int64_t ModelManager::version() const { return impl_->CurrentVersion(); }

int64_t ModelManager::published_version() const {
  const VersionPublisher* publisher = impl_->publisher;
  return publisher == nullptr ? 0 : publisher->published();
}

int64_t ModelManager::catalog_backlog() const { return impl_->catalog->pending(); }

int64_t ModelManager::archive_backlog() const {
  const VersionPublisher* publisher = impl_->publisher;
  return publisher == nullptr ? 0 : publisher->unfinished();
}

Engine* ModelManager::engine() { return impl_->engine; }

Result<std::shared_ptr<DuckReader>> ModelManager::LiveReader() {
  Engine* engine = impl_->engine;
  if (engine == nullptr) {
    return Status::KeyError("model ", impl_->options.model,
                            " has no tables yet: create one with create_table");
  }
  return engine->LiveReader();
}
const ManagerOptions& ModelManager::options() const { return impl_->options; }

}  // namespace teatree
