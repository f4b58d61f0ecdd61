#include "teatree/engine/duckdb/duckdb_engine.h"

#include <arrow/api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "teatree/common/bloom_filter.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"
#include "teatree/engine/batch_screen.h"
#include "teatree/engine/duckdb/duckdb_engine_internal.h"
#include "teatree/engine/duckdb/duckdb_reader.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

/// Where DuckDB keeps the write-ahead log of the database file `db`.
fs::path WalPath(const fs::path& db) { return db.string() + ".wal"; }

/// What the model's request table says about an id seen before.

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Result<std::string> TextAt(const arrow::Table& table, int column, int64_t row) {
  ARROW_ASSIGN_OR_RAISE(auto scalar, table.column(column)->GetScalar(row));
  if (!scalar->is_valid) return std::string();
  if (scalar->type->id() == arrow::Type::STRING) {
    return std::static_pointer_cast<arrow::StringScalar>(scalar)->ToString();
  }
  return scalar->ToString();
}

/// The checkpoint threshold of the writer: checkpoints happen only when the publisher asks
/// (PrepareSnapshot) and at commits of batches that wrote kCheckpointingRows or more.
constexpr const char* kNoAutomaticCheckpoint = "1TB";
/// The threshold at those commits: DuckDB's default. A large append's rows are then written
/// once, into the main file, instead of into the log first and by a checkpoint again
/// (measured: 40M rows commit in 10 s instead of 19 s for the log and 4.6 s for the checkpoint).
constexpr const char* kCheckpointAtCommit = "16MB";
constexpr int64_t kCheckpointingRows = 1'000'000;

/// A snapshot's hold on the model file (Snapshot::hold), shared with the other snapshots.
struct FileHold {
  explicit FileHold(std::shared_ptr<std::shared_mutex> held)
      : mutex(std::move(held)), lock(*mutex) {}
  std::shared_ptr<std::shared_mutex> mutex;
  std::shared_lock<std::shared_mutex> lock;
};

Result<int64_t> Int64At(const arrow::Table& table, int column, int64_t row) {
  ARROW_ASSIGN_OR_RAISE(auto scalar, table.column(column)->GetScalar(row));
  ARROW_ASSIGN_OR_RAISE(auto cast, scalar->CastTo(arrow::int64()));
  return std::static_pointer_cast<arrow::Int64Scalar>(cast)->value;
}

}  // namespace

struct DuckEngine::Impl {
  EngineOptions options;
  fs::path path;
  FunctionRegistry builtins = FunctionRegistry::WithBuiltins();
  std::shared_ptr<DuckDatabase> db;
  std::unique_ptr<DuckConnection> writer;
  std::unique_ptr<ReadOnlyCheck> query_check;  // On `writer`.
  std::shared_ptr<DuckReader> reader;          // Shared with the read path's streams.
  std::atomic<int64_t> version{0};
  ModelState state;  // Committed schema; owned by the writer.
  // The newest version at which a batch dropped a table: stored by the writer before that
  // batch commits, read by the live reader's statement checks (ReadOnlyCheck::Options).
  std::shared_ptr<std::atomic<int64_t>> tables_dropped_at =
      std::make_shared<std::atomic<int64_t>>(0);
  // Every request id in _teatree_requests, approximately: ids it has never seen skip the
  // lookup.
  BloomFilter known_ids{0};
  // Held shared by each snapshot until its version file is written, and exclusively by a
  // commit that checkpoints: a version file is never copied from a changing main file.
  std::shared_ptr<std::shared_mutex> files = std::make_shared<std::shared_mutex>();
  // The writer's statements of every batch, prepared once; destroyed before `writer`.
  std::unique_ptr<DuckStatement> begin, commit, rollback, set_version, find_request, add_request;

  OpContext Context() {
    return {&options, options.functions != nullptr ? options.functions : &builtins, writer.get(),
            query_check.get()};
  }
  Status Load();
  Status Prepare();
  /// Commits, checkpointing as it does when the batch wrote `rows` >= kCheckpointingRows.
  Status Commit(int64_t rows);
  /// A filter of the ids in the request table, sized for `capacity` ids.
  Result<BloomFilter> LoadKnownIds(int64_t capacity);
  Result<std::map<std::string, KnownRequest>> LookupKnown(const std::vector<Request>& batch);
  /// Records the batch's outcomes in the request table, in the open transaction.
  Status RecordRequests(const std::vector<PlannedRequest>& planned,
                        const std::vector<RequestOutcome>& outcomes);
};

