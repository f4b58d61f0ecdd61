#include "teatree/engine/arrow/arrow_engine.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/dataset/api.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "teatree/common/sql_quote.h"
#include "teatree/engine/arrow/arrow_expression.h"
#include "teatree/engine/arrow/manifest_store.h"
#include "teatree/engine/arrow/request_log.h"
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

/// The value ranges a file's statistics prove for its columns without NULLs.
std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> Ranges(const DataFile& file) {
  std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> ranges;
  for (const auto& [column, stats] : file.stats) {
    if (stats.nulls == 0) ranges[column] = {stats.min, stats.max};
  }
  return ranges;
}

/// True where each key column lies within the range `stats` gives for it: a file whose
/// statistics rule this out shares no key with rows of those statistics. Nothing when the
/// statistics bound no key column.
std::optional<Expression> KeyRange(const TableSchema& schema,
                                   const std::map<std::string, ColumnStats>& stats) {
  std::vector<Expression> bounds;
  for (const auto& key : schema.primary_key) {
    auto it = stats.find(key);
    if (it == stats.end() || it->second.min.is_null() || it->second.max.is_null()) continue;
    bounds.push_back(Expression::Call(
        "greater_equal", {Expression::Field(key), Expression::Literal(it->second.min)}));
    bounds.push_back(Expression::Call(
        "less_equal", {Expression::Field(key), Expression::Literal(it->second.max)}));
  }
  if (bounds.empty()) return std::nullopt;
  return Expression::Call("and", std::move(bounds));
}

namespace cp = arrow::compute;

/// Each row's key as one array: the key column itself, or, for a key of several columns,
/// their text joined by a unit separator.
Result<std::shared_ptr<arrow::Array>> KeysOf(const arrow::Table& rows, const TableSchema& schema) {
  std::vector<arrow::Datum> parts;
  for (const auto& key : schema.primary_key) {
    auto column = rows.GetColumnByName(key);
    if (column == nullptr) return Status::Invalid("key column ", key, " is missing");
    if (schema.primary_key.size() == 1) {
      if (column->num_chunks() == 1) return column->chunk(0);
      return arrow::Concatenate(column->chunks());
    }
    ARROW_ASSIGN_OR_RAISE(auto text, cp::Cast(column, arrow::utf8()));
    parts.push_back(std::move(text));
  }
  parts.emplace_back(std::make_shared<arrow::StringScalar>("\x1f"));
  ARROW_ASSIGN_OR_RAISE(auto joined, cp::CallFunction("binary_join_element_wise", parts));
  if (joined.is_array()) return joined.make_array();
  return arrow::Concatenate(joined.chunked_array()->chunks());
}

/// The key of `keys[i]` as a message shows it: "3", or "eu, 7" for a key of two columns.
std::string KeyText(const arrow::Array& keys, int64_t i) {
  auto scalar = keys.GetScalar(i);
  std::string text = scalar.ok() ? (*scalar)->ToString() : "?";
  for (size_t at; (at = text.find('\x1f')) != std::string::npos;) text.replace(at, 1, ", ");
  return text;
}

Status DuplicateKey(const arrow::Array& keys, int64_t i, const TableSchema& schema) {
  return Status::Invalid("duplicate key \"", KeyText(keys, i), "\" in table ", schema.name,
                         " (a row with this key exists: use upsert to replace it)");
}

/// Refuses keys that occur more than once.
Status RefuseRepeatedKeys(const arrow::Array& keys, const TableSchema& schema) {
  ARROW_ASSIGN_OR_RAISE(auto counts, cp::ValueCounts(keys));
  const auto& repeats = *std::static_pointer_cast<arrow::Int64Array>(counts->field(1));
  for (int64_t i = 0; i < repeats.length(); ++i) {
    if (repeats.Value(i) > 1) return DuplicateKey(*counts->field(0), i, schema);
  }
  return Status::OK();
}

Status RefuseNullKeys(const arrow::RecordBatch& rows, const TableSchema& schema) {
  for (const auto& key : schema.primary_key) {
    if (rows.GetColumnByName(key)->null_count() > 0) {
      return Status::Invalid("key column ", key, " of table ", schema.name,
                             " cannot be NULL: give every row a value for it");
    }
  }
  return Status::OK();
}

