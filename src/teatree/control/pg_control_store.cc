#include "teatree/control/pg_control_store.h"

#include <charconv>
#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "teatree/control/control_internal.h"
#include "teatree/control/schema_internal.h"

namespace teatree {
namespace {

/// Connections kept for reuse; more are made when all are busy.
constexpr size_t kIdleConnections = 4;
/// Any constant: the key of the advisory lock that serialises migrations.
constexpr int64_t kMigrationLock = 0x7ea7ee;

ModelRecord ReadModel(const pqxx::row& row) {
  return {.id = row[0].as<std::string>(),
          .engine = row[1].as<std::string>(),
          .status = row[2].as<std::string>(),
          .current_version = row[3].as<int64_t>(),
          .published_version = row[4].as<int64_t>(),
          .manager_endpoint = row[5].as<std::string>(),
          .lease_holder = row[6].as<std::string>(),
          .pod_class = row[9].as<std::string>(),
          .pending_reason = row[10].as<std::string>(),
          .created_at = row[7].as<std::string>(),
          .updated_at = row[8].as<std::string>()};
}

ContentRecord ReadContent(const pqxx::row& row) {
  return {.model = row[0].as<std::string>(),
          .version = row[1].as<int64_t>(),
          .table_name = row[2].as<std::string>(),
          .rows = row[3].as<int64_t>(),
          .bytes = row[4].as<int64_t>(),
          .archive_uri = row[5].as<std::string>(),
          .version_file_uri = row[6].as<std::string>(),
          .checksum = row[7].as<std::string>(),
          .created_at = row[8].as<std::string>()};
}

RequestLogRecord ReadRequest(const pqxx::row& row) {
  return {.request_id = row[0].as<std::string>(),
          .model = row[1].as<std::string>(),
          .op = row[2].as<std::string>(),
          .status = row[3].as<std::string>(),
          .version = row[4].as<int64_t>(),
          .duration_ms = row[5].as<double>(),
          .error = row[6].as<std::string>(),
          .created_at = row[7].as<std::string>()};
}

/// Fails unless `model` is in goal_model; locks its row until the transaction ends (`lock`:
/// "UPDATE" for writers that must not interleave, "SHARE" otherwise).
void RequireModel(pqxx::work& tx, const std::string& model, const char* lock,
                  std::string_view purpose, const std::string& url) {
  const auto found =
      tx.exec_params(std::string("SELECT 1 FROM goal_model WHERE id = $1 FOR ") + lock, model);
  if (found.empty()) {
    throw std::invalid_argument("model \"" + model + "\" is not in control catalog " + url +
                                ": UpsertModel() it before " + std::string(purpose));
  }
}

}  // namespace

/// Idle connections; a call takes one (or makes one) and gives it back unless it broke.
struct PgControlStore::Pool {
  std::string url;
  std::mutex mutex;
  std::vector<std::unique_ptr<pqxx::connection>> idle;  // Protected by mutex.

  /// Runs `body` on a connection; every failure becomes a Status naming `context`.
  Status Run(const std::string& context, const std::function<void(pqxx::connection&)>& body) {
    std::unique_ptr<pqxx::connection> connection;
    {
      std::lock_guard lock(mutex);
      if (!idle.empty()) {
        connection = std::move(idle.back());
        idle.pop_back();
      }
    }
    try {
      if (!connection) connection = std::make_unique<pqxx::connection>(url);
      body(*connection);
    } catch (const std::invalid_argument& e) {
      Give(std::move(connection));
      return Status::Invalid(e.what());
    } catch (const pqxx::broken_connection& e) {
      return Status::IOError(context, ": PostgreSQL at ", RedactUrl(url), " is unreachable (",
                             e.what(), "); the next call connects again");
    } catch (const std::exception& e) {
      Give(std::move(connection));
      return Status::IOError(context, ": ", e.what());
    }
    Give(std::move(connection));
    return Status::OK();
  }

