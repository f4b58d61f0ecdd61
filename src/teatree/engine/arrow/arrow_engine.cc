#include "teatree/engine/arrow/arrow_engine.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/engine/arrow/request_log.h"
#include "teatree/engine/arrow/table_changes_internal.h"
#include "teatree/engine/arrow/version_reads.h"
#include "teatree/engine/batch_screen.h"
#include "teatree/engine/duckdb/duckdb_engine_internal.h"
#include "teatree/engine/source_reader.h"
#include "teatree/functions/function_registry.h"

namespace teatree {
namespace fs = std::filesystem;
namespace {

/// What executing one request did.
struct Applied {
  int64_t rows = 0;
  bool changed = false;
  std::shared_ptr<arrow::Table> result;
};

}  // namespace

struct ArrowEngine::Impl {
  EngineOptions options;
  std::unique_ptr<ManifestStore> store;  // The writer's; WriteVersionFile only loads from it.
  std::unique_ptr<RequestLog> log;
  // State below is protected by mutex: reads of the newest version, from any thread.
  mutable std::mutex mutex;
  Manifest newest;
  std::shared_ptr<DuckReader> reader;  // Of `newest`, made on first use.

  // Rows appended by the batch being applied, by table: written as one file per table when
  // the batch ends or a request other than an append comes.
  std::map<std::string, std::vector<std::shared_ptr<arrow::RecordBatch>>> pending;

  /// Applies one request to `next`, recording its stages in `steps`; on an error `next` is as
  /// it was.
  Result<Applied> Execute(const Request& request, Manifest& next, StepRecorder& steps);
  Result<Applied> Invoke(const Request& request, Manifest& next, StepRecorder& steps);
  /// drop_table and alter_table.
  Result<Applied> ChangeSchema(const Request& request, Manifest& next, StepRecorder& steps);
  /// Writes a function's result into the table `write` names: replacing it (or creating it)
  /// with the result's columns, or appending to it.
  Result<int64_t> WriteResult(const FunctionWrite& write,
                              const std::shared_ptr<arrow::Table>& result, Manifest& next);
  /// Writes the pending appends into `next`, one file per table.
  Status FlushAppends(Manifest& next, StepRecorder& steps);

  std::chrono::steady_clock::time_point last_collection;

  // The background worker: a thread that, off the writer's path, merges a table's small files
  // (the writer puts finished merges into the next version it publishes), then refreshes the
  // hot copies of the newest version's files. State below under worker_mutex.
  std::mutex worker_mutex;
  std::condition_variable worker_wake;       // Work came, or the worker went idle.
  std::optional<Compaction> compaction_job;  // Waiting for the thread, or being merged.
  std::vector<Compaction> compactions_done;  // Merged, not in a manifest yet.
  std::optional<Manifest> hot_job;           // The version whose files should be hot.
  bool busy = false;
  bool stopping = false;
  std::thread worker;

  ~Impl() {
    {
      std::lock_guard lock(worker_mutex);
      stopping = true;
    }
    worker_wake.notify_all();
    if (worker.joinable()) worker.join();
  }

  void RunWorker() {
    std::unique_lock lock(worker_mutex);
    for (;;) {
      worker_wake.wait(lock, [&] { return stopping || compaction_job || hot_job; });
      if (stopping) return;
      busy = true;
      if (compaction_job) {
        Compaction job = *compaction_job;
        lock.unlock();
        Status merged = Merge(*store, job);
        lock.lock();
        compaction_job.reset();
        if (merged.ok()) {
          compactions_done.push_back(std::move(job));
        } else {
          spdlog::warn("model {}: small files of {} not merged: {}", options.model, job.table,
                       merged.message());
        }
      } else {
        const Manifest manifest = std::move(*hot_job);
        hot_job.reset();
        lock.unlock();
        RefreshHotCopies(manifest);
        lock.lock();
      }
      busy = false;
      worker_wake.notify_all();
    }
  }

  void RefreshHotCopies(const Manifest& manifest) {
    const auto start = StepRecorder::Clock::now();
    auto hot = store->RefreshHotCopies(manifest, options.hot_bytes);
    if (!hot.ok()) {
      spdlog::warn("model {}: hot copies not refreshed, reads use Parquet: {}", options.model,
                   hot.status().message());
    } else if (hot->written > 0 || hot->removed > 0) {
      spdlog::debug(
          "model {}: v{} hot copies: {} files, {} MiB ({} written, {} removed) in {} ms",
          options.model, manifest.version, hot->files, hot->bytes >> 20, hot->written, hot->removed,
          std::chrono::duration_cast<std::chrono::milliseconds>(StepRecorder::Clock::now() - start)
              .count());
    }
  }

