#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

/// The newest control catalog schema this build knows; every backend migrates to it.
inline constexpr int kControlSchemaVersion = 2;

/// A row of `goal_model`: one model and who is working on it.
struct ModelRecord {
  std::string id;
  std::string engine = "duckdb";
  /// e.g. "idle", "applying", "error".
  std::string status;
  int64_t current_version = 0;
  int64_t published_version = 0;
  std::string manager_endpoint;
  std::string lease_holder;
  /// The pod class its manager runs in on Kubernetes ("small" unless set). Read only:
  /// UpsertModel() leaves it as it is; SetPodClass() changes it.
  std::string pod_class = "small";
  /// Why its manager is not running yet (status "pending"), e.g. "Unschedulable: 0/3 nodes
  /// are available: 3 Insufficient memory"; set by the dispatcher, cleared by the manager.
  std::string pending_reason;
  /// ISO-8601 UTC with microseconds ("2025-01-31T12:00:00.000000Z"), set by the store:
  /// values passed in are ignored.
  std::string created_at;
  std::string updated_at;

  bool operator==(const ModelRecord&) const = default;
};

/// A row of `content_index`: one table of one published version, and where its files are.
struct ContentRecord {
  std::string model;
  int64_t version = 0;
  std::string table_name;
  int64_t rows = 0;
  int64_t bytes = 0;
  std::string archive_uri;
  std::string version_file_uri;
  std::string checksum;
  /// Set by the store when the row is first recorded.
  std::string created_at;

  bool operator==(const ContentRecord&) const = default;
};

/// A row of `request_log`: the outcome of one client request.
struct RequestLogRecord {
  std::string request_id;
  std::string model;
  std::string op;
  /// "applied", "rejected" or "duplicate".
  std::string status;
  int64_t version = 0;
  double duration_ms = 0;
  std::string error;
  /// Set by the store when the row is first logged.
  std::string created_at;

  bool operator==(const RequestLogRecord&) const = default;
};

/// The control catalog: which models exist and their state, what each published version
/// contains, and what became of each request. One interface, chosen by URL: SQLite (the
/// embedded default, one file shared by the dispatcher, managers and CLI) or PostgreSQL.
/// Implementations are thread-safe: any thread may call any method. Models are referenced by
/// content and requests, so UpsertModel() a model before recording either.
class ControlStore {
 public:
  /// "sqlite:///abs/path.sqlite", "sqlite://relative/path.sqlite" or a bare path open (or
  /// create) a SQLite catalog; its directory must exist. The schema is migrated to
  /// kControlSchemaVersion. "postgresql://user[:password]@host:port/db" (or postgres://)
  /// opens PostgreSQL with the same schema. Anything else is Invalid.
  static Result<std::unique_ptr<ControlStore>> Open(const std::string& url);
  virtual ~ControlStore() = default;

  /// Inserts the model, or updates every field but created_at. Sets updated_at (and
  /// created_at on insert).
  virtual Status UpsertModel(const ModelRecord& model) = 0;
  /// Sets the pod class of `model` (taken at its manager's next start), recording the model
  /// if the catalog has no row for it yet. The class name is not checked here.
  virtual Status SetPodClass(const std::string& model, const std::string& pod_class) = 0;
  /// Records why the manager of `model` is not running yet (status "pending"); an empty
  /// `reason` clears it.
  virtual Status SetPending(const std::string& model, const std::string& reason) = 0;
  /// The model, or nullopt when there is none with this id.
  virtual Result<std::optional<ModelRecord>> GetModel(const std::string& id) = 0;
  /// Every model, ordered by id.
  virtual Result<std::vector<ModelRecord>> ListModels() = 0;

  /// Records rows in one transaction, all or none, keyed by (model, version, table_name): a
  /// new key is inserted, a known one gets the new rows/bytes/URIs/checksum and keeps its
  /// created_at, so replaying the same records changes nothing.
  virtual Status RecordContent(const std::vector<ContentRecord>& rows) = 0;
  /// A model's content, ordered by version, then table_name.
  virtual Result<std::vector<ContentRecord>> ListContent(const std::string& model) = 0;

  /// Logs rows in one transaction, all or none, keyed by (model, request_id): the first
  /// record of a key is kept; a replayed one is ignored, neither duplicated nor overwritten.
  virtual Status LogRequests(const std::vector<RequestLogRecord>& rows) = 0;
  /// At most `limit` (> 0) of a model's requests, newest (most recently logged) first.
  virtual Result<std::vector<RequestLogRecord>> ListRequests(const std::string& model,
                                                             int64_t limit) = 0;

  /// The schema version the catalog is at (kControlSchemaVersion once opened).
  virtual Result<int> SchemaVersion() = 0;
  /// The catalog's URL in canonical form, e.g. "sqlite:///data/control.sqlite".
  virtual std::string url() const = 0;
};

}  // namespace teatree
