#include "teatree/engine/arrow/version_reads.h"

#include "teatree/common/sql_quote.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/model_sql.h"

namespace teatree {
namespace fs = std::filesystem;
namespace {

/// read_parquet over a table's files, for a view or a copy.
std::string ScanSql(const ManifestStore& store, const TableManifest& table) {
  std::string files;
  for (const auto& file : table.files) {
    files +=
        (files.empty() ? "" : ", ") + SqlStringLiteral((store.model_dir() / file.path).string());
  }
  return "SELECT * FROM read_parquet([" + files + "])";
}

/// Gives `connection`'s database the version's tables (as views over their files, or copied
/// in when `copy`) and the bookkeeping tables that say which version it is.
Status DefineVersion(DuckConnection& connection, const ManifestStore& store,
                     const Manifest& manifest, bool copy) {
  ARROW_RETURN_NOT_OK(connection.Execute(kBookkeepingSql));
  ARROW_RETURN_NOT_OK(connection.Execute("UPDATE _teatree_version SET version = " +
                                         std::to_string(manifest.version)));
  for (const auto& [name, table] : manifest.tables) {
    ARROW_RETURN_NOT_OK(connection.Execute("INSERT INTO _teatree_tables VALUES (" +
                                           SqlStringLiteral(name) + ", " +
                                           SqlStringLiteral(table.schema.ToJson().dump()) + ")"));
    if (table.files.empty() || copy) {
      ARROW_RETURN_NOT_OK(connection.Execute(CreateTableSql(table.schema)));
      if (!table.files.empty()) {
        ARROW_RETURN_NOT_OK(
            connection.Execute("INSERT INTO " + SqlIdentifier(name) + " " + ScanSql(store, table)));
      }
      continue;
    }
    ARROW_RETURN_NOT_OK(
        connection.Execute("CREATE VIEW " + SqlIdentifier(name) + " AS " + ScanSql(store, table)));
  }
  return Status::OK();
}

}  // namespace

std::vector<std::string> ManifestFunctionContext::Tables() const {
  std::vector<std::string> names;
  for (const auto& [name, table] : manifest_.tables) names.push_back(name);
  return names;
}

Result<std::shared_ptr<arrow::dataset::Dataset>> ManifestFunctionContext::Table(
    const std::string& name) {
  auto it = manifest_.tables.find(name);
  if (it == manifest_.tables.end()) {
    return Status::Invalid("table ", name, " does not exist in this model");
  }
  return OpenTableDataset(model_dir_, it->second);
}

Result<std::shared_ptr<DuckReader>> OpenVersionReader(const ManifestStore& store,
                                                      const Manifest& manifest,
                                                      const DuckReaderOptions& reader_options) {
  DuckReaderOptions options = reader_options;
  options.native_context = [model_dir = store.model_dir(), manifest](nlohmann::json args,
                                                                     StepRecorder& steps) {
    return std::make_unique<ManifestFunctionContext>(model_dir, manifest, std::move(args), steps);
  };
  DuckDatabaseOptions db_options;
  if (!options.memory_limit.empty()) db_options.settings["memory_limit"] = options.memory_limit;
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open(db_options));
  {
    ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
    ARROW_RETURN_NOT_OK(DefineVersion(*connection, store, manifest, /*copy=*/false));
    std::string datasets = (store.model_dir() / "datasets").string();
    if (!datasets.ends_with('/')) datasets += '/';
    ARROW_RETURN_NOT_OK(
        connection->Execute("SET allowed_directories = [" + SqlStringLiteral(datasets) +
                            "]; SET enable_external_access = false; " + kReadSettingsSql));
  }
  return DuckReader::Make(std::move(db), options);
}

Status ExportVersionFile(const ManifestStore& store, const Manifest& manifest,
                         const fs::path& target) {
  std::error_code ec;
  if (fs::exists(target, ec)) return Status::IOError(target.string(), " exists already");
  Status status = [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = target.string()}));
    ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
    ARROW_RETURN_NOT_OK(connection->Execute("BEGIN TRANSACTION"));
    ARROW_RETURN_NOT_OK(DefineVersion(*connection, store, manifest, /*copy=*/true));
    ARROW_RETURN_NOT_OK(connection->Execute("COMMIT"));
    return connection->Execute("CHECKPOINT");
  }();
  if (!status.ok()) {
    fs::remove(target, ec);
    fs::remove(target.string() + ".wal", ec);
  }
  return status;
}

}  // namespace teatree