  /// Gives the worker what `newest` asks for: a table with kCompactAt small files to merge
  /// (unless a merge is under way), and the hot copies to refresh.
  void ScheduleBackgroundWork() {
    std::lock_guard lock(worker_mutex);
    hot_job = newest;
    worker_wake.notify_all();
    if (compaction_job || !compactions_done.empty()) return;
    for (const auto& [name, table] : newest.tables) {
      Compaction job{.table = name, .schema = table.schema};
      std::copy_if(table.files.begin(), table.files.end(), std::back_inserter(job.small), IsSmall);
      if (static_cast<int64_t>(job.small.size()) < kCompactAt) continue;
      compaction_job = std::move(job);
      return;
    }
  }

  /// Puts the finished merges into `next` (those whose files are all still there).
  void CommitCompactions(Manifest& next, StepRecorder& steps) {
    std::lock_guard lock(worker_mutex);
    for (const auto& done : compactions_done) {
      auto it = next.tables.find(done.table);
      if (it != next.tables.end() && ApplyCompaction(done, it->second)) {
        steps.Add({"compact " + done.table, done.ms, done.merged.rows});
      }
    }
    compactions_done.clear();  // Merged files left out are collected as garbage.
  }
  /// The versions the publisher has a version file of (versions/v<N>.duckdb).
  std::set<int64_t> VersionsWithFiles() const {
    std::set<int64_t> versions;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options.model_dir / "versions", ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("v") || !name.ends_with(".duckdb")) continue;
      const std::string digits = name.substr(1, name.size() - 8);
      if (!digits.empty() && std::all_of(digits.begin(), digits.end(), ::isdigit)) {
        versions.insert(std::stoll(digits));
      }
    }
    return versions;
  }
  /// Removes superseded versions past the retention window and their files, at most once a
  /// second; a failure only delays it.
  void CollectGarbage() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_collection < std::chrono::seconds(1)) return;
    {
      // A merge being written or not yet committed is not garbage, nor a file being copied.
      std::lock_guard lock(worker_mutex);
      if (busy || compaction_job || !compactions_done.empty()) return;
    }
    last_collection = now;
    // A version file names its version's data files: they stay while the publisher keeps it.
    auto removed = store->CollectGarbage(options.retention, VersionsWithFiles());
    if (!removed.ok()) {
      spdlog::warn("model {}: old data files stay for now: {}", options.model,
                   removed.status().message());
    }
  }
  FunctionRegistry builtins = FunctionRegistry::WithBuiltins();
  const FunctionRegistry& Functions() const {
    return options.functions != nullptr ? *options.functions : builtins;
  }
  DuckReaderOptions ReaderOptions() const {
    return {.functions = options.functions, .memory_limit = options.memory_limit};
  }
  Result<std::shared_ptr<DuckReader>> NewestReader() {
    std::lock_guard lock(mutex);
    if (!reader) {
      ARROW_ASSIGN_OR_RAISE(reader, OpenVersionReader(*store, newest, ReaderOptions()));
    }
    return reader;
  }
};

Status ArrowEngine::Impl::FlushAppends(Manifest& next, StepRecorder& steps) {
  auto appended = std::move(pending);
  pending.clear();
  for (const auto& [name, batches] : appended) {
    if (batches.empty()) continue;  // Every append to it was refused.
    const auto start = StepRecorder::Clock::now();
    TableManifest& table = next.tables.at(name);
    ARROW_ASSIGN_OR_RAISE(auto rows, arrow::Table::FromRecordBatches(batches));
    ARROW_ASSIGN_OR_RAISE(auto file, store->WriteDataFile(table.schema, *rows));
    table.files.push_back(std::move(file));
    steps.Record("write " + name, start, rows->num_rows());
  }
  return Status::OK();
}

