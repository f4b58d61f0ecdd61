#include "teatree/engine/arrow/manifest_store.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/dataset/api.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <arrow/util/byte_size.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"

namespace teatree {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifests = "manifests";
constexpr const char* kDatasets = "datasets";

/// "v12.json" -> 12; otherwise nullopt.
std::optional<int64_t> ManifestVersion(const std::string& name) {
  if (name.size() < 7 || name[0] != 'v' || !name.ends_with(".json")) return std::nullopt;
  const std::string digits = name.substr(1, name.size() - 6);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  return std::stoll(digits);
}

bool IsTemporary(const std::string& name) { return name.find(".tmp") != std::string::npos; }

/// A data file's hot copy: the same name, ending in .arrow.
fs::path HotCopyPath(fs::path data_file) { return data_file.replace_extension(".arrow"); }

/// The hot copy of `data_file`, memory-mapped; null when it has none.
std::shared_ptr<arrow::io::MemoryMappedFile> MapHotCopy(const fs::path& data_file) {
  auto mapped =
      arrow::io::MemoryMappedFile::Open(HotCopyPath(data_file).string(), arrow::io::FileMode::READ);
  return mapped.ok() ? *mapped : nullptr;
}

/// Every row of a hot copy: slices of its mapping, nothing decoded.
Result<std::shared_ptr<arrow::Table>> ReadHotCopy(
    const std::shared_ptr<arrow::io::MemoryMappedFile>& copy) {
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(copy));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int i = 0; i < reader->num_record_batches(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
    batches.push_back(std::move(batch));
  }
  return arrow::Table::FromRecordBatches(reader->schema(), std::move(batches));
}

/// Writes `rows` as an uncompressed Arrow IPC file at `target`, in batches a scan can spread
/// over threads, durably (a temporary file renamed).
Status WriteHotCopy(const arrow::Table& rows, const fs::path& target) {
  constexpr int64_t kBatchRows = 1 << 16;
  const fs::path tmp = target.string() + ".tmp";
  auto write = [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(tmp.string()));
    ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(out, rows.schema()));
    ARROW_RETURN_NOT_OK(writer->WriteTable(rows, kBatchRows));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_RETURN_NOT_OK(out->Close());
    return DurableRename(tmp, target);
  };
  Status written = write();
  std::error_code ec;
  if (!written.ok()) fs::remove(tmp, ec);
  return written;
}

/// The positions of `columns` in `schema`, or an error naming `file` and the missing one.
Result<std::vector<int>> ColumnIndices(const arrow::Schema& schema,
                                       const std::vector<std::string>& columns,
                                       const std::string& file) {
  std::vector<int> indices;
  for (const auto& name : columns) {
    const int index = schema.GetFieldIndex(name);
    if (index < 0) return Status::Invalid(file, " has no column ", name);
    indices.push_back(index);
  }
  return indices;
}

/// A scalar as manifest JSON: numbers as numbers, everything else as its text.
nlohmann::json ScalarJson(const arrow::Scalar& scalar) {
  if (!scalar.is_valid) return nullptr;
  if (arrow::is_integer(scalar.type->id())) {
    auto cast = scalar.CastTo(arrow::int64());
    if (cast.ok()) return std::static_pointer_cast<arrow::Int64Scalar>(*cast)->value;
  }
  if (arrow::is_floating(scalar.type->id())) {
    auto cast = scalar.CastTo(arrow::float64());
    if (cast.ok()) return std::static_pointer_cast<arrow::DoubleScalar>(*cast)->value;
  }
  if (scalar.type->id() == arrow::Type::BOOL) {
    return static_cast<const arrow::BooleanScalar&>(scalar).value;
  }
  return scalar.ToString();
}

Result<ColumnStats> StatsOf(const std::shared_ptr<arrow::ChunkedArray>& column) {
  ColumnStats stats;
  stats.nulls = column->null_count();
  if (arrow::is_nested(column->type()->id()) || stats.nulls == column->length()) return stats;
  ARROW_ASSIGN_OR_RAISE(arrow::Datum min_max, arrow::compute::MinMax(arrow::Datum(column)));
  const auto& pair = min_max.scalar_as<arrow::StructScalar>();
  stats.min = ScalarJson(*pair.value[0]);
  stats.max = ScalarJson(*pair.value[1]);
  return stats;
}

}  // namespace

