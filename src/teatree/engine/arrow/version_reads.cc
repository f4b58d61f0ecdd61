#include "teatree/engine/arrow/version_reads.h"

#include <arrow/dataset/api.h>

#include <fstream>
#include <optional>
#include <thread>

#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/model_sql.h"

namespace teatree {
namespace fs = std::filesystem;
namespace {

/// The table function of a version reader that scans a table's files through the Arrow C
/// data interface.
constexpr const char* kArrowScan = "teatree_scan";

/// How a version's tables reach DuckDB.
enum class TableForm {
  kCopy,         // Copied in: a self-contained file.
  kParquetView,  // Views over read_parquet of the files: any DuckDB on this machine reads them.
  kArrowScan,    // Views over kArrowScan: the version reader's.
};

/// The rows of `name` (`table`) as `form` reads them.
std::string ScanSql(const fs::path& model_dir, const std::string& name, const TableManifest& table,
                    TableForm form) {
  if (form == TableForm::kArrowScan) {
    return std::string("SELECT * FROM ") + kArrowScan + "(" + SqlStringLiteral(name) + ")";
  }
  std::string files;
  for (const auto& file : table.files) {
    files += (files.empty() ? "" : ", ") +
             SqlStringLiteral(fs::absolute(model_dir / file.path).string());
  }
  return "SELECT * FROM read_parquet([" + files + "])";
}

/// Table `name` of `manifest`; an error saying so when it has none.
Result<const TableManifest*> FindTable(const Manifest& manifest, const std::string& name) {
  auto it = manifest.tables.find(name);
  if (it == manifest.tables.end()) {
    return Status::Invalid("table ", name, " does not exist in this model");
  }
  return &it->second;
}

/// A version's tables as Arrow datasets (OpenTableDataset: hot copies memory-mapped, Parquet
/// for the rest), for DuckDB to scan through the Arrow C data interface.
class ManifestTables final : public ArrowTables {
 public:
  ManifestTables(fs::path model_dir, Manifest manifest)
      : model_dir_(std::move(model_dir)), manifest_(std::move(manifest)) {}

  Result<std::shared_ptr<arrow::Schema>> Schema(const std::string& name) const override {
    ARROW_ASSIGN_OR_RAISE(const TableManifest* table, FindTable(manifest_, name));
    return table->schema.ToArrow();
  }
  Result<std::shared_ptr<arrow::RecordBatchReader>> Scan(
      const std::string& name, const std::vector<std::string>& columns) const override {
    ARROW_ASSIGN_OR_RAISE(const TableManifest* table, FindTable(manifest_, name));
    ARROW_ASSIGN_OR_RAISE(auto dataset, OpenTableDataset(model_dir_, *table));
    ARROW_ASSIGN_OR_RAISE(auto builder, dataset->NewScan());
    ARROW_RETURN_NOT_OK(builder->Project(columns));
    ARROW_ASSIGN_OR_RAISE(auto scanner, builder->Finish());
    return scanner->ToRecordBatchReader();
  }