Result<int64_t> ArrowEngine::Impl::WriteResult(const FunctionWrite& write,
                                               const std::shared_ptr<arrow::Table>& result,
                                               Manifest& next) {
  auto it = next.tables.find(write.table);
  if (it != next.tables.end() && !write.replace) {
    // Appended by position, each column cast to the table's type, keys checked.
    TableManifest& table = it->second;
    if (result->num_columns() != static_cast<int>(table.schema.columns.size())) {
      return Status::Invalid("the function gives ", result->num_columns(), " columns and table ",
                             write.table, " has ", table.schema.columns.size());
    }
    ARROW_ASSIGN_OR_RAISE(auto rows, ConformTo(*result, table.schema.ToArrow()));
    auto& appended = pending[write.table];
    ARROW_RETURN_NOT_OK(CheckKeys(*store, table, appended, rows));
    if (rows->num_rows() > 0) appended.push_back(rows);
    return rows->num_rows();
  }
  TableSchema schema;
  schema.name = write.table;
  for (const auto& field : result->schema()->fields()) {
    ARROW_ASSIGN_OR_RAISE(auto type, ColumnTypeFromArrow(*field->type()));
    schema.columns.push_back({field->name(), type});
  }
  ARROW_ASSIGN_OR_RAISE(auto rows, ConformTo(*result, schema.ToArrow()));
  TableManifest table{.schema = schema};
  if (rows->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto as_table, arrow::Table::FromRecordBatches({rows}));
    ARROW_ASSIGN_OR_RAISE(table.files.emplace_back(), store->WriteDataFile(schema, *as_table));
  }
  next.tables[write.table] = std::move(table);
  return rows->num_rows();
}

Result<Applied> ArrowEngine::Impl::Invoke(const Request& request, Manifest& next,
                                          StepRecorder& steps) {
  ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, Functions().Lookup(request.function));
  ARROW_ASSIGN_OR_RAISE(auto args, BindArguments(*function, request.args));
  std::shared_ptr<arrow::Table> result;
  if (function->native) {
    ManifestFunctionContext context(store->model_dir(), next, args, steps);
    ARROW_ASSIGN_OR_RAISE(result, RunNativeFunction(*function, context));
  } else {
    // SQL functions read the version being built through DuckDB, as queries do.
    const auto start = StepRecorder::Clock::now();
    ARROW_ASSIGN_OR_RAISE(auto reader, OpenVersionReader(*store, next, ReaderOptions()));
    ARROW_ASSIGN_OR_RAISE(auto read, reader->Read({.function = request.function,
                                                   .args = args,
                                                   .writing = function->write.has_value()}));
    ARROW_ASSIGN_OR_RAISE(result, read.reader->ToTable());
    steps.Record("query", start, result->num_rows());
  }
  if (!function->write) return Applied{.rows = result->num_rows(), .result = std::move(result)};
  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(int64_t written, WriteResult(*function->write, result, next));
  steps.Record("write " + function->write->table, start, written);
  return Applied{.rows = written, .changed = true};
}

Result<Applied> ArrowEngine::Impl::ChangeSchema(const Request& request, Manifest& next,
                                                StepRecorder& steps) {
  auto it = next.tables.find(request.table);
  if (it == next.tables.end()) {
    std::vector<std::string> names;
    for (const auto& [name, table] : next.tables) names.push_back(name);
    return NoSuchTable(request, names);
  }
  if (request.op == Op::kDropTable) {
    // Only the manifest changes: the table's files stay for the versions that name them.
    next.tables.erase(it);
    return Applied{.changed = true};
  }
  TableManifest& table = it->second;
  ARROW_ASSIGN_OR_RAISE(TableSchema altered, AlterSchema(table.schema, request.changes));
  const auto start = StepRecorder::Clock::now();
  ARROW_ASSIGN_OR_RAISE(table, AlterTableFiles(*store, table, altered, request.changes));
  steps.Record("rewrite", start, table.rows());
  return Applied{.changed = true};
}