  void Give(std::unique_ptr<pqxx::connection> connection) {
    if (!connection || !connection->is_open()) return;
    std::lock_guard lock(mutex);
    if (idle.size() < kIdleConnections) idle.push_back(std::move(connection));
  }
};

PgControlStore::PgControlStore(std::string url, std::unique_ptr<Pool> pool)
    : url_(std::move(url)), pool_(std::move(pool)) {}
PgControlStore::~PgControlStore() = default;

Result<std::unique_ptr<PgControlStore>> PgControlStore::Open(const std::string& url) {
  auto pool = std::make_unique<Pool>();
  pool->url = url;
  std::unique_ptr<PgControlStore> store(new PgControlStore(url, std::move(pool)));
  ARROW_RETURN_NOT_OK(store->Migrate());
  return store;
}

Status PgControlStore::Migrate() {
  const std::string shown = RedactUrl(url_);
  return pool_->Run("cannot migrate control catalog " + shown, [&](pqxx::connection& c) {
    pqxx::work tx(c);
    // One migrator at a time, across processes; the lock ends with the transaction.
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    tx.exec(std::string(kCreateMigrationsTable));
    const int current =
        tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0].as<int>();
    if (current > kControlSchemaVersion) {
      throw std::invalid_argument("control catalog " + shown +
                                  " was written by a newer Teatree (schema " +
                                  std::to_string(current) + " > " +
                                  std::to_string(kControlSchemaVersion) + "): upgrade teatree");
    }
    for (int version = current + 1; version <= kControlSchemaVersion; ++version) {
      tx.exec(std::string(kMigrations[version - 1]));
      tx.exec_params("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version,
                     NowIso8601Utc());
    }
    tx.commit();
  });
}

Result<int> PgControlStore::SchemaVersion() {
  int version = 0;
  ARROW_RETURN_NOT_OK(
      pool_->Run("cannot read the schema version of " + RedactUrl(url_), [&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        version = tx.exec1(
                        "SELECT COALESCE(MAX(version), 0) FROM "
                        "schema_migrations")[0]
                      .as<int>();
      }));
  return version;
}

Status PgControlStore::UpsertModel(const ModelRecord& model) {
  ARROW_RETURN_NOT_OK(ValidateModelRecord(model));
  return pool_->Run("cannot upsert model \"" + model.id + "\" in " + RedactUrl(url_),
                    [&](pqxx::connection& c) {
                      pqxx::work tx(c);
                      tx.exec_params(PgParams(kUpsertModel), model.id, model.engine, model.status,
                                     model.current_version, model.published_version,
                                     model.manager_endpoint, model.lease_holder, NowIso8601Utc());
                      tx.commit();
                    });
}

Status PgControlStore::SetModelField(std::string_view sql, const std::string& model,
                                     const std::string& value, const std::string& what) {
  return pool_->Run("cannot set the " + what + " of \"" + model + "\" in " + RedactUrl(url_),
                    [&](pqxx::connection& c) {
                      pqxx::work tx(c);
                      tx.exec_params(PgParams(sql), model, value, NowIso8601Utc());
                      tx.commit();
                    });
}

Status PgControlStore::SetPodClass(const std::string& model, const std::string& pod_class) {
  return SetModelField(kSetPodClass, model, pod_class, "pod class");
}

Status PgControlStore::SetPending(const std::string& model, const std::string& reason) {
  return SetModelField(kSetPending, model, reason, "pending reason");
}

Result<std::optional<ModelRecord>> PgControlStore::GetModel(const std::string& id) {
  std::optional<ModelRecord> model;
  ARROW_RETURN_NOT_OK(
      pool_->Run("cannot read model \"" + id + "\" from " + RedactUrl(url_), [&](auto& c) {
        pqxx::nontransaction tx(c);
        const auto rows = tx.exec_params(std::string(kSelectModels) + " WHERE id = $1", id);
        if (!rows.empty()) model = ReadModel(rows[0]);
      }));
  return model;
}

Result<std::vector<ModelRecord>> PgControlStore::ListModels() {
  std::vector<ModelRecord> models;
  ARROW_RETURN_NOT_OK(pool_->Run("cannot list models in " + RedactUrl(url_), [&](auto& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec(std::string(kSelectModels) + " ORDER BY id")) {
      models.push_back(ReadModel(row));
    }
  }));
  return models;
}