/// Refuses rows whose key is NULL or repeats among them, among the rows appended earlier in
/// the batch (`pending`), or in `table`'s files, with Arrow compute hash lookups. Files whose
/// key statistics cannot hold the rows' keys are not read, so appending ever higher keys
/// reads no file.
Status CheckKeys(const ManifestStore& store, const TableManifest& table,
                 const std::vector<std::shared_ptr<arrow::RecordBatch>>& pending,
                 const std::shared_ptr<arrow::RecordBatch>& rows) {
  const TableSchema& schema = table.schema;
  if (schema.primary_key.empty() || rows->num_rows() == 0) return Status::OK();
  ARROW_RETURN_NOT_OK(RefuseNullKeys(*rows, schema));
  ARROW_ASSIGN_OR_RAISE(auto incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(auto keys, KeysOf(*incoming, schema));
  ARROW_RETURN_NOT_OK(RefuseRepeatedKeys(*keys, schema));
  ARROW_ASSIGN_OR_RAISE(auto stats, ColumnStatsOf(*incoming));
  const auto range = KeyRange(schema, stats);
  arrow::ArrayVector earlier;
  if (!pending.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto appended, arrow::Table::FromRecordBatches(pending));
    ARROW_ASSIGN_OR_RAISE(earlier.emplace_back(), KeysOf(*appended, schema));
  }
  for (const auto& file : table.files) {
    if (range) {
      auto may_match = MayMatch(*range, schema, Ranges(file));
      if (may_match.ok() && !*may_match) continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto stored, store.ReadDataFile(file, schema.primary_key));
    ARROW_ASSIGN_OR_RAISE(earlier.emplace_back(), KeysOf(*stored, schema));
  }
  if (earlier.empty()) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto known, arrow::Concatenate(earlier));
  ARROW_ASSIGN_OR_RAISE(auto found, cp::IsIn(keys, cp::SetLookupOptions(known)));
  const auto& hits = *found.array_as<arrow::BooleanArray>();
  for (int64_t i = 0; i < hits.length(); ++i) {
    if (hits.Value(i)) return DuplicateKey(*keys, i, schema);
  }
  return Status::OK();
}

/// The rows whose key does not occur again later among them: the last row of each key wins,
/// as if the rows were applied one after another.
Result<std::shared_ptr<arrow::RecordBatch>> LastRowPerKey(
    const std::shared_ptr<arrow::RecordBatch>& rows, const arrow::Array& keys) {
  ARROW_ASSIGN_OR_RAISE(auto distinct, cp::Unique(keys));
  if (distinct->length() == keys.length()) return rows;
  std::unordered_set<std::string> seen;
  std::vector<bool> keep(keys.length());
  for (int64_t i = keys.length() - 1; i >= 0; --i) keep[i] = seen.insert(KeyText(keys, i)).second;
  arrow::BooleanBuilder mask;
  ARROW_RETURN_NOT_OK(mask.AppendValues(keep));
  ARROW_ASSIGN_OR_RAISE(auto selection, mask.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(rows, selection));
  return kept.record_batch();
}

/// Files below this size are small: a stream of small appends makes many of them.
constexpr int64_t kSmallFileBytes = 8 << 20;
/// A table's small files are merged into one once there are this many.
constexpr int64_t kCompactAt = 16;

bool IsSmall(const DataFile& file) { return file.bytes < kSmallFileBytes; }

/// A merge of a table's small files, made off the writer's path by the compactor.
struct Compaction {
  std::string table;
  TableSchema schema;
  std::vector<DataFile> small;  // What it merges, as the newest manifest had them.
  DataFile merged;              // Set once done.
  double ms = 0;
};

/// Writes the rows of `compaction.small` as one file.
Status Merge(ManifestStore& store, Compaction& compaction) {
  const auto start = StepRecorder::Clock::now();
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& file : compaction.small) {
    ARROW_ASSIGN_OR_RAISE(auto rows, store.ReadDataFile(file));
    parts.push_back(std::move(rows));
  }
  ARROW_ASSIGN_OR_RAISE(auto merged, arrow::ConcatenateTables(parts));
  ARROW_ASSIGN_OR_RAISE(compaction.merged, store.WriteDataFile(compaction.schema, *merged));
  compaction.ms =
      std::chrono::duration<double, std::milli>(StepRecorder::Clock::now() - start).count();
  return Status::OK();
}