Result<Applied> ArrowEngine::Impl::Execute(const Request& request, Manifest& next,
                                           StepRecorder& steps) {
  switch (request.op) {
    case Op::kCreateTable: {
      if (!request.schema) return Status::Invalid("create_table needs a schema");
      ARROW_RETURN_NOT_OK(CheckEngineChoice(request, "arrow"));
      if (next.tables.count(request.table)) {
        return Status::Invalid("table ", request.table, " exists already");
      }
      next.tables[request.table] = TableManifest{.schema = *request.schema};
      return Applied{.changed = true};
    }
    case Op::kAppend: {
      ARROW_ASSIGN_OR_RAISE(TableManifest * found, FindTable(next, request));
      TableManifest& table = *found;
      ARROW_ASSIGN_OR_RAISE(auto rows, RequestRows(request, table.schema, options));
      const auto start = StepRecorder::Clock::now();
      auto& appended = pending[request.table];
      ARROW_RETURN_NOT_OK(CheckKeys(*store, table, appended, rows));
      if (rows->num_rows() > 0) appended.push_back(rows);
      steps.Record("check keys", start, rows->num_rows());
      return Applied{.rows = rows->num_rows(), .changed = true};
    }
    case Op::kUpsert: {
      ARROW_ASSIGN_OR_RAISE(TableManifest * table, FindTable(next, request));
      ARROW_ASSIGN_OR_RAISE(auto rows, RequestRows(request, table->schema, options));
      const auto start = StepRecorder::Clock::now();
      ARROW_ASSIGN_OR_RAISE(auto upserted, UpsertRows(*store, *table, std::move(rows)));
      steps.Record("rewrite", start, upserted.replaced);
      const int64_t count = upserted.rows->num_rows();
      if (count > 0) pending[request.table].push_back(std::move(upserted.rows));
      // As DuckDB counts it: rows inserted or updated; a table of key columns only has
      // nothing to update, so only new keys count.
      const bool keys_only = table->schema.primary_key.size() == table->schema.columns.size();
      return Applied{.rows = keys_only ? count - upserted.replaced : count, .changed = true};
    }
    case Op::kDelete: {
      ARROW_ASSIGN_OR_RAISE(TableManifest * table, FindTable(next, request));
      ARROW_RETURN_NOT_OK(CheckPredicate(*request.where, table->schema));
      const auto start = StepRecorder::Clock::now();
      ARROW_ASSIGN_OR_RAISE(int64_t deleted, DeleteWhere(*store, *request.where, *table));
      steps.Record("rewrite", start, deleted);
      return Applied{.rows = deleted, .changed = true};
    }
    case Op::kUpdate: {
      ARROW_ASSIGN_OR_RAISE(TableManifest * table, FindTable(next, request));
      ARROW_RETURN_NOT_OK(CheckUpdate(table->schema, request));
      if (request.where) ARROW_RETURN_NOT_OK(CheckPredicate(*request.where, table->schema));
      const auto start = StepRecorder::Clock::now();
      ARROW_ASSIGN_OR_RAISE(int64_t updated, UpdateWhere(*store, request, *table));
      steps.Record("rewrite", start, updated);
      return Applied{.rows = updated, .changed = true};
    }
    case Op::kQuery: {
      // A query sees the requests before it in the batch, as on the DuckDB engine.
      const auto start = StepRecorder::Clock::now();
      ARROW_ASSIGN_OR_RAISE(auto version_reader, OpenVersionReader(*store, next, ReaderOptions()));
      ARROW_ASSIGN_OR_RAISE(auto read, version_reader->Read({.sql = request.sql}));
      ARROW_ASSIGN_OR_RAISE(auto result, read.reader->ToTable());
      steps.Record("query", start, result->num_rows());
      return Applied{.rows = result->num_rows(), .result = std::move(result)};
    }
    case Op::kInvoke:
      return Invoke(request, next, steps);
    case Op::kAttach: {
      if (next.attachments.count(request.name) != 0) {
        return Status::Invalid("an attachment named ", request.name, " already exists in model ",
                               request.model, ": choose another name");
      }
      ARROW_ASSIGN_OR_RAISE(auto path, CheckAttachment(request, options.input_dirs));
      next.attachments[request.name] = path.string();
      return Applied{.changed = true};
    }
    case Op::kSnapshot:
      return Applied{};
    case Op::kDropTable:
    case Op::kAlterTable:
      return ChangeSchema(request, next, steps);
  }
  return Status::Invalid("unknown op");
}

ArrowEngine::ArrowEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArrowEngine::~ArrowEngine() = default;

Result<std::unique_ptr<ArrowEngine>> ArrowEngine::Open(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ARROW_ASSIGN_OR_RAISE(impl->store, ManifestStore::Open(options.model_dir));
  impl->newest = impl->store->newest();
  ARROW_ASSIGN_OR_RAISE(
      impl->log, RequestLog::Open(options.model_dir / "requests.jsonl", impl->newest.version));
  impl->worker = std::thread([raw = impl.get()] { raw->RunWorker(); });
  impl->ScheduleBackgroundWork();
  return std::unique_ptr<ArrowEngine>(new ArrowEngine(std::move(impl)));
}