Result<std::map<std::string, ColumnStats>> ColumnStatsOf(const arrow::Table& rows) {
  std::map<std::string, ColumnStats> stats;
  for (int i = 0; i < rows.num_columns(); ++i) {
    ARROW_ASSIGN_OR_RAISE(stats[rows.schema()->field(i)->name()], StatsOf(rows.column(i)));
  }
  return stats;
}

int64_t TableManifest::rows() const {
  int64_t rows = 0;
  for (const auto& file : files) rows += file.rows;
  return rows;
}

nlohmann::json Manifest::ToJson() const {
  nlohmann::json tables_json = nlohmann::json::object();
  for (const auto& [name, table] : tables) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& file : table.files) {
      nlohmann::json stats = nlohmann::json::object();
      for (const auto& [column, s] : file.stats) {
        stats[column] = {{"min", s.min}, {"max", s.max}, {"nulls", s.nulls}};
      }
      files.push_back(
          {{"path", file.path}, {"rows", file.rows}, {"bytes", file.bytes}, {"stats", stats}});
    }
    tables_json[name] = {{"schema", table.schema.ToJson()}, {"files", files}};
  }
  return {{"version", version}, {"tables", tables_json}, {"attachments", attachments}};
}

Result<Manifest> Manifest::FromJson(const nlohmann::json& json) {
  auto bad = [](const std::string& why) { return Status::IOError("damaged manifest: ", why); };
  if (!json.is_object() || !json.contains("version") || !json["version"].is_number_integer() ||
      !json.contains("tables") || !json["tables"].is_object()) {
    return bad("it needs an integer \"version\" and an object \"tables\"");
  }
  Manifest manifest;
  manifest.version = json["version"].get<int64_t>();
  for (const auto& [name, table] : json["tables"].items()) {
    if (!table.is_object() || !table.contains("schema") || !table.contains("files")) {
      return bad("table " + name + " needs \"schema\" and \"files\"");
    }
    const auto& schema = table["schema"];
    ARROW_ASSIGN_OR_RAISE(auto parsed,
                          TableSchema::FromJson(name, schema.value("schema", nlohmann::json()),
                                                schema.value("primary_key", nlohmann::json())));
    TableManifest entry{.schema = std::move(parsed)};
    for (const auto& file : table["files"]) {
      DataFile data{.path = file.value("path", ""),
                    .rows = file.value("rows", int64_t{0}),
                    .bytes = file.value("bytes", int64_t{0})};
      if (data.path.empty()) return bad("a file of table " + name + " has no path");
      const nlohmann::json stats = file.value("stats", nlohmann::json::object());
      for (const auto& [column, s] : stats.items()) {
        data.stats[column] = {s.value("min", nlohmann::json()), s.value("max", nlohmann::json()),
                              s.value("nulls", int64_t{0})};
      }
      entry.files.push_back(std::move(data));
    }
    manifest.tables.emplace(name, std::move(entry));
  }
  if (auto attachments = json.find("attachments"); attachments != json.end()) {
    if (!attachments->is_object()) return bad("\"attachments\" must be an object");
    for (const auto& [name, path] : attachments->items()) {
      if (!path.is_string()) return bad("attachment " + name + " needs a path");
      manifest.attachments[name] = path.get<std::string>();
    }
  }
  return manifest;
}

Result<std::unique_ptr<ManifestStore>> ManifestStore::Open(const fs::path& model_dir) {
  std::error_code ec;
  for (const char* dir : {kManifests, kDatasets}) {
    fs::create_directories(model_dir / dir, ec);
    if (ec)
      return Status::IOError("cannot create ", (model_dir / dir).string(), ": ", ec.message());
  }
  auto store = std::unique_ptr<ManifestStore>(new ManifestStore(model_dir));
  // Temporaries are what a crash interrupted: nothing references them.
  for (const auto& entry : fs::recursive_directory_iterator(model_dir, ec)) {
    if (entry.is_regular_file() && IsTemporary(entry.path().filename().string())) {
      fs::remove(entry.path(), ec);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto versions, store->Versions());
  if (!versions.empty()) {
    ARROW_ASSIGN_OR_RAISE(store->newest_, store->Load(versions.back()));
  }
  return store;
}

fs::path ManifestStore::ManifestPath(int64_t version) const {
  return model_dir_ / kManifests / ("v" + std::to_string(version) + ".json");
}

Result<std::vector<int64_t>> ManifestStore::Versions() const {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir_ / kManifests, ec)) {
    if (auto version = ManifestVersion(entry.path().filename().string())) {
      versions.push_back(*version);
    }
  }
  if (ec) return Status::IOError("cannot list ", (model_dir_ / kManifests).string());
  std::sort(versions.begin(), versions.end());
  return versions;
}