/// Puts a finished merge into `table`: the merged file in place of the first small one, the
/// others dropped. False (and `table` unchanged) when a small file is no longer there (an
/// update or delete rewrote it meanwhile).
bool ApplyCompaction(const Compaction& compaction, TableManifest& table) {
  std::set<std::string> merged;
  for (const auto& file : compaction.small) merged.insert(file.path);
  size_t present = 0;
  for (const auto& file : table.files) present += merged.count(file.path);
  if (present != merged.size()) return false;
  std::vector<DataFile> files;
  bool placed = false;
  for (auto& file : table.files) {
    if (!merged.count(file.path)) {
      files.push_back(std::move(file));
    } else if (!placed) {
      files.push_back(compaction.merged);
      placed = true;
    }
  }
  table.files = std::move(files);
  return true;
}

/// The table a request names, in the version being built.
Result<TableManifest*> FindTable(Manifest& next, const Request& request) {
  auto it = next.tables.find(request.table);
  if (it == next.tables.end()) {
    return Status::Invalid("table ", request.table,
                           " does not exist: create it first with create_table");
  }
  return &it->second;
}

/// `expression` evaluated over `rows` as an array (a constant one is repeated).
Result<std::shared_ptr<arrow::Array>> Evaluate(const cp::Expression& bound,
                                               const arrow::RecordBatch& rows) {
  ARROW_ASSIGN_OR_RAISE(auto value, cp::ExecuteScalarExpression(bound, cp::ExecBatch(rows)));
  if (value.is_array()) return value.make_array();
  return arrow::MakeArrayFromScalar(*value.scalar(), rows.num_rows());
}

/// A file's rows after a change, or null when the change leaves the file as it is.
using FileChange = std::function<Result<std::shared_ptr<arrow::RecordBatch>>(
    const std::shared_ptr<arrow::RecordBatch>& rows, int64_t* affected)>;

/// Copy-on-write over `table`'s files: a file whose statistics prove that `predicate`
/// (absent: every row) selects none of its rows is not even read; the others go through
/// `change`, and each one it changes is replaced by a new file of its rows (or dropped, when
/// none are left). Returns the rows `change` affected.
Result<int64_t> RewriteFiles(ManifestStore& store, const std::optional<Expression>& predicate,
                             TableManifest& table, const FileChange& change) {
  int64_t affected = 0;
  std::vector<DataFile> files;
  for (const auto& file : table.files) {
    bool may_match = true;
    if (predicate) {
      ARROW_ASSIGN_OR_RAISE(may_match, MayMatch(*predicate, table.schema, Ranges(file)));
    }
    std::shared_ptr<arrow::RecordBatch> changed;
    if (may_match) {
      ARROW_ASSIGN_OR_RAISE(auto rows, store.ReadDataFile(file));
      ARROW_ASSIGN_OR_RAISE(auto combined, rows->CombineChunksToBatch());
      ARROW_ASSIGN_OR_RAISE(changed, change(combined, &affected));
    }
    if (!changed) {
      files.push_back(file);
      continue;
    }
    if (changed->num_rows() == 0) continue;
    ARROW_ASSIGN_OR_RAISE(auto as_table, arrow::Table::FromRecordBatches({changed}));
    ARROW_ASSIGN_OR_RAISE(auto rewritten, store.WriteDataFile(table.schema, *as_table));
    files.push_back(std::move(rewritten));
  }
  table.files = std::move(files);
  return affected;
}

/// Where a predicate is TRUE (not FALSE, not NULL); every row without one.
Result<cp::Expression> Selected(const std::optional<Expression>& predicate,
                                const TableSchema& schema) {
  if (!predicate) return cp::literal(true);
  ARROW_ASSIGN_OR_RAISE(auto condition, ToArrowExpression(*predicate, schema));
  return cp::call("coalesce", {std::move(condition), cp::literal(false)});
}

/// What an upsert did: the rows to add (one per key) and how many rows they replace.
struct Upserted {
  std::shared_ptr<arrow::RecordBatch> rows;
  int64_t replaced = 0;
};