Status PgControlStore::RecordContent(const std::vector<ContentRecord>& rows) {
  for (const auto& row : rows) ARROW_RETURN_NOT_OK(ValidateContentRecord(row));
  if (rows.empty()) return Status::OK();
  return pool_->Run("cannot record content in " + RedactUrl(url_), [&](pqxx::connection& c) {
    pqxx::work tx(c);
    std::set<std::string> known;
    const std::string now = NowIso8601Utc();
    for (const auto& row : rows) {
      if (known.insert(row.model).second) {
        RequireModel(tx, row.model, "SHARE", "recording its content", RedactUrl(url_));
      }
      tx.exec_params(PgParams(kUpsertContent), row.model, row.version, row.table_name, row.rows,
                     row.bytes, row.archive_uri, row.version_file_uri, row.checksum, now);
    }
    tx.commit();
  });
}

Result<std::vector<ContentRecord>> PgControlStore::ListContent(const std::string& model) {
  std::vector<ContentRecord> content;
  ARROW_RETURN_NOT_OK(pool_->Run(
      "cannot list the content of model \"" + model + "\" in " + RedactUrl(url_), [&](auto& c) {
        pqxx::nontransaction tx(c);
        for (const auto& row : tx.exec_params(PgParams(kSelectContent), model)) {
          content.push_back(ReadContent(row));
        }
      }));
  return content;
}

Status PgControlStore::LogRequests(const std::vector<RequestLogRecord>& rows) {
  for (const auto& row : rows) ARROW_RETURN_NOT_OK(ValidateRequestLogRecord(row));
  if (rows.empty()) return Status::OK();
  return pool_->Run("cannot log requests in " + RedactUrl(url_), [&](pqxx::connection& c) {
    pqxx::work tx(c);
    std::map<std::string, int64_t> next_seq;
    const std::string now = NowIso8601Utc();
    // Many rows per statement: one round trip per chunk, not per row. A replayed id inserts
    // nothing and leaves a gap in seq, which only orders.
    constexpr size_t kRowsPerStatement = 500;
    for (size_t first = 0; first < rows.size(); first += kRowsPerStatement) {
      std::vector<std::string> params;
      std::string values;
      for (size_t i = first; i < std::min(rows.size(), first + kRowsPerStatement); ++i) {
        const RequestLogRecord& row = rows[i];
        auto [entry, is_new] = next_seq.try_emplace(row.model, 0);
        if (is_new) {
          // The row lock keeps other writers of this model out until the commit.
          RequireModel(tx, row.model, "UPDATE", "logging its requests", RedactUrl(url_));
          entry->second = tx.exec_params1(PgParams(kNextRequestSeq), row.model)[0].as<int64_t>();
        }
        values += values.empty() ? "(" : ", (";
        for (int k = 1; k <= 9; ++k) {
          values += (k == 1 ? "$" : ", $") + std::to_string(params.size() + k);
        }
        values += ")";
        char duration[32];
        const auto end = std::to_chars(duration, duration + sizeof(duration), row.duration_ms).ptr;
        params.insert(params.end(), {row.model, row.request_id, std::to_string(entry->second++),
                                     row.op, row.status, std::to_string(row.version),
                                     std::string(duration, end), row.error, now});
      }
      tx.exec_params(std::string(kInsertRequestColumns) + values +
                         " ON CONFLICT (model, request_id) DO NOTHING",
                     pqxx::prepare::make_dynamic_params(params));
    }
    tx.commit();
  });
}

Result<std::vector<RequestLogRecord>> PgControlStore::ListRequests(const std::string& model,
                                                                   int64_t limit) {
  if (limit <= 0) {
    return Status::Invalid("cannot list the requests of model \"", model, "\" with limit ", limit,
                           ": the limit must be positive");
  }
  std::vector<RequestLogRecord> requests;
  ARROW_RETURN_NOT_OK(pool_->Run(
      "cannot list the requests of model \"" + model + "\" in " + RedactUrl(url_), [&](auto& c) {
        pqxx::nontransaction tx(c);
        for (const auto& row : tx.exec_params(PgParams(kSelectRequests), model, limit)) {
          requests.push_back(ReadRequest(row));
        }
      }));
  return requests;
}

}  // namespace teatree
