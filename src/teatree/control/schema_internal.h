#pragma once

// The control catalog's schema and statements, shared by the SQLite and PostgreSQL
// backends. Parameters are written `?N`; PgParams() turns them into PostgreSQL's `$N`.

#include <cstddef>
#include <string>
#include <string_view>

#include "teatree/control/control_store.h"

namespace teatree {

// The schema, one migration per entry: migration N is kMigrations[N - 1]. Append only; never
// edit a released entry. Kept dialect-neutral (BIGINT, DOUBLE PRECISION, TEXT timestamps in
// ISO-8601 UTC, ON CONFLICT) so PostgreSQL can run the same text.
inline constexpr std::string_view kMigrations[] = {
    // 1: models, the content of published versions, and request outcomes. request_log.seq
    // orders a model's requests by when they were logged; wall clocks of different hosts
    // need not agree, so created_at alone cannot.
    R"sql(
CREATE TABLE goal_model (
  id                TEXT NOT NULL PRIMARY KEY,
  engine            TEXT NOT NULL,
  status            TEXT NOT NULL,
  current_version   BIGINT NOT NULL,
  published_version BIGINT NOT NULL,
  manager_endpoint  TEXT NOT NULL,
  lease_holder      TEXT NOT NULL,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE TABLE content_index (
  model            TEXT NOT NULL REFERENCES goal_model (id),
  version          BIGINT NOT NULL,
  table_name       TEXT NOT NULL,
  row_count        BIGINT NOT NULL,
  byte_count       BIGINT NOT NULL,
  archive_uri      TEXT NOT NULL,
  version_file_uri TEXT NOT NULL,
  checksum         TEXT NOT NULL,
  created_at       TEXT NOT NULL,
  PRIMARY KEY (model, version, table_name)
);
CREATE TABLE request_log (
  model       TEXT NOT NULL REFERENCES goal_model (id),
  request_id  TEXT NOT NULL,
  seq         BIGINT NOT NULL,
  op          TEXT NOT NULL,
  status      TEXT NOT NULL,
  version     BIGINT NOT NULL,
  duration_ms DOUBLE PRECISION NOT NULL,
  error       TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY (model, request_id),
  UNIQUE (model, seq)
);
CREATE INDEX request_log_model_created_at ON request_log (model, created_at);
)sql",
    // 2: the pod class a model's manager runs in on Kubernetes (set by `teatree model
    // set-class`, never by the managers' own upserts), and why its manager is not running
    // yet (set by the dispatcher, cleared by the manager's first upsert).
    R"sql(
ALTER TABLE goal_model ADD COLUMN pod_class TEXT NOT NULL DEFAULT 'small';
ALTER TABLE goal_model ADD COLUMN pending_reason TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kControlSchemaVersion,
              "kControlSchemaVersion must equal the number of migrations");

inline constexpr std::string_view kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)";

inline constexpr std::string_view kUpsertModel = R"sql(
INSERT INTO goal_model (id, engine, status, current_version, published_version,
                        manager_endpoint, lease_holder, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
ON CONFLICT (id) DO UPDATE SET
  engine = excluded.engine, status = excluded.status,
  current_version = excluded.current_version, published_version = excluded.published_version,
  manager_endpoint = excluded.manager_endpoint, lease_holder = excluded.lease_holder,
  updated_at = excluded.updated_at, pending_reason = '')sql";

inline constexpr std::string_view kSelectModels = R"sql(
SELECT id, engine, status, current_version, published_version, manager_endpoint, lease_holder,
       created_at, updated_at, pod_class, pending_reason
FROM goal_model)sql";

/// Sets a model's pod class, making its row if it has none yet (a model created but never
/// started; its manager fills in the rest).
inline constexpr std::string_view kSetPodClass = R"sql(
INSERT INTO goal_model (id, engine, status, current_version, published_version,
                        manager_endpoint, lease_holder, created_at, updated_at, pod_class)
VALUES (?1, 'duckdb', 'stopped', 0, 0, '', '', ?3, ?3, ?2)
ON CONFLICT (id) DO UPDATE SET pod_class = excluded.pod_class, updated_at = excluded.updated_at)sql";

/// Marks a model's manager as waiting to start, and why ("" once it is no longer waiting).
inline constexpr std::string_view kSetPending = R"sql(
INSERT INTO goal_model (id, engine, status, current_version, published_version,
                        manager_endpoint, lease_holder, created_at, updated_at, pending_reason)
VALUES (?1, 'duckdb', 'pending', 0, 0, '', '', ?3, ?3, ?2)
ON CONFLICT (id) DO UPDATE SET pending_reason = excluded.pending_reason,
  status = CASE WHEN excluded.pending_reason = '' THEN goal_model.status ELSE 'pending' END,
  updated_at = excluded.updated_at)sql";

inline constexpr std::string_view kUpsertContent = R"sql(
INSERT INTO content_index (model, version, table_name, row_count, byte_count, archive_uri,
                           version_file_uri, checksum, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (model, version, table_name) DO UPDATE SET
  row_count = excluded.row_count, byte_count = excluded.byte_count,
  archive_uri = excluded.archive_uri, version_file_uri = excluded.version_file_uri,
  checksum = excluded.checksum)sql";

inline constexpr std::string_view kSelectContent = R"sql(
SELECT model, version, table_name, row_count, byte_count, archive_uri, version_file_uri,
       checksum, created_at
FROM content_index WHERE model = ?1 ORDER BY version, table_name)sql";

/// The head of a request_log INSERT, for VALUES lists of any length.
inline constexpr std::string_view kInsertRequestColumns =
    "INSERT INTO request_log (model, request_id, seq, op, status, version, duration_ms, error, "
    "created_at) VALUES ";

inline constexpr std::string_view kInsertRequest = R"sql(
INSERT INTO request_log (model, request_id, seq, op, status, version, duration_ms, error,
                         created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (model, request_id) DO NOTHING)sql";

inline constexpr std::string_view kNextRequestSeq =
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM request_log WHERE model = ?1";

inline constexpr std::string_view kSelectRequests = R"sql(
SELECT request_id, model, op, status, version, duration_ms, error, created_at
FROM request_log WHERE model = ?1 ORDER BY seq DESC LIMIT ?2)sql";

/// `sql` with every `?N` parameter written as `$N`.
inline std::string PgParams(std::string_view sql) {
  std::string out(sql);
  for (char& c : out) {
    if (c == '?') c = '$';
  }
  return out;
}

}  // namespace teatree