Status DuckEngine::Impl::Load() {
  ARROW_RETURN_NOT_OK(writer->Execute(kBookkeepingSql));
  ARROW_ASSIGN_OR_RAISE(auto versions, writer->QueryTable("SELECT version FROM _teatree_version"));
  ARROW_ASSIGN_OR_RAISE(int64_t current, Int64At(*versions, 0, 0));
  version = current;
  ARROW_ASSIGN_OR_RAISE(auto tables,
                        writer->QueryTable("SELECT name, schema FROM _teatree_tables"));
  for (int64_t i = 0; i < tables->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto name, TextAt(*tables, 0, i));
    ARROW_ASSIGN_OR_RAISE(auto text, TextAt(*tables, 1, i));
    auto json = ParseJson(text, "the stored schema").ValueOr(nlohmann::json());
    if (!json.is_object()) return Status::Invalid("corrupt schema of table ", name);
    ARROW_ASSIGN_OR_RAISE(auto schema,
                          TableSchema::FromJson(name, json["schema"], json["primary_key"]));
    state.tables[name] = std::move(schema);
  }
  ARROW_ASSIGN_OR_RAISE(auto attached,
                        writer->QueryTable("SELECT name, path FROM _teatree_attachments"));
  for (int64_t i = 0; i < attached->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto name, TextAt(*attached, 0, i));
    ARROW_ASSIGN_OR_RAISE(auto file, TextAt(*attached, 1, i));
    state.attachments[name] = file;
    // A supporting file that has gone away must not stop the model from opening.
    (void)writer->Execute("ATTACH " + SqlStringLiteral(file) + " AS " + SqlIdentifier(name) +
                          " (READ_ONLY)");
  }
  ARROW_RETURN_NOT_OK(Prepare());
  ARROW_ASSIGN_OR_RAISE(auto count, writer->QueryTable("SELECT count(*) FROM _teatree_requests"));
  ARROW_ASSIGN_OR_RAISE(int64_t requests, Int64At(*count, 0, 0));
  ARROW_ASSIGN_OR_RAISE(known_ids, LoadKnownIds(2 * requests));
  return Status::OK();
}

Status DuckEngine::Impl::Prepare() {
  ARROW_ASSIGN_OR_RAISE(begin, writer->Prepare("BEGIN TRANSACTION"));
  ARROW_ASSIGN_OR_RAISE(commit, writer->Prepare("COMMIT"));
  ARROW_ASSIGN_OR_RAISE(rollback, writer->Prepare("ROLLBACK"));
  ARROW_ASSIGN_OR_RAISE(set_version, writer->Prepare("UPDATE _teatree_version SET version = $v"));
  ARROW_ASSIGN_OR_RAISE(find_request,
                        writer->Prepare("SELECT payload_hash, outcome FROM _teatree_requests "
                                        "WHERE request_id = $id"));
  ARROW_ASSIGN_OR_RAISE(add_request, writer->Prepare("INSERT INTO _teatree_requests VALUES "
                                                     "($id, $version, $status, $op, $hash, "
                                                     "$outcome)"));
  return Status::OK();
}

Result<BloomFilter> DuckEngine::Impl::LoadKnownIds(int64_t capacity) {
  BloomFilter filter(capacity);
  ARROW_ASSIGN_OR_RAISE(auto ids, writer->Query("SELECT request_id FROM _teatree_requests"));
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(auto batch, ids->Next());
    if (batch == nullptr) return filter;
    const auto& column = static_cast<const arrow::StringArray&>(*batch->column(0));
    for (int64_t i = 0; i < column.length(); ++i) filter.Add(column.GetView(i));
  }
}

Result<std::map<std::string, KnownRequest>> DuckEngine::Impl::LookupKnown(
    const std::vector<Request>& batch) {
  std::map<std::string, KnownRequest> known;
  for (const auto& request : batch) {
    if (!known_ids.MayContain(request.request_id) || known.contains(request.request_id)) continue;
    ARROW_ASSIGN_OR_RAISE(auto table, find_request->Query({{"id", request.request_id}}));
    if (table->num_rows() == 0) continue;
    ARROW_ASSIGN_OR_RAISE(auto hash, TextAt(*table, 0, 0));
    ARROW_ASSIGN_OR_RAISE(auto outcome, TextAt(*table, 1, 0));
    known[request.request_id] = {
        hash, RequestOutcome::FromJson(
                  ParseJson(outcome, "a stored outcome").ValueOr(nlohmann::json::object()))};
  }
  return known;
}