Result<BatchResult> ArrowEngine::ApplyBatch(const std::vector<Request>& batch) {
  Impl& impl = *impl_;
  const int64_t version = impl.store->newest().version;
  BatchResult result;
  const ScreenedBatch screened =
      ScreenBatch(batch, impl.options.model, version, impl.log->known(), result.outcomes);
  Manifest next = impl.store->newest();
  next.version = version + 1;
  impl.pending.clear();
  bool changed = false;
  StepRecorder batch_steps;  // What the batch does for all its requests: writes, publishing.
  for (size_t i : screened.fresh) {
    const Request& request = batch[i];
    if (request.op != Op::kAppend) {
      // Earlier appends are written first: what comes next may read or rewrite them.
      if (Status flushed = impl.FlushAppends(next, batch_steps); !flushed.ok()) {
        return flushed.WithMessage("batch not committed: ", flushed.message());
      }
    }
    const auto start = std::chrono::steady_clock::now();
    StepRecorder steps;
    auto applied = impl.Execute(request, next, steps);
    RequestOutcome& outcome = result.outcomes[i];
    if (!applied.ok()) {
      outcome = Rejected(request, 0, applied.status().message());
      continue;
    }
    outcome = {.request_id = request.request_id,
               .op = request.op,
               .status = "applied",
               .rows = applied->rows,
               .duration_ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::steady_clock::now() - start)
                                  .count(),
               .steps = steps.Take(),
               .result = std::move(applied->result)};
    changed = changed || applied->changed;
    result.publish_requested = result.publish_requested || request.op == Op::kSnapshot;
  }
  if (Status flushed = impl.FlushAppends(next, batch_steps); !flushed.ok()) {
    return flushed.WithMessage("batch not committed: ", flushed.message());
  }
  if (changed) impl.CommitCompactions(next, batch_steps);
  const int64_t new_version = changed ? next.version : version;
  std::vector<KnownRequest> logged;
  for (size_t i : screened.fresh) {
    result.outcomes[i].version = new_version;
    KnownRequest known{batch[i].payload_hash, result.outcomes[i]};
    known.outcome.result.reset();  // Results are not stored.
    logged.push_back(std::move(known));
  }
  // Logged first, then the manifest: the manifest is the commit.
  auto start = StepRecorder::Clock::now();
  ARROW_RETURN_NOT_OK(impl.log->Append(logged));
  batch_steps.Record("log requests", start, static_cast<int64_t>(logged.size()));
  if (changed) {
    start = StepRecorder::Clock::now();
    Status published = impl.store->Publish(next);
    batch_steps.Record("publish", start, next.version);
    if (!published.ok()) {
      // Forget what the log holds of this batch: it did not commit.
      ARROW_ASSIGN_OR_RAISE(impl.log,
                            RequestLog::Open(impl.options.model_dir / "requests.jsonl", version));
      return published.WithMessage("batch not committed: ", published.message());
    }
    {
      std::lock_guard lock(impl.mutex);
      impl.newest = impl.store->newest();
      impl.reader.reset();
    }
    impl.ScheduleBackgroundWork();
    impl.CollectGarbage();
  }
  for (size_t i : screened.fresh) {
    auto& steps = result.outcomes[i].steps;
    if (result.outcomes[i].applied()) {
      steps.insert(steps.end(), batch_steps.steps().begin(), batch_steps.steps().end());
    }
  }
  FinishRepeats(screened, result.outcomes);
  result.version = new_version;
  result.new_version = changed;
  return result;
}

int64_t ArrowEngine::version() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->newest.version;
}

Result<std::shared_ptr<arrow::Table>> ArrowEngine::Query(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto reader, impl_->NewestReader());
  ARROW_ASSIGN_OR_RAISE(auto read, reader->Read({.sql = sql}));
  return read.reader->ToTable();
}

Result<std::shared_ptr<DuckReader>> ArrowEngine::LiveReader() { return impl_->NewestReader(); }

void ArrowEngine::WaitForBackgroundWork() {
  std::unique_lock lock(impl_->worker_mutex);
  impl_->worker_wake.wait(lock, [&] {
    return impl_->stopping || (!impl_->busy && !impl_->compaction_job && !impl_->hot_job);
  });
}

Result<std::vector<RequestOutcome>> ArrowEngine::OutcomesSince(int64_t version) {
  std::vector<RequestOutcome> outcomes;
  for (const auto& [id, known] : impl_->log->known()) {
    if (known.outcome.version >= version) outcomes.push_back(known.outcome);
  }
  return outcomes;
}

Result<std::vector<std::string>> ArrowEngine::Tables() {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> names;
  for (const auto& [name, table] : impl_->newest.tables) names.push_back(name);
  return names;
}

Result<Snapshot> ArrowEngine::PrepareSnapshot() {
  return Snapshot{.version = version(),
                  .source = impl_->options.model_dir / "manifests" /
                            ("v" + std::to_string(version()) + ".json")};
}

Status ArrowEngine::WriteVersionFile(const Snapshot& snapshot, const fs::path& target) {
  ARROW_ASSIGN_OR_RAISE(auto manifest, impl_->store->Load(snapshot.version));
  return LinkVersionFile(impl_->store->model_dir(), manifest, target);
}

}  // namespace teatree
