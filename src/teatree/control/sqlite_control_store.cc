#include "teatree/control/sqlite_control_store.h"

#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "teatree/control/control_internal.h"
#include "teatree/control/schema_internal.h"
#include "teatree/control/sqlite_db.h"

namespace teatree {
namespace {

/// Runs a statement that returns no rows.
Status Run(SqliteStatement& statement) { return statement.Step().status(); }

/// The first column of the one row `statement` returns, as an integer.
Result<int64_t> QueryInt64(SqliteStatement& statement) {
  ARROW_ASSIGN_OR_RAISE(bool has_row, statement.Step());
  if (!has_row) return Status::KeyError("query returned no row: ", statement.sql());
  int64_t value = statement.ColumnInt64(0);
  statement.Reset();
  return value;
}

Status BindModel(SqliteStatement& statement, const ModelRecord& model, const std::string& now) {
  ARROW_RETURN_NOT_OK(statement.BindText(1, model.id));
  ARROW_RETURN_NOT_OK(statement.BindText(2, model.engine));
  ARROW_RETURN_NOT_OK(statement.BindText(3, model.status));
  ARROW_RETURN_NOT_OK(statement.BindInt64(4, model.current_version));
  ARROW_RETURN_NOT_OK(statement.BindInt64(5, model.published_version));
  ARROW_RETURN_NOT_OK(statement.BindText(6, model.manager_endpoint));
  ARROW_RETURN_NOT_OK(statement.BindText(7, model.lease_holder));
  return statement.BindText(8, now);
}

ModelRecord ReadModel(const SqliteStatement& row) {
  ModelRecord model;
  model.id = row.ColumnText(0);
  model.engine = row.ColumnText(1);
  model.status = row.ColumnText(2);
  model.current_version = row.ColumnInt64(3);
  model.published_version = row.ColumnInt64(4);
  model.manager_endpoint = row.ColumnText(5);
  model.lease_holder = row.ColumnText(6);
  model.created_at = row.ColumnText(7);
  model.updated_at = row.ColumnText(8);
  model.pod_class = row.ColumnText(9);
  model.pending_reason = row.ColumnText(10);
  return model;
}

Status BindContent(SqliteStatement& statement, const ContentRecord& row, const std::string& now) {
  ARROW_RETURN_NOT_OK(statement.BindText(1, row.model));
  ARROW_RETURN_NOT_OK(statement.BindInt64(2, row.version));
  ARROW_RETURN_NOT_OK(statement.BindText(3, row.table_name));
  ARROW_RETURN_NOT_OK(statement.BindInt64(4, row.rows));
  ARROW_RETURN_NOT_OK(statement.BindInt64(5, row.bytes));
  ARROW_RETURN_NOT_OK(statement.BindText(6, row.archive_uri));
  ARROW_RETURN_NOT_OK(statement.BindText(7, row.version_file_uri));
  ARROW_RETURN_NOT_OK(statement.BindText(8, row.checksum));
  return statement.BindText(9, now);
}

ContentRecord ReadContent(const SqliteStatement& row) {
  ContentRecord content;
  content.model = row.ColumnText(0);
  content.version = row.ColumnInt64(1);
  content.table_name = row.ColumnText(2);
  content.rows = row.ColumnInt64(3);
  content.bytes = row.ColumnInt64(4);
  content.archive_uri = row.ColumnText(5);
  content.version_file_uri = row.ColumnText(6);
  content.checksum = row.ColumnText(7);
  content.created_at = row.ColumnText(8);
  return content;
}

Status BindRequest(SqliteStatement& statement, const RequestLogRecord& row, int64_t seq,
                   const std::string& now) {
  ARROW_RETURN_NOT_OK(statement.BindText(1, row.model));
  ARROW_RETURN_NOT_OK(statement.BindText(2, row.request_id));
  ARROW_RETURN_NOT_OK(statement.BindInt64(3, seq));
  ARROW_RETURN_NOT_OK(statement.BindText(4, row.op));
  ARROW_RETURN_NOT_OK(statement.BindText(5, row.status));
  ARROW_RETURN_NOT_OK(statement.BindInt64(6, row.version));
  ARROW_RETURN_NOT_OK(statement.BindDouble(7, row.duration_ms));
  ARROW_RETURN_NOT_OK(statement.BindText(8, row.error));
  return statement.BindText(9, now);
}

RequestLogRecord ReadRequest(const SqliteStatement& row) {
  RequestLogRecord request;
  request.request_id = row.ColumnText(0);
  request.model = row.ColumnText(1);
  request.op = row.ColumnText(2);
  request.status = row.ColumnText(3);
  request.version = row.ColumnInt64(4);
  request.duration_ms = row.ColumnDouble(5);
  request.error = row.ColumnText(6);
  request.created_at = row.ColumnText(7);
  return request;
}

/// Every row `statement` returns, converted by `read`.
template <typename Record, typename Read>
Result<std::vector<Record>> ReadAll(SqliteStatement& statement, Read read) {
  std::vector<Record> records;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool has_row, statement.Step());
    if (!has_row) break;
    records.push_back(read(statement));
  }
  return records;
}