Status DuckEngine::Impl::RecordRequests(const std::vector<PlannedRequest>& planned,
                                        const std::vector<RequestOutcome>& outcomes) {
  // A few rows go in fastest through the prepared INSERT, many through the appender.
  constexpr size_t kMostInserted = 4;
  if (planned.size() <= kMostInserted) {
    for (const auto& p : planned) {
      const RequestOutcome& outcome = outcomes[p.index];
      ARROW_RETURN_NOT_OK(add_request->Execute({{"id", outcome.request_id},
                                                {"version", outcome.version},
                                                {"status", outcome.status},
                                                {"op", std::string(OpName(outcome.op))},
                                                {"hash", p.request->payload_hash},
                                                {"outcome", DumpJson(outcome.ToJson())}}));
    }
    return Status::OK();
  }
  arrow::StringBuilder ids, statuses, ops, hashes, texts;
  arrow::Int64Builder versions;
  for (const auto& p : planned) {
    const RequestOutcome& outcome = outcomes[p.index];
    ARROW_RETURN_NOT_OK(ids.Append(outcome.request_id));
    ARROW_RETURN_NOT_OK(versions.Append(outcome.version));
    ARROW_RETURN_NOT_OK(statuses.Append(outcome.status));
    ARROW_RETURN_NOT_OK(ops.Append(std::string(OpName(outcome.op))));
    ARROW_RETURN_NOT_OK(hashes.Append(p.request->payload_hash));
    ARROW_RETURN_NOT_OK(texts.Append(DumpJson(outcome.ToJson())));
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(6);
  ARROW_RETURN_NOT_OK(ids.Finish(&columns[0]));
  ARROW_RETURN_NOT_OK(versions.Finish(&columns[1]));
  ARROW_RETURN_NOT_OK(statuses.Finish(&columns[2]));
  ARROW_RETURN_NOT_OK(ops.Finish(&columns[3]));
  ARROW_RETURN_NOT_OK(hashes.Finish(&columns[4]));
  ARROW_RETURN_NOT_OK(texts.Finish(&columns[5]));
  static const auto schema = arrow::schema(
      {arrow::field("request_id", arrow::utf8()), arrow::field("version", arrow::int64()),
       arrow::field("status", arrow::utf8()), arrow::field("op", arrow::utf8()),
       arrow::field("payload_hash", arrow::utf8()), arrow::field("outcome", arrow::utf8())});
  auto rows = arrow::Table::Make(schema, columns, static_cast<int64_t>(planned.size()));
  return writer->AppendArrow("_teatree_requests", *rows).status();
}

DuckEngine::DuckEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DuckEngine::~DuckEngine() = default;

Result<std::unique_ptr<DuckEngine>> DuckEngine::Open(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const fs::path rw_dir = options.model_dir / "rw";
  std::error_code ec;
  fs::create_directories(rw_dir, ec);
  if (ec) {
    return Status::IOError("cannot create model directory ", rw_dir.string(), ": ", ec.message());
  }
  impl->path = rw_dir / (options.model + ".duckdb");
  DuckDatabaseOptions db_options{.path = impl->path.string()};
  db_options.settings["checkpoint_threshold"] = kNoAutomaticCheckpoint;
  // Memory DuckDB frees goes back to the system in the background, not at its next
  // allocation: an idle manager's footprint shrinks to what its buffer pool holds.
  db_options.settings["allocator_background_threads"] = "true";
  if (options.threads > 0) db_options.settings["threads"] = std::to_string(options.threads);
  if (!options.memory_limit.empty()) db_options.settings["memory_limit"] = options.memory_limit;
  ARROW_ASSIGN_OR_RAISE(impl->db, DuckDatabase::Open(db_options));
  ARROW_ASSIGN_OR_RAISE(impl->writer, impl->db->Connect());
  // The writer reads the files requests name (a Parquet source, straight into its table):
  // those under the input directories and the model's staged uploads, nothing else.
  std::vector<fs::path> readable = options.input_dirs;
  if (!options.staging_dir.empty()) readable.push_back(options.staging_dir);
  ARROW_RETURN_NOT_OK(impl->writer->Execute(ConfineFileAccessSql(
      readable, impl->path.parent_path().parent_path() / "tmp", /*lock=*/false)));
  ARROW_RETURN_NOT_OK(impl->Load());
  ARROW_ASSIGN_OR_RAISE(impl->query_check, ReadOnlyCheck::Make(*impl->writer, {.remember = false}));
  impl->reader = DuckReader::Make(
      impl->db, {.functions = options.functions, .tables_dropped_at = impl->tables_dropped_at});
  return std::unique_ptr<DuckEngine>(new DuckEngine(std::move(impl)));
}

int64_t DuckEngine::version() const { return impl_->version; }
Result<std::shared_ptr<DuckReader>> DuckEngine::LiveReader() { return impl_->reader; }

Result<std::vector<RequestOutcome>> DuckEngine::OutcomesSince(int64_t version) {
  // The bookkeeping tables are out of the read path's reach: a connection of its own.
  ARROW_ASSIGN_OR_RAISE(auto connection, impl_->db->Connect());
  ARROW_ASSIGN_OR_RAISE(auto stored, connection->QueryTable("SELECT outcome FROM _teatree_requests "
                                                            "WHERE version >= " +
                                                            std::to_string(version)));
  std::vector<RequestOutcome> outcomes;
  for (int64_t i = 0; i < stored->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, stored->column(0)->GetScalar(i));
    auto json = ParseJson(scalar->ToString(), "a stored outcome");
    if (json.ok()) outcomes.push_back(RequestOutcome::FromJson(*json));
  }
  return outcomes;
}