Result<Manifest> ManifestStore::Load(int64_t version) const {
  const fs::path path = ManifestPath(version);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return Status::KeyError("version ", version, " has no manifest in ",
                            (model_dir_ / kManifests).string());
  }
  ARROW_ASSIGN_OR_RAISE(auto text, ReadFileToString(path));
  auto json = ParseJson(text, "the manifest").ValueOr(nlohmann::json());
  auto manifest = Manifest::FromJson(json);
  if (!manifest.ok())
    return manifest.status().WithMessage(path.string(), ": ", manifest.status().message());
  return manifest;
}

Result<DataFile> ManifestStore::WriteDataFile(const TableSchema& table, const arrow::Table& rows) {
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  const std::string name = std::to_string(stamp) + "-" + std::to_string(next_file_++) + ".parquet";
  const fs::path dir = model_dir_ / kDatasets / table.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create ", dir.string(), ": ", ec.message());
  const fs::path tmp = dir / ("." + name + ".tmp");
  auto write = [&]() -> Status {
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(tmp.string()));
    ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(rows, arrow::default_memory_pool(), out,
                                                   /*chunk_size=*/1 << 20));
    ARROW_RETURN_NOT_OK(out->Close());
    return DurableRename(tmp, dir / name);
  };
  Status written = write();
  if (!written.ok()) {
    fs::remove(tmp, ec);
    return written;
  }
  DataFile file{.path = (fs::path(kDatasets) / table.name / name).string(),
                .rows = rows.num_rows(),
                .bytes = static_cast<int64_t>(fs::file_size(dir / name, ec))};
  ARROW_ASSIGN_OR_RAISE(file.stats, ColumnStatsOf(rows));
  return file;
}

Result<std::shared_ptr<arrow::Table>> ManifestStore::ReadDataFile(
    const DataFile& file, const std::vector<std::string>& columns) const {
  const fs::path path = model_dir_ / file.path;
  if (auto copy = MapHotCopy(path)) {
    ARROW_ASSIGN_OR_RAISE(auto rows, ReadHotCopy(copy));
    if (columns.empty()) return rows;
    ARROW_ASSIGN_OR_RAISE(auto indices, ColumnIndices(*rows->schema(), columns, file.path));
    return rows->SelectColumns(indices);
  }
  ARROW_ASSIGN_OR_RAISE(auto input, arrow::io::ReadableFile::Open(path.string()));
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(input, arrow::default_memory_pool()));
  if (columns.empty()) return reader->ReadTable();
  std::shared_ptr<arrow::Schema> schema;
  ARROW_RETURN_NOT_OK(reader->GetSchema(&schema));
  ARROW_ASSIGN_OR_RAISE(auto indices, ColumnIndices(*schema, columns, file.path));
  return reader->ReadTable(indices);
}