/// SQLite would report a missing directory as "unable to open database file"; say which.
Status CheckDirectoryExists(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (parent.empty() || std::filesystem::is_directory(parent, error)) return Status::OK();
  return Status::IOError("cannot open control catalog ", path, ": directory ", parent.string(),
                         " does not exist; create it first (mkdir -p ", parent.string(),
                         ") or choose another path");
}

}  // namespace

SqliteControlStore::SqliteControlStore(std::unique_ptr<SqliteDb> db, std::string url)
    : url_(std::move(url)), db_(std::move(db)) {}

SqliteControlStore::~SqliteControlStore() = default;

Result<std::unique_ptr<SqliteControlStore>> SqliteControlStore::Open(const std::string& path) {
  ARROW_RETURN_NOT_OK(CheckDirectoryExists(path));
  ARROW_ASSIGN_OR_RAISE(auto db, SqliteDb::Open(path));
  std::unique_ptr<SqliteControlStore> store(
      new SqliteControlStore(std::move(db), "sqlite://" + path));
  std::lock_guard<std::mutex> lock(store->mutex_);
  ARROW_RETURN_NOT_OK(store->Migrate());
  return store;
}

// ---------------------------------------------------------------------------------------------
// Migrations

Status SqliteControlStore::Migrate() {
  ARROW_RETURN_NOT_OK(WithContext(db_->Execute(std::string(kCreateMigrationsTable)),
                                  "cannot create schema_migrations in " + url_));
  ARROW_ASSIGN_OR_RAISE(int current, ReadSchemaVersion());
  ARROW_RETURN_NOT_OK(CheckSchemaNotNewer(current));
  for (int version = current + 1; version <= kControlSchemaVersion; ++version) {
    ARROW_RETURN_NOT_OK(ApplyMigration(version));
  }
  return Status::OK();
}

Status SqliteControlStore::ApplyMigration(int version) {
  ARROW_ASSIGN_OR_RAISE(auto transaction, SqliteTransaction::Begin(*db_));
  // Another process may have migrated since Migrate() looked: look again under the lock.
  ARROW_ASSIGN_OR_RAISE(int current, ReadSchemaVersion());
  ARROW_RETURN_NOT_OK(CheckSchemaNotNewer(current));
  if (current >= version) return Status::OK();  // the guard ends the empty transaction
  const std::string context =
      "cannot apply migration " + std::to_string(version) + " to control catalog " + url_;
  ARROW_RETURN_NOT_OK(WithContext(db_->Execute(std::string(kMigrations[version - 1])), context));
  ARROW_ASSIGN_OR_RAISE(
      auto record,
      db_->Prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)"));
  ARROW_RETURN_NOT_OK(record->BindInt64(1, version));
  ARROW_RETURN_NOT_OK(record->BindText(2, NowIso8601Utc()));
  ARROW_RETURN_NOT_OK(WithContext(Run(*record), context));
  return WithContext(transaction->Commit(), context);
}

Result<int> SqliteControlStore::ReadSchemaVersion() {
  ARROW_ASSIGN_OR_RAISE(auto query,
                        db_->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  auto version = QueryInt64(*query);
  if (!version.ok()) {
    return WithContext(version.status(), "cannot read the schema version of " + url_);
  }
  return static_cast<int>(*version);
}

Status SqliteControlStore::CheckSchemaNotNewer(int version) const {
  if (version <= kControlSchemaVersion) return Status::OK();
  return Status::Invalid("control catalog ", url_, " was written by a newer Teatree (schema ",
                         version, " > ", kControlSchemaVersion, "): upgrade teatree");
}

Result<int> SqliteControlStore::SchemaVersion() {
  std::lock_guard<std::mutex> lock(mutex_);
  return ReadSchemaVersion();
}

// ---------------------------------------------------------------------------------------------
// Models

Status SqliteControlStore::UpsertModel(const ModelRecord& model) {
  ARROW_RETURN_NOT_OK(ValidateModelRecord(model));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto upsert, db_->Prepare(kUpsertModel));
  ARROW_RETURN_NOT_OK(BindModel(*upsert, model, NowIso8601Utc()));
  return WithContext(Run(*upsert), "cannot upsert model \"" + model.id + "\" in " + url_);
}

Status SqliteControlStore::SetModelField(std::string_view sql, const std::string& model,
                                         const std::string& value, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto upsert, db_->Prepare(sql));
  ARROW_RETURN_NOT_OK(upsert->BindText(1, model));
  ARROW_RETURN_NOT_OK(upsert->BindText(2, value));
  ARROW_RETURN_NOT_OK(upsert->BindText(3, NowIso8601Utc()));
  return WithContext(Run(*upsert), "cannot set the " + what + " of \"" + model + "\" in " + url_);
}

Status SqliteControlStore::SetPodClass(const std::string& model, const std::string& pod_class) {
  return SetModelField(kSetPodClass, model, pod_class, "pod class");
}