const fs::path& DuckEngine::path() const { return impl_->path; }

Result<std::shared_ptr<arrow::Table>> DuckEngine::Query(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto read, impl_->reader->Read({.sql = sql}));
  return read.reader->ToTable();
}

Result<std::vector<std::string>> DuckEngine::Tables() {
  std::vector<std::string> names;
  for (const auto& [name, schema] : impl_->state.tables) names.push_back(name);
  return names;
}

Result<Snapshot> DuckEngine::PrepareSnapshot() {
  // Every commit is in the WAL once ApplyBatch returns, and only a checkpoint (here, under the
  // writer lock) changes what the main file holds: the main file plus this much of the WAL is
  // the current version. A checkpoint makes the writer wait for its fsyncs, so it happens only
  // when the WAL has grown long enough to make publishing replay too much.
  std::error_code missing;
  auto log_bytes = static_cast<int64_t>(fs::file_size(WalPath(impl_->path), missing));
  if (missing) log_bytes = 0;
  if (log_bytes >= impl_->options.snapshot_log_bytes) {
    ARROW_RETURN_NOT_OK(impl_->writer->Execute("CHECKPOINT"));
    log_bytes = 0;
  }
  return Snapshot{.version = impl_->version,
                  .source = impl_->path,
                  .log_bytes = log_bytes,
                  .hold = std::make_shared<FileHold>(impl_->files)};
}

Status DuckEngine::Impl::Commit(int64_t rows) {
  if (rows < kCheckpointingRows) return commit->Execute();
  auto set_threshold = [&](const char* threshold) {
    return writer->Execute("SET checkpoint_threshold = '" + std::string(threshold) + "'");
  };
  std::unique_lock no_snapshot(*files);
  ARROW_RETURN_NOT_OK(set_threshold(kCheckpointAtCommit));
  Status committed = commit->Execute();
  Status restored = set_threshold(kNoAutomaticCheckpoint);
  return committed.ok() ? restored : committed;
}

