#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/control/control_store.h"

namespace teatree {

class SqliteDb;

/// The control catalog in one SQLite file (see ControlStore for the contract). Several
/// processes may open the same file: SQLite's WAL locking lets readers run beside the one
/// writer, and each write transaction waits up to SqliteDb::kBusyTimeoutMs for the write lock.
/// Thread-safe: one connection, every call serialised by a mutex.
class SqliteControlStore : public ControlStore {
 public:
  /// Opens or creates the catalog at `path` (whose directory must exist) and applies the
  /// migrations it lacks, each in its own transaction. Fails, naming the file, when the file
  /// was written by a newer Teatree.
  static Result<std::unique_ptr<SqliteControlStore>> Open(const std::string& path);
  ~SqliteControlStore() override;

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
  SqliteControlStore(std::unique_ptr<SqliteDb> db, std::string url);
  /// Runs one of the single-field model statements (?1 model, ?2 value, ?3 now); takes mutex_.
  Status SetModelField(std::string_view sql, const std::string& model, const std::string& value,
                       const std::string& what);

  // Helpers below expect mutex_ to be held.
  Status Migrate();
  Status ApplyMigration(int version);
  Result<int> ReadSchemaVersion();
  Status CheckSchemaNotNewer(int version) const;
  Status CheckModelExists(const std::string& model, std::string_view purpose);
  Status RecordContentRow(const ContentRecord& row, const std::string& now);

  const std::string url_;
  std::mutex mutex_;
  // State below is protected by mutex_.
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace teatree
