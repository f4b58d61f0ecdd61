#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "teatree/control/control_store.h"

namespace teatree {

/// The control catalog on PostgreSQL (libpqxx), for deployments where several hosts share
/// it: the same schema, migrations and statements as SQLite. A small pool of connections
/// serves concurrent callers; a connection that breaks is dropped and the next call connects
/// again, so a restarted server is picked up by itself (callers retry: see CatalogRecorder).
/// Writers of one model are serialised by a lock on its goal_model row, so request sequence
/// numbers stay dense across hosts. Thread-safe.
class PgControlStore : public ControlStore {
 public:
  /// Connects to `url` (postgresql://user[:password]@host:port/db), migrates the schema.
  static Result<std::unique_ptr<PgControlStore>> Open(const std::string& url);
  ~PgControlStore() override;

  Status UpsertModel(const ModelRecord& model) override;
  Status SetPodClass(const std::string& model, const std::string& pod_class) override;
  Status SetPending(const std::string& model, const std::string& reason) override;
  Result<std::optional<ModelRecord>> GetModel(const std::string& id) override;
  Result<std::vector<ModelRecord>> ListModels() override;
  Status RecordContent(const std::vector<ContentRecord>& rows) override;
  Result<std::vector<ContentRecord>> ListContent(const std::string& model) override;
  Status LogRequests(const std::vector<RequestLogRecord>& rows) override;
  Result<std::vector<RequestLogRecord>> ListRequests(const std::string& model,
                                                     int64_t limit) override;
  Result<int> SchemaVersion() override;
  std::string url() const override { return url_; }

 private:
  struct Pool;
  PgControlStore(std::string url, std::unique_ptr<Pool> pool);
  Status Migrate();
  /// Runs one of the single-field model statements (?1 model, ?2 value, ?3 now).
  Status SetModelField(std::string_view sql, const std::string& model, const std::string& value,
                       const std::string& what);

  const std::string url_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace teatree