Status DuckEngine::ReplayLog(const Snapshot& snapshot, const fs::path& target) {
  if (snapshot.log_bytes == 0) return Status::OK();
  // The WAL has grown since the snapshot (the writer went on): the copy keeps its first
  // log_bytes, which end with the snapshot's commit.
  const fs::path log = WalPath(target);
  std::error_code error;
  fs::remove(log, error);  // Left by a publication that stopped half-way.
  ARROW_RETURN_NOT_OK(CopyFileFast(WalPath(snapshot.source), log).status());
  const auto copied = static_cast<int64_t>(fs::file_size(log, error));
  if (!error && copied < snapshot.log_bytes) {
    return Status::IOError("the write-ahead log of ", snapshot.source.string(), " holds ", copied,
                           " bytes, fewer than the ", snapshot.log_bytes, " of version ",
                           snapshot.version, ": was it checkpointed meanwhile?");
  }
  if (!error) fs::resize_file(log, static_cast<uintmax_t>(snapshot.log_bytes), error);
  if (error) {
    return Status::IOError("cannot cut the copied write-ahead log ", log.string(), " to ",
                           snapshot.log_bytes, " bytes: ", error.message());
  }
  // Opening the copy replays its log; the checkpoint folds it into the one file.
  ARROW_ASSIGN_OR_RAISE(
      auto db, DuckDatabase::Open({.path = target.string(), .settings = {{"threads", "1"}}}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  ARROW_RETURN_NOT_OK(connection->Execute("CHECKPOINT"));
  connection.reset();
  db.reset();
  fs::remove(log, error);  // Empty after the checkpoint; a version file stands alone.
  if (error) return Status::IOError("cannot remove ", log.string(), ": ", error.message());
  return Status::OK();
}

Result<int64_t> DuckEngine::ReadFileVersion(const fs::path& file) {
  ARROW_ASSIGN_OR_RAISE(
      auto db, DuckDatabase::Open(
                   {.path = file.string(), .read_only = true, .settings = {{"threads", "1"}}}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  ARROW_ASSIGN_OR_RAISE(auto table, connection->QueryTable("SELECT version FROM _teatree_version"));
  if (table->num_rows() != 1) return Status::Invalid(file.string(), " has no Teatree version");
  return Int64At(*table, 0, 0);
}

Status DuckEngine::WriteVersionFile(const Snapshot& snapshot, const fs::path& target) {
  ARROW_RETURN_NOT_OK(CopyFileFast(snapshot.source, target).status());
  Status replayed = ReplayLog(snapshot, target);
  if (!replayed.ok()) {
    std::error_code ignored;
    fs::remove(target, ignored);
    fs::remove(WalPath(target), ignored);
    return replayed;
  }
  auto copied = ReadFileVersion(target);
  if (!copied.ok() || *copied != snapshot.version) {
    std::error_code ignored;
    fs::remove(target, ignored);
    return Status::IOError(
        "copy of ", snapshot.source.string(), " for version ", snapshot.version,
        " is not that version: ",
        copied.ok() ? "it holds version " + std::to_string(*copied) : copied.status().message());
  }
  return Status::OK();
}

}  // namespace teatree

namespace teatree {
namespace {

/// The appends from planned[k] on that can run as one: consecutive, accepted, to the same
/// table, carrying their rows (not a file DuckDB reads), and not in `unmerged`. Just
/// planned[k] when it cannot be merged.
std::vector<const PlannedRequest*> AppendRun(const std::vector<PlannedRequest>& planned, size_t k,
                                             const std::set<size_t>& unmerged) {
  std::vector<const PlannedRequest*> run{&planned[k]};
  auto mergeable = [&](size_t i) {
    return planned[i].request->op == Op::kAppend && planned[i].rejection.empty() &&
           planned[i].parquet_file.empty() && !unmerged.contains(i) &&
           planned[i].request->table == planned[k].request->table;
  };
  if (!mergeable(k)) return run;
  for (size_t i = k + 1; i < planned.size() && mergeable(i); ++i) run.push_back(&planned[i]);
  return run;
}

/// Whether an accepted request of the batch drops a table.
bool DropsATable(const std::vector<PlannedRequest>& planned) {
  return std::any_of(planned.begin(), planned.end(), [](const PlannedRequest& p) {
    return p.rejection.empty() && p.request->op == Op::kDropTable;
  });
}

}  // namespace

Result<BatchResult> DuckEngine::ApplyBatch(const std::vector<Request>& batch) {
  Impl& impl = *impl_;
  BatchResult result;
  result.version = impl.version;
  result.outcomes.resize(batch.size());
  ARROW_ASSIGN_OR_RAISE(auto known, impl.LookupKnown(batch));

  // Duplicates and misaddressed requests are answered without touching the model.
  const ScreenedBatch screened =
      ScreenBatch(batch, impl.options.model, impl.version, known, result.outcomes);
  std::vector<PlannedRequest> planned;
  for (size_t i : screened.fresh) planned.push_back({.index = i, .request = &batch[i]});

  OpContext context = impl.Context();
  {
    ModelState validation = impl.state;
    for (auto& p : planned) ValidateRequest(context, validation, p);
  }

  // One transaction for the whole batch. DuckDB has no savepoints: when a request fails while
  // executing, the transaction is rolled back and the batch runs again without it.
  std::set<size_t> unmerged;  // Appends to run alone: their merged run failed.
  for (;;) {
    ModelState state = impl.state;
    std::vector<Executed> executed(planned.size());
    std::vector<double> durations(planned.size(), 0);
    ARROW_RETURN_NOT_OK(impl.begin->Execute());
    bool changed = false;
    bool failed = false;
    for (size_t k = 0; k < planned.size() && !failed;) {
      if (!planned[k].rejection.empty()) {
        ++k;
        continue;
      }
      const std::vector<const PlannedRequest*> run = AppendRun(planned, k, unmerged);
      auto start = std::chrono::steady_clock::now();
      if (run.size() > 1) {
        Result<int64_t> appended = ExecuteAppendRun(context, run);
        if (!appended.ok()) {
          // Find the culprit: run the batch again with these appends one by one.
          (void)impl.rollback->Execute();
          for (size_t i = k; i < k + run.size(); ++i) unmerged.insert(i);
          failed = true;
          break;
        }
        const double per_row = MillisecondsSince(start) / static_cast<double>(*appended);
        for (size_t i = k; i < k + run.size(); ++i) {
          executed[i] = {.rows = planned[i].rows->num_rows(), .changed_data = true};
          durations[i] = per_row * static_cast<double>(executed[i].rows);
        }
        changed = true;
        k += run.size();
        continue;
      }
      auto outcome = ExecuteRequest(context, state, planned[k]);
      if (!outcome.ok()) {
        (void)impl.rollback->Execute();
        planned[k].rejection = outcome.status().message();
        if (planned[k].request->op == Op::kAppend &&
            planned[k].rejection.find("duplicate key") != std::string::npos) {
          planned[k].rejection += " (a row with this key exists: use upsert to replace it)";
        }
        failed = true;
        break;
      }
      durations[k] = MillisecondsSince(start);
      changed = changed || outcome->changed_data;
      executed[k] = std::move(*outcome);
      ++k;
    }
    if (failed) continue;

    const int64_t new_version = impl.version + (changed ? 1 : 0);
    for (size_t k = 0; k < planned.size(); ++k) {
      const PlannedRequest& p = planned[k];
      RequestOutcome& outcome = result.outcomes[p.index];
      if (!p.rejection.empty()) {
        outcome = Rejected(*p.request, new_version, p.rejection);
        continue;
      }
      outcome.request_id = p.request->request_id;
      outcome.op = p.request->op;
      outcome.status = "applied";
      outcome.version = new_version;
      outcome.rows = executed[k].rows;
      outcome.duration_ms = durations[k];
      outcome.result = executed[k].result;
      outcome.steps = executed[k].steps;
      if (outcome.steps.empty()) {
        outcome.steps.push_back({"execute", durations[k], executed[k].rows});
      }
      if (p.read_ms > 0) {
        outcome.steps.insert(outcome.steps.begin(), {"read source", p.read_ms, executed[k].rows});
      }
      result.publish_requested = result.publish_requested || p.request->op == Op::kSnapshot;
    }
    Status status = impl.RecordRequests(planned, result.outcomes);
    if (status.ok() && changed) status = impl.set_version->Execute({{"v", new_version}});
    if (status.ok() && DropsATable(planned)) {
      // Before the commit: a read whose snapshot has the drop must find it stored.
      impl.tables_dropped_at->store(new_version);
    }
    int64_t rows_added = 0;
    for (size_t k = 0; k < planned.size(); ++k) {
      const Op op = planned[k].request->op;
      if (planned[k].rejection.empty() && (op == Op::kAppend || op == Op::kUpsert)) {
        rows_added += executed[k].rows;
      }
    }
    if (status.ok()) status = impl.Commit(rows_added);
    if (!status.ok()) {
      (void)impl.rollback->Execute();
      return status.WithMessage("batch not committed: ", status.message());
    }
    for (const auto& p : planned) {
      if (p.rejection.empty() && p.request->op == Op::kAttach) {
        (void)impl.writer->Execute("ATTACH " + SqlStringLiteral(p.attach_path.string()) + " AS " +
                                   SqlIdentifier(p.request->name) + " (READ_ONLY)");
      }
    }
    for (const auto& p : planned) impl.known_ids.Add(p.request->request_id);
    if (impl.known_ids.size() > impl.known_ids.capacity()) {
      // Grown past its size: rebuild larger. On failure the full filter stays; it still
      // never misses an id, it only lets more new ids through to the lookup.
      auto larger = impl.LoadKnownIds(4 * impl.known_ids.capacity());
      if (larger.ok()) impl.known_ids = std::move(*larger);
    }
    impl.state = std::move(state);
    impl.state.rows_changed.clear();
    impl.version = new_version;
    result.new_version = changed;
    break;
  }
  FinishRepeats(screened, result.outcomes);
  result.version = impl.version;
  return result;
}

}  // namespace teatree