 private:
  fs::path model_dir_;
  Manifest manifest_;
};

/// Gives `connection`'s database the version's tables, in `form`, and the bookkeeping tables
/// that say which version it is.
Status DefineVersion(DuckConnection& connection, const fs::path& model_dir,
                     const Manifest& manifest, TableForm form) {
  const bool copy = form == TableForm::kCopy;
  ARROW_RETURN_NOT_OK(connection.Execute(kBookkeepingSql));
  ARROW_RETURN_NOT_OK(connection.Execute("UPDATE _teatree_version SET version = " +
                                         std::to_string(manifest.version)));
  for (const auto& [name, table] : manifest.tables) {
    ARROW_RETURN_NOT_OK(
        connection.Execute("INSERT INTO _teatree_tables VALUES (" + SqlStringLiteral(name) + ", " +
                           SqlStringLiteral(DumpJson(table.schema.ToJson())) + ")"));
    if (table.files.empty() || copy) {
      ARROW_RETURN_NOT_OK(connection.Execute(CreateTableSql(table.schema)));
      if (!table.files.empty()) {
        ARROW_RETURN_NOT_OK(connection.Execute("INSERT INTO " + SqlIdentifier(name) + " " +
                                               ScanSql(model_dir, name, table, form)));
      }
      continue;
    }
    ARROW_RETURN_NOT_OK(connection.Execute("CREATE VIEW " + SqlIdentifier(name) + " AS " +
                                           ScanSql(model_dir, name, table, form)));
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
  ARROW_ASSIGN_OR_RAISE(const TableManifest* table, FindTable(manifest_, name));
  return OpenTableDataset(model_dir_, *table);
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
    ARROW_RETURN_NOT_OK(connection->RegisterArrowScan(
        kArrowScan, std::make_shared<ManifestTables>(store.model_dir(), manifest)));
    ARROW_RETURN_NOT_OK(
        DefineVersion(*connection, store.model_dir(), manifest, TableForm::kArrowScan));
    for (const auto& [name, path] : manifest.attachments) {
      ARROW_RETURN_NOT_OK(connection->Execute("ATTACH " + SqlStringLiteral(path) + " AS " +
                                              SqlIdentifier(name) + " (READ_ONLY)"));
    }
    ARROW_RETURN_NOT_OK(connection->Execute(
        ConfineFileAccessSql({store.model_dir() / "datasets"}, store.model_dir() / "tmp")));
  }
  return DuckReader::Make(std::move(db), options);
}

namespace {

/// Writes `manifest` as a DuckDB file at `target`: its tables copied in, or views over the
/// Parquet files.
Status WriteVersion(const fs::path& model_dir, const Manifest& manifest, const fs::path& target,
                    TableForm form) {
  std::error_code ec;
  if (fs::exists(target, ec)) return Status::IOError(target.string(), " exists already");
  Status status = [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open({.path = target.string()}));
    ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
    ARROW_RETURN_NOT_OK(connection->Execute("BEGIN TRANSACTION"));
    ARROW_RETURN_NOT_OK(DefineVersion(*connection, model_dir, manifest, form));
    ARROW_RETURN_NOT_OK(connection->Execute("COMMIT"));
    return connection->Execute("CHECKPOINT");
  }();
  if (!status.ok()) {
    fs::remove(target, ec);
    fs::remove(target.string() + ".wal", ec);
  }
  return status;
}

/// The manifest a version file of an Arrow-engine model stands for: versions/v<N>.duckdb
/// beside manifests/v<N>.json; nothing for a DuckDB-engine version file.
std::optional<fs::path> ManifestOf(const fs::path& version_file) {
  const std::string name = version_file.filename().string();
  if (!name.starts_with("v") || !name.ends_with(".duckdb")) return std::nullopt;
  const fs::path manifest = version_file.parent_path().parent_path() / "manifests" /
                            (name.substr(0, name.size() - 7) + ".json");
  std::error_code ec;
  if (!fs::exists(manifest, ec)) return std::nullopt;
  return manifest;
}

}  // namespace

Status ExportVersionFile(const fs::path& model_dir, const Manifest& manifest,
                         const fs::path& target) {
  return WriteVersion(model_dir, manifest, target, TableForm::kCopy);
}

Status LinkVersionFile(const fs::path& model_dir, const Manifest& manifest,
                       const fs::path& target) {
  return WriteVersion(model_dir, manifest, target, TableForm::kParquetView);
}

Result<ShippableVersion> ShippableVersionFile(const fs::path& version_file) {
  const auto manifest_path = ManifestOf(version_file);
  if (!manifest_path) return ShippableVersion{.path = version_file};
  ARROW_ASSIGN_OR_RAISE(auto text, ReadFileToString(*manifest_path));
  auto json = ParseJson(text, "the manifest");
  if (!json.ok()) {
    return Status::IOError(manifest_path->string(), ": ", json.status().message(),
                           ": the version cannot be exported");
  }
  ARROW_ASSIGN_OR_RAISE(auto manifest, Manifest::FromJson(*json));
  ShippableVersion shippable{
      .path = version_file.string() + ".export." +
              std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id())) + ".tmp",
      .temporary = true};
  std::error_code ec;
  fs::remove(shippable.path, ec);
  ARROW_RETURN_NOT_OK(
      ExportVersionFile(version_file.parent_path().parent_path(), manifest, shippable.path));
  return shippable;
}

}  // namespace teatree