/// Upsert by key as copy-on-write: removes from `table`'s files the rows whose key `rows`
/// brings again (files whose key statistics rule that out are not read) and returns the rows
/// to add, the last one of each key.
Result<Upserted> UpsertRows(ManifestStore& store, TableManifest& table,
                            std::shared_ptr<arrow::RecordBatch> rows) {
  const TableSchema& schema = table.schema;
  ARROW_RETURN_NOT_OK(CheckUpsertKey(schema));
  ARROW_RETURN_NOT_OK(RefuseNullKeys(*rows, schema));
  ARROW_ASSIGN_OR_RAISE(auto incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(auto keys, KeysOf(*incoming, schema));
  ARROW_ASSIGN_OR_RAISE(rows, LastRowPerKey(rows, *keys));
  ARROW_ASSIGN_OR_RAISE(incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(keys, KeysOf(*incoming, schema));
  ARROW_ASSIGN_OR_RAISE(auto stats, ColumnStatsOf(*incoming));
  const cp::SetLookupOptions lookup(keys);
  ARROW_ASSIGN_OR_RAISE(
      int64_t replaced,
      RewriteFiles(store, KeyRange(schema, stats), table,
                   [&](const std::shared_ptr<arrow::RecordBatch>& stored,
                       int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                     ARROW_ASSIGN_OR_RAISE(auto as_table,
                                           arrow::Table::FromRecordBatches({stored}));
                     ARROW_ASSIGN_OR_RAISE(auto stored_keys, KeysOf(*as_table, schema));
                     ARROW_ASSIGN_OR_RAISE(auto hits, cp::IsIn(stored_keys, lookup));
                     ARROW_ASSIGN_OR_RAISE(auto kept_mask, cp::Invert(hits));
                     ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(stored, kept_mask));
                     const auto remaining = kept.record_batch();
                     if (remaining->num_rows() == stored->num_rows()) return nullptr;
                     *affected += stored->num_rows() - remaining->num_rows();
                     return remaining;
                   }));
  return Upserted{std::move(rows), replaced};
}

/// Deletes the rows `predicate` selects; returns how many.
Result<int64_t> DeleteWhere(ManifestStore& store, const Expression& predicate,
                            TableManifest& table) {
  ARROW_ASSIGN_OR_RAISE(auto selected, Selected(predicate, table.schema));
  ARROW_ASSIGN_OR_RAISE(auto keep,
                        cp::call("invert", {std::move(selected)}).Bind(*table.schema.ToArrow()));
  return RewriteFiles(store, predicate, table,
                      [&](const std::shared_ptr<arrow::RecordBatch>& rows,
                          int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                        ARROW_ASSIGN_OR_RAISE(auto mask, Evaluate(keep, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(rows, mask));
                        const auto remaining = kept.record_batch();
                        if (remaining->num_rows() == rows->num_rows()) return nullptr;
                        *affected += rows->num_rows() - remaining->num_rows();
                        return remaining;
                      });
}

/// The rows of `schema` after `request`'s set, where `selected` is true: one struct of the
/// columns, each set column chosen per row between its new and its old value.
Result<cp::Expression> UpdatedRow(const Request& request, const TableSchema& schema,
                                  const cp::Expression& selected) {
  std::vector<cp::Expression> columns;
  std::vector<std::string> names;
  for (const auto& column : schema.columns) {
    cp::Expression value = cp::field_ref(column.name);
    for (const auto& [name, expression] : request.set) {
      if (name != column.name) continue;
      ARROW_ASSIGN_OR_RAISE(auto assigned, ToArrowValue(expression, column.type, schema));
      value = cp::call("if_else", {selected, std::move(assigned), std::move(value)});
    }
    columns.push_back(std::move(value));
    names.push_back(column.name);
  }
  return cp::call("make_struct", std::move(columns), cp::MakeStructOptions(names));
}

/// Updates the rows `request.where` selects; returns how many.
Result<int64_t> UpdateWhere(ManifestStore& store, const Request& request, TableManifest& table) {
  const auto schema = table.schema.ToArrow();
  ARROW_ASSIGN_OR_RAISE(auto selected, Selected(request.where, table.schema));
  ARROW_ASSIGN_OR_RAISE(auto updated_row, UpdatedRow(request, table.schema, selected));
  ARROW_ASSIGN_OR_RAISE(auto hit, selected.Bind(*schema));
  ARROW_ASSIGN_OR_RAISE(auto row, updated_row.Bind(*schema));
  return RewriteFiles(store, request.where, table,
                      [&](const std::shared_ptr<arrow::RecordBatch>& rows,
                          int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                        ARROW_ASSIGN_OR_RAISE(auto hits, Evaluate(hit, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto sum, cp::Sum(hits));
                        const auto& matched = sum.scalar_as<arrow::UInt64Scalar>();
                        if (!matched.is_valid || matched.value == 0) return nullptr;
                        *affected += static_cast<int64_t>(matched.value);
                        ARROW_ASSIGN_OR_RAISE(auto structs, Evaluate(row, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto next,
                                              arrow::RecordBatch::FromStructArray(structs));
                        return next->ReplaceSchema(schema);
                      });
}

/// `rows` with `schema`: each column, by position, cast to its type (safely).
Result<std::shared_ptr<arrow::RecordBatch>> ConformTo(
    const arrow::Table& rows, const std::shared_ptr<arrow::Schema>& target) {
  const arrow::Schema& schema = *target;
  ARROW_ASSIGN_OR_RAISE(auto combined, rows.CombineChunksToBatch());
  arrow::ArrayVector columns;
  for (int i = 0; i < schema.num_fields(); ++i) {
    const auto& type = schema.field(i)->type();
    if (combined->column(i)->type()->Equals(type)) {
      columns.push_back(combined->column(i));
      continue;
    }
    auto cast = cp::Cast(*combined->column(i), type);
    if (!cast.ok()) {
      return Status::Invalid("column ", schema.field(i)->name(), " cannot take the function's ",
                             combined->column(i)->type()->ToString(),
                             " values: ", cast.status().message());
    }
    columns.push_back(*cast);
  }
  return arrow::RecordBatch::Make(target, combined->num_rows(), columns);
}

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
  /// Writes a function's result into the table `write` names: replacing it (or creating it)
  /// with the result's columns, or appending to it.
  Result<int64_t> WriteResult(const FunctionWrite& write,
                              const std::shared_ptr<arrow::Table>& result, Manifest& next);
  /// Writes the pending appends into `next`, one file per table.
  Status FlushAppends(Manifest& next, StepRecorder& steps);

  std::chrono::steady_clock::time_point last_collection;

  // The compactor: a thread that merges a table's small files off the writer's path; the
  // writer puts finished merges into the next version it publishes. State below under
  // compaction_mutex.
  std::mutex compaction_mutex;
  std::condition_variable compaction_wake;
  std::optional<Compaction> compaction_job;  // Waiting for the thread, or being merged.
  std::vector<Compaction> compactions_done;  // Merged, not in a manifest yet.
  bool stopping = false;
  std::thread compactor;

  ~Impl() {
    {
      std::lock_guard lock(compaction_mutex);
      stopping = true;
    }
    compaction_wake.notify_all();
    if (compactor.joinable()) compactor.join();
  }

  void RunCompactor() {
    std::unique_lock lock(compaction_mutex);
    for (;;) {
      compaction_wake.wait(lock, [&] { return stopping || compaction_job.has_value(); });
      if (stopping) return;
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
    }
  }

  /// Gives the compactor a table of `newest` with kCompactAt small files, when it is idle.
  void ScheduleCompaction() {
    std::lock_guard lock(compaction_mutex);
    if (compaction_job || !compactions_done.empty()) return;
    for (const auto& [name, table] : newest.tables) {
      Compaction job{.table = name, .schema = table.schema};
      std::copy_if(table.files.begin(), table.files.end(), std::back_inserter(job.small), IsSmall);
      if (static_cast<int64_t>(job.small.size()) < kCompactAt) continue;
      compaction_job = std::move(job);
      compaction_wake.notify_one();
      return;
    }
  }

  /// Puts the finished merges into `next` (those whose files are all still there).
  void CommitCompactions(Manifest& next, StepRecorder& steps) {
    std::lock_guard lock(compaction_mutex);
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
      // A merge being written or not yet committed is not garbage.
      std::lock_guard lock(compaction_mutex);
      if (compaction_job || !compactions_done.empty()) return;
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
    ARROW_ASSIGN_OR_RAISE(result, function->native(context));
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
      ARROW_ASSIGN_OR_RAISE(auto rows, RequestRows(request, table.schema, options.input_dirs));
      const auto start = StepRecorder::Clock::now();
      auto& appended = pending[request.table];
      ARROW_RETURN_NOT_OK(CheckKeys(*store, table, appended, rows));
      if (rows->num_rows() > 0) appended.push_back(rows);
      steps.Record("check keys", start, rows->num_rows());
      return Applied{.rows = rows->num_rows(), .changed = true};
    }
    case Op::kUpsert: {
      ARROW_ASSIGN_OR_RAISE(TableManifest * table, FindTable(next, request));
      ARROW_ASSIGN_OR_RAISE(auto rows, RequestRows(request, table->schema, options.input_dirs));
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
  impl->compactor = std::thread([raw = impl.get()] { raw->RunCompactor(); });
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
    impl.ScheduleCompaction();
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