Status SqliteControlStore::SetPending(const std::string& model, const std::string& reason) {
  return SetModelField(kSetPending, model, reason, "pending reason");
}

Result<std::optional<ModelRecord>> SqliteControlStore::GetModel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto query, db_->Prepare(std::string(kSelectModels) + " WHERE id = ?1"));
  ARROW_RETURN_NOT_OK(query->BindText(1, id));
  ARROW_ASSIGN_OR_RAISE(bool found, query->Step());
  if (!found) return std::nullopt;
  return ReadModel(*query);
}

Result<std::vector<ModelRecord>> SqliteControlStore::ListModels() {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto query, db_->Prepare(std::string(kSelectModels) + " ORDER BY id"));
  return ReadAll<ModelRecord>(*query, ReadModel);
}

Status SqliteControlStore::CheckModelExists(const std::string& model, std::string_view purpose) {
  ARROW_ASSIGN_OR_RAISE(auto query, db_->Prepare("SELECT COUNT(*) FROM goal_model WHERE id = ?1"));
  ARROW_RETURN_NOT_OK(query->BindText(1, model));
  ARROW_ASSIGN_OR_RAISE(int64_t count, QueryInt64(*query));
  if (count > 0) return Status::OK();
  return Status::Invalid("model \"", model, "\" is not in control catalog ", url_,
                         ": UpsertModel() it before ", purpose);
}

// ---------------------------------------------------------------------------------------------
// Content

Status SqliteControlStore::RecordContent(const std::vector<ContentRecord>& rows) {
  for (const auto& row : rows) ARROW_RETURN_NOT_OK(ValidateContentRecord(row));
  if (rows.empty()) return Status::OK();
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto transaction, SqliteTransaction::Begin(*db_));
  ARROW_ASSIGN_OR_RAISE(auto upsert, db_->Prepare(kUpsertContent));
  std::set<std::string> known_models;
  const std::string now = NowIso8601Utc();
  for (const auto& row : rows) {
    if (known_models.insert(row.model).second) {
      ARROW_RETURN_NOT_OK(CheckModelExists(row.model, "recording its content"));
    }
    ARROW_RETURN_NOT_OK(BindContent(*upsert, row, now));
    const std::string context = "cannot record content (model \"" + row.model + "\", version " +
                                std::to_string(row.version) + ", table \"" + row.table_name +
                                "\") in " + url_;
    ARROW_RETURN_NOT_OK(WithContext(Run(*upsert), context));
    upsert->Reset();
  }
  return WithContext(transaction->Commit(), "cannot record content in " + url_);
}

Result<std::vector<ContentRecord>> SqliteControlStore::ListContent(const std::string& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto query, db_->Prepare(kSelectContent));
  ARROW_RETURN_NOT_OK(query->BindText(1, model));
  return ReadAll<ContentRecord>(*query, ReadContent);
}

// ---------------------------------------------------------------------------------------------
// Requests

Status SqliteControlStore::LogRequests(const std::vector<RequestLogRecord>& rows) {
  for (const auto& row : rows) ARROW_RETURN_NOT_OK(ValidateRequestLogRecord(row));
  if (rows.empty()) return Status::OK();
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto transaction, SqliteTransaction::Begin(*db_));
  ARROW_ASSIGN_OR_RAISE(auto next_seq_query, db_->Prepare(kNextRequestSeq));
  ARROW_ASSIGN_OR_RAISE(auto insert, db_->Prepare(kInsertRequest));
  std::map<std::string, int64_t> next_seq;  // by model; the write lock keeps it current
  const std::string now = NowIso8601Utc();
  for (const auto& row : rows) {
    auto [entry, is_new] = next_seq.try_emplace(row.model, 0);
    if (is_new) {
      ARROW_RETURN_NOT_OK(CheckModelExists(row.model, "logging its requests"));
      ARROW_RETURN_NOT_OK(next_seq_query->BindText(1, row.model));
      ARROW_ASSIGN_OR_RAISE(entry->second, QueryInt64(*next_seq_query));
    }
    ARROW_RETURN_NOT_OK(BindRequest(*insert, row, entry->second, now));
    ARROW_RETURN_NOT_OK(WithContext(
        Run(*insert),
        "cannot log request \"" + row.request_id + "\" of model \"" + row.model + "\" in " + url_));
    if (db_->changes() > 0) ++entry->second;  // a replayed id inserted nothing
    insert->Reset();
  }
  return WithContext(transaction->Commit(), "cannot log requests in " + url_);
}

Result<std::vector<RequestLogRecord>> SqliteControlStore::ListRequests(const std::string& model,
                                                                       int64_t limit) {
  if (limit <= 0) {
    return Status::Invalid("cannot list the requests of model \"", model, "\" with limit ", limit,
                           ": the limit must be positive");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto query, db_->Prepare(kSelectRequests));
  ARROW_RETURN_NOT_OK(query->BindText(1, model));
  ARROW_RETURN_NOT_OK(query->BindInt64(2, limit));
  return ReadAll<RequestLogRecord>(*query, ReadRequest);
}

}  // namespace teatree