Result<HotCopies> ManifestStore::RefreshHotCopies(const Manifest& manifest, int64_t budget) {
  std::vector<const DataFile*> files;
  for (const auto& [name, table] : manifest.tables) {
    for (const auto& file : table.files) files.push_back(&file);
  }
  // File names start with the time they were written: the newest sort last.
  std::sort(files.begin(), files.end(), [](const DataFile* a, const DataFile* b) {
    return fs::path(a->path).filename() > fs::path(b->path).filename();
  });
  HotCopies hot;
  std::set<fs::path> kept;
  std::error_code ec;
  for (const DataFile* file : files) {
    const fs::path copy = HotCopyPath(model_dir_ / file->path);
    int64_t size = static_cast<int64_t>(fs::file_size(copy, ec));
    if (ec) {
      ARROW_ASSIGN_OR_RAISE(auto rows, ReadDataFile(*file));
      if (hot.bytes + arrow::util::TotalBufferSize(*rows) > budget) break;
      ARROW_RETURN_NOT_OK(WriteHotCopy(*rows, copy));
      size = static_cast<int64_t>(fs::file_size(copy, ec));
      ++hot.written;
    }
    if (hot.bytes + size > budget) break;
    hot.bytes += size;
    ++hot.files;
    kept.insert(copy);
  }
  for (const auto& entry : fs::recursive_directory_iterator(model_dir_ / kDatasets, ec)) {
    if (entry.path().extension() == ".arrow" && !kept.contains(entry.path()) &&
        fs::remove(entry.path(), ec)) {
      ++hot.removed;
    }
  }
  return hot;
}

Status ManifestStore::Publish(Manifest manifest) {
  if (manifest.version <= newest_.version) {
    return Status::Invalid("version ", manifest.version, " is not after the newest, ",
                           newest_.version);
  }
  ARROW_RETURN_NOT_OK(
      WriteFileAtomically(ManifestPath(manifest.version), DumpJson(manifest.ToJson()) + "\n"));
  newest_ = std::move(manifest);
  return Status::OK();
}

Result<int64_t> ManifestStore::CollectGarbage(std::chrono::milliseconds retention,
                                              const std::set<int64_t>& pinned,
                                              const std::set<std::string>& keep_files) {
  ARROW_ASSIGN_OR_RAISE(auto versions, Versions());
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - retention;
  std::set<std::string> referenced = keep_files;
  for (size_t i = 0; i < versions.size(); ++i) {
    // A version was superseded when the next one's manifest was written.
    if (i + 1 < versions.size() && !pinned.contains(versions[i])) {
      const auto superseded = fs::last_write_time(ManifestPath(versions[i + 1]), ec);
      if (!ec && superseded < cutoff) {
        fs::remove(ManifestPath(versions[i]), ec);
        continue;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto manifest, Load(versions[i]));
    for (const auto& [name, table] : manifest.tables) {
      for (const auto& file : table.files) referenced.insert(file.path);
    }
  }
  int64_t removed = 0;
  for (const auto& entry : fs::recursive_directory_iterator(model_dir_ / kDatasets, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string relative = fs::relative(entry.path(), model_dir_).string();
    if (relative.ends_with(".parquet") && !referenced.count(relative) &&
        fs::remove(entry.path(), ec)) {
      ++removed;
    }
  }
  return removed;
}

Result<std::shared_ptr<arrow::dataset::Dataset>> OpenTableDataset(const fs::path& model_dir,
                                                                  const TableManifest& table) {
  namespace ds = arrow::dataset;
  auto filesystem = std::make_shared<arrow::fs::LocalFileSystem>();
  auto parquet = std::make_shared<ds::ParquetFileFormat>();
  auto ipc = std::make_shared<ds::IpcFileFormat>();
  std::vector<std::shared_ptr<ds::FileFragment>> parquet_files, hot_copies;
  for (const auto& file : table.files) {
    const fs::path path = model_dir / file.path;
    if (auto copy = MapHotCopy(path)) {
      ARROW_ASSIGN_OR_RAISE(auto fragment, ipc->MakeFragment(ds::FileSource(std::move(copy))));
      hot_copies.push_back(std::move(fragment));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto fragment,
                            parquet->MakeFragment(ds::FileSource(path.string(), filesystem)));
      parquet_files.push_back(std::move(fragment));
    }
  }
  const auto schema = table.schema.ToArrow();
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ds::Dataset> from_parquet,
                        ds::FileSystemDataset::Make(schema, arrow::compute::literal(true), parquet,
                                                    filesystem, std::move(parquet_files)));
  if (hot_copies.empty()) return from_parquet;
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<ds::Dataset> from_copies,
                        ds::FileSystemDataset::Make(schema, arrow::compute::literal(true), ipc,
                                                    filesystem, std::move(hot_copies)));
  return ds::UnionDataset::Make(schema, {from_parquet, from_copies});
}

}  // namespace teatree
