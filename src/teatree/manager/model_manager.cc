#include "teatree/manager/model_manager.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "teatree/archive/archive.h"
#include "teatree/control/control_store.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/functions/function_registry.h"
#include "teatree/manager/catalog_recorder.h"
#include "teatree/manager/version_publisher.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr auto kCatalogFlushOnClose = std::chrono::seconds(10);

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

struct ModelManager::Impl {
  ManagerOptions options;
  FunctionRegistry functions = FunctionRegistry::WithBuiltins();
  std::unique_ptr<ControlStore> control;
  std::unique_ptr<CatalogRecorder> catalog;  // Writes to `control`, off the writer's path.
  std::unique_ptr<Archive> archive;
  std::unique_ptr<Engine> engine;
  std::mutex writer_mutex;  // Serializes the single writer: Apply() and snapshots.
  std::unique_ptr<VersionPublisher> publisher;
  bool closed = false;

  /// Hands the model's state (and the batch's outcomes) to the catalog recorder. The model
  /// file is the source of truth: what the catalog misses is repaired at the next start.
  void UpdateCatalog(const std::string& status, const BatchResult* batch) {
    catalog->SetState(status, engine->version());
    if (batch != nullptr) catalog->LogRequests(LogRecords(options.model, *batch));
  }

  /// `since`: the newest version the catalog knew of at start.
  Status Reconcile(int64_t published, int64_t since);
};

Status ModelManager::Impl::Reconcile(int64_t published, int64_t since) {
  // Requests committed after the catalog last heard of the model (a crash between the
  // commit and the catalog update) are logged again; logging is idempotent.

  ARROW_ASSIGN_OR_RAISE(auto stored, engine->Query("SELECT outcome FROM _teatree_requests "
                                                   "WHERE version >= " +
                                                   std::to_string(since)));
  BatchResult replay;
  for (int64_t i = 0; i < stored->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, stored->column(0)->GetScalar(i));
    auto json = nlohmann::json::parse(scalar->ToString(), nullptr, false);
    if (!json.is_discarded()) replay.outcomes.push_back(RequestOutcome::FromJson(json));
  }
  UpdateCatalog("idle", &replay);
  if (published == 0) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto content, control->ListContent(options.model));
  const bool recorded = std::any_of(content.begin(), content.end(), [&](const auto& record) {
    return record.version == published;
  });
  if (!recorded) {
    spdlog::info("model {}: archiving and recording version {} again", options.model, published);
    ARROW_RETURN_NOT_OK(publisher->Finish(published));
  }
  return Status::OK();
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
  ARROW_ASSIGN_OR_RAISE(impl->engine, DuckEngine::Open({.model_dir = model_dir,
                                                        .model = o.model,
                                                        .input_dirs = o.input_dirs,
                                                        .functions = &impl->functions,
                                                        .threads = o.threads,
                                                        .memory_limit = o.memory_limit}));
  ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(o.data_dir, o.model));
  const int64_t published = versions.empty() ? 0 : versions.back();
  ARROW_ASSIGN_OR_RAISE(auto known, impl->control->GetModel(o.model));
  ModelRecord start = known.value_or(ModelRecord{.id = o.model});
  start.engine = "duckdb";
  start.manager_endpoint.clear();  // Until this manager serves reads.
  const int64_t catalog_version = start.current_version;
  impl->catalog = std::make_unique<CatalogRecorder>(*impl->control, std::move(start));
  impl->publisher = std::make_unique<VersionPublisher>(
      PublisherOptions{o.data_dir, o.model, o.retention_grace, o.publish_interval, o.on_published,
                       o.mirror_versions},
      *impl->engine, impl->writer_mutex, *impl->catalog, impl->archive.get(), published);
  ARROW_RETURN_NOT_OK(impl->Reconcile(published, catalog_version));
  impl->publisher->Start();
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(impl)));
}

Result<BatchResult> ModelManager::Apply(const std::vector<Request>& batch) {
  std::lock_guard writer(impl_->writer_mutex);
  if (impl_->closed) return Status::Invalid("model ", impl_->options.model, " is closed");
  impl_->UpdateCatalog("applying", nullptr);
  auto result = impl_->engine->ApplyBatch(batch);
  if (!result.ok()) {
    impl_->UpdateCatalog("error", nullptr);
    return result;
  }
  impl_->UpdateCatalog("idle", &*result);
  if (result->new_version || result->publish_requested) {
    impl_->publisher->Notify(result->publish_requested);
  }
  return result;
}

Status ModelManager::WaitPublished(int64_t version, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ARROW_RETURN_NOT_OK(impl_->publisher->WaitPublished(version, timeout));
  return impl_->catalog->Flush(std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now()));
}

void ModelManager::LogRejected(const std::string& request_id, const std::string& op,
                               const std::string& error) {
  impl_->catalog->LogRequests({{.request_id = request_id,
                                .model = impl_->options.model,
                                .op = op,
                                .status = "rejected",
                                .version = impl_->engine->version(),
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
  Status status = impl_->publisher->Stop();
  impl_->catalog->SetEndpoint("");
  impl_->UpdateCatalog("stopped", nullptr);
  Status recorded = impl_->catalog->Flush(kCatalogFlushOnClose);
  if (!recorded.ok()) {
    spdlog::warn(
        "model {}: control catalog not up to date ({}); it is reconciled at the next "
        "start",
        impl_->options.model, recorded.message());
  }
  return status;
}

int64_t ModelManager::version() const { return impl_->engine->version(); }
int64_t ModelManager::published_version() const { return impl_->publisher->published(); }
int64_t ModelManager::catalog_backlog() const { return impl_->catalog->pending(); }
int64_t ModelManager::archive_backlog() const { return impl_->publisher->unfinished(); }
Engine& ModelManager::engine() { return *impl_->engine; }
const ManagerOptions& ModelManager::options() const { return impl_->options; }

}  // namespace teatree
