#include "teatree/archive/archive.h"

#include <arrow/filesystem/filesystem.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/filesystem/s3fs.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <arrow/util/uri.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string_view>

#include "teatree/archive/s3_runtime.h"
#include "teatree/common/file_util.h"

namespace teatree {
namespace {

constexpr std::string_view kAcceptedForms =
    "an absolute directory path, file:///abs/dir, or "
    "s3://bucket/prefix[?endpoint_override=host:port&scheme=http&region=...]";
constexpr std::string_view kParquetSuffix = ".parquet";
/// Temporaries are hidden files: ".<table>.parquet.tmp-<16 hex digits>". Arrow datasets,
/// DuckDB globs of *.parquet and ListTables() all skip them.
constexpr std::string_view kTemporaryMarker = ".parquet.tmp-";

/// `uri` with any password replaced by "***", fit for error messages and logs.
std::string Redacted(const std::string& uri) {
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return uri;
  const size_t authority = scheme_end + 3;
  const size_t authority_end = std::min(uri.find_first_of("/?#", authority), uri.size());
  const size_t at = uri.rfind('@', authority_end);
  if (at == std::string::npos || at < authority) return uri;
  const size_t colon = uri.find(':', authority);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

Status InvalidUri(const std::string& uri, std::string_view why) {
  return Status::Invalid("archive URI \"", Redacted(uri), "\" is invalid: ", why, "; use ",
                         kAcceptedForms);
}

/// The lowercased scheme of `uri`, or "" for a bare absolute path.
Result<std::string> SchemeOf(const std::string& uri) {
  if (uri.empty()) return InvalidUri(uri, "it is empty");
  if (uri.front() == '/') return std::string();
  const size_t end = uri.find("://");
  if (end == std::string::npos) {
    return InvalidUri(uri, "it is neither an absolute path nor a URI with a scheme");
  }
  std::string scheme = uri.substr(0, end);
  const bool well_formed =
      !scheme.empty() && std::isalpha(static_cast<unsigned char>(scheme[0])) &&
      std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      });
  if (!well_formed) return InvalidUri(uri, "its scheme is malformed");
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return scheme;
}

/// Names reach the archive already validated (^[a-z][a-z0-9_]{0,62}$); this refuses anything
/// that could escape the archive's layout, whoever the caller is.
Status CheckName(std::string_view kind, const std::string& name) {
  const bool bad = name.empty() || name.front() == '.' || name.find('/') != std::string::npos ||
                   name.find('\\') != std::string::npos || name.find("..") != std::string::npos ||
                   name.find('\0') != std::string::npos;
  if (!bad) return Status::OK();
  return Status::Invalid(kind, " name \"", name,
                         "\" cannot be archived: it must be non-empty, must not start with '.' "
                         "and must not contain '/', '\\' or \"..\" (use lowercase letters, "
                         "digits and _, starting with a letter)");
}

std::string Join(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  return dir.back() == '/' ? dir + std::string(name) : dir + "/" + std::string(name);
}

/// N for a directory named "v<N>", nothing for any other name.
std::optional<int64_t> ParseVersionDir(std::string_view name) {
  if (name.size() < 2 || name.front() != 'v') return std::nullopt;
  int64_t version = 0;
  const char* end = name.data() + name.size();
  auto [ptr, error] = std::from_chars(name.data() + 1, end, version);
  if (error != std::errc() || ptr != end || version < 0) return std::nullopt;
  return version;
}

bool IsTemporary(std::string_view base_name) {
  return !base_name.empty() && base_name.front() == '.' &&
         base_name.find(kTemporaryMarker) != std::string_view::npos;
}

std::string TemporaryName(const std::string& table) {
  std::random_device random;
  const uint64_t bits = (uint64_t{random()} << 32) ^ random();
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(bits));
  return "." + table + std::string(kTemporaryMarker) + suffix;
}

/// The local directory `path` (absolute), created if missing.
Result<std::string> PrepareLocalRoot(arrow::fs::FileSystem& fs, const std::string& uri,
                                     const std::string& path) {
  std::string root = std::filesystem::path(path).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty() || root.front() != '/') {
    return InvalidUri(uri, "the directory must be an absolute path");
  }
  if (Status status = fs.CreateDir(root, /*recursive=*/true); !status.ok()) {
    return status.WithMessage("cannot create the archive directory \"", root,
                              "\": ", status.message(), " (check the path and its permissions)");
  }
  ARROW_ASSIGN_OR_RAISE(arrow::fs::FileInfo info, fs.GetFileInfo(root));
  if (info.type() != arrow::fs::FileType::Directory) {
    return Status::Invalid("archive directory \"", root, "\" exists and is not a directory");
  }
  // The directory may be new: make its entry in the parent durable too.
  ARROW_RETURN_NOT_OK(SyncDirectory(std::filesystem::path(root).parent_path()));
  return root;
}

/// An S3 filesystem rooted at "bucket/prefix", without network I/O when the URI names an
/// endpoint or a region.
Result<std::pair<std::shared_ptr<arrow::fs::FileSystem>, std::string>> OpenS3(
    const std::string& uri) {
  ARROW_RETURN_NOT_OK(EnsureS3Runtime());
  std::string root;
  Result<arrow::fs::S3Options> options = arrow::fs::S3Options::FromUri(uri, &root);
  if (!options.ok() && options.status().IsInvalid()) {
    return InvalidUri(uri, options.status().message());
  }
  if (!options.ok()) {
    // Without endpoint_override or region, Arrow asks AWS where the bucket lives.
    return options.status().WithMessage("cannot open archive \"", Redacted(uri),
                                        "\": ", options.status().message(),
                                        " (add region=<region> to the URI to skip the lookup)");
  }
  if (root.empty()) return InvalidUri(uri, "it names no bucket");
  Result<std::shared_ptr<arrow::fs::S3FileSystem>> fs = arrow::fs::S3FileSystem::Make(*options);
  if (!fs.ok()) return InvalidUri(uri, fs.status().message());
  return std::make_pair(std::shared_ptr<arrow::fs::FileSystem>(*fs), root);
}

/// Streams `rows` into `writer`, then finishes the file. Returns the number of rows.
Result<int64_t> StreamRows(arrow::RecordBatchReader& rows, parquet::arrow::FileWriter& writer) {
  int64_t count = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> batch;
    if (Status status = rows.ReadNext(&batch); !status.ok()) {
      return status.WithMessage("reading the rows to archive failed: ", status.message());
    }
    if (batch == nullptr) break;
    ARROW_RETURN_NOT_OK(writer.WriteRecordBatch(*batch));
    count += batch->num_rows();
  }
  ARROW_RETURN_NOT_OK(writer.Close());
  return count;
}

/// Writes `rows` as a ZSTD Parquet file with the Arrow schema stored. On failure the file
/// may remain, partial: the caller removes it.
Result<int64_t> WriteParquet(arrow::fs::FileSystem& fs, const std::string& path,
                             arrow::RecordBatchReader& rows) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::io::OutputStream> sink, fs.OpenOutputStream(path));
  std::shared_ptr<parquet::WriterProperties> properties =
      parquet::WriterProperties::Builder().compression(parquet::Compression::ZSTD)->build();
  std::shared_ptr<parquet::ArrowWriterProperties> arrow_properties =
      parquet::ArrowWriterProperties::Builder().store_schema()->build();
  Result<std::unique_ptr<parquet::arrow::FileWriter>> writer = parquet::arrow::FileWriter::Open(
      *rows.schema(), arrow::default_memory_pool(), sink, properties, arrow_properties);
  Result<int64_t> count =
      writer.ok() ? StreamRows(rows, **writer) : Result<int64_t>(writer.status());
  if (!count.ok()) {
    // Abort before the writer's destructor would finish the file (and, on S3, complete the
    // upload of a partial object).
    (void)sink->Abort();
    return count;
  }
  if (!sink->closed()) ARROW_RETURN_NOT_OK(sink->Close());
  return count;
}

}  // namespace

Archive::Archive(std::string uri, std::shared_ptr<arrow::fs::FileSystem> fs, std::string root,
                 bool local)
    : uri_(std::move(uri)), fs_(std::move(fs)), root_(std::move(root)), local_(local) {}

Archive::~Archive() = default;

Result<std::unique_ptr<Archive>> Archive::Open(const std::string& uri) {
  ARROW_ASSIGN_OR_RAISE(std::string scheme, SchemeOf(uri));
  if (scheme == "s3") {
    ARROW_ASSIGN_OR_RAISE(auto fs_and_root, OpenS3(uri));
    return std::unique_ptr<Archive>(
        new Archive(uri, std::move(fs_and_root.first), std::move(fs_and_root.second), false));
  }
  if (!scheme.empty() && scheme != "file") {
    return InvalidUri(uri, "scheme \"" + scheme + "\" is not supported");
  }
  std::string path = uri;
  auto fs = std::make_shared<arrow::fs::LocalFileSystem>();
  if (scheme == "file") {
    Result<std::shared_ptr<arrow::fs::FileSystem>> parsed =
        arrow::fs::FileSystemFromUri(uri, &path);
    if (!parsed.ok()) return InvalidUri(uri, parsed.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(std::string root, PrepareLocalRoot(*fs, uri, path));
  return std::unique_ptr<Archive>(new Archive(uri, std::move(fs), std::move(root), true));
}

Result<std::string> Archive::VersionDir(const std::string& model, int64_t version) const {
  ARROW_RETURN_NOT_OK(CheckName("model", model));
  if (version < 0) {
    return Status::Invalid("version ", version, " of model \"", model,
                           "\" cannot be archived: versions are numbers >= 0");
  }
  return Join(Join(root_, model), "v" + std::to_string(version));
}

std::string Archive::FileUri(const std::string& path) const {
  if (!local_) return "s3://" + path;
  Result<std::string> uri = arrow::util::UriFromAbsolutePath(path);
  return uri.ok() ? *uri : "file://" + path;
}

Status Archive::Publish(const std::string& tmp, const std::string& final_path) const {
  if (!local_) return fs_->Move(tmp, final_path);  // S3: the object appears whole or not.
  // fsync the file, rename, fsync v<N>/; then <model>/ and the root, which may have just
  // gained the new directories.
  ARROW_RETURN_NOT_OK(DurableRename(tmp, final_path));
  const std::filesystem::path version_dir = std::filesystem::path(final_path).parent_path();
  ARROW_RETURN_NOT_OK(SyncDirectory(version_dir.parent_path()));
  return SyncDirectory(root_);
}

Result<ArchivedFile> Archive::WriteTable(const std::string& model, int64_t version,
                                         const std::string& table, arrow::RecordBatchReader& rows) {
  ARROW_RETURN_NOT_OK(CheckName("table", table));
  ARROW_ASSIGN_OR_RAISE(const std::string dir, VersionDir(model, version));
  const std::string final_path = Join(dir, table + std::string(kParquetSuffix));
  const std::string tmp = Join(dir, TemporaryName(table));

  Status status = fs_->CreateDir(dir, /*recursive=*/true);
  Result<int64_t> count = status.ok() ? WriteParquet(*fs_, tmp, rows) : Result<int64_t>(status);
  if (count.ok()) status = Publish(tmp, final_path);
  if (count.ok() && status.ok()) {
    Result<arrow::fs::FileInfo> info = fs_->GetFileInfo(final_path);
    if (info.ok()) return ArchivedFile{FileUri(final_path), info->size(), *count};
    status = info.status();
  }
  if (!count.ok()) status = count.status();
  (void)fs_->DeleteFile(tmp);  // Best effort; CleanTemporaries() catches what this misses.
  return status.WithMessage("cannot archive table \"", table, "\" of model \"", model,
                            "\" version ", version, " to ", FileUri(final_path), ": ",
                            status.message());
}

Result<ArchivedFile> Archive::PutFile(const std::string& model, int64_t version,
                                      const std::string& name,
                                      const std::filesystem::path& source) {
  ARROW_RETURN_NOT_OK(CheckName("file", name));
  ARROW_ASSIGN_OR_RAISE(const std::string dir, VersionDir(model, version));
  const std::string final_path = Join(dir, name);
  const std::string tmp = Join(dir, TemporaryName(name));
  auto local = std::make_shared<arrow::fs::LocalFileSystem>();
  Status status = fs_->CreateDir(dir, /*recursive=*/true);
  if (status.ok()) {
    status = arrow::fs::CopyFiles({{local, std::filesystem::absolute(source).string()}},
                                  {{fs_, tmp}}, arrow::io::default_io_context(),
                                  /*chunk_size=*/1 << 20, /*use_threads=*/false);
  }
  if (status.ok()) status = Publish(tmp, final_path);
  if (status.ok()) {
    Result<arrow::fs::FileInfo> info = fs_->GetFileInfo(final_path);
    if (info.ok()) return ArchivedFile{FileUri(final_path), info->size(), 0};
    status = info.status();
  }
  (void)fs_->DeleteFile(tmp);
  return status.WithMessage("cannot copy ", source.string(), " to ", FileUri(final_path), ": ",
                            status.message());
}

Status Archive::GetFile(const std::string& model, int64_t version, const std::string& name,
                        const std::filesystem::path& target) {
  ARROW_RETURN_NOT_OK(CheckName("file", name));
  ARROW_ASSIGN_OR_RAISE(const std::string dir, VersionDir(model, version));
  const std::string path = Join(dir, name);
  ARROW_ASSIGN_OR_RAISE(arrow::fs::FileInfo info, fs_->GetFileInfo(path));
  if (info.type() == arrow::fs::FileType::NotFound) {
    return Status::KeyError(FileUri(path), " is not in the archive");
  }
  auto local = std::make_shared<arrow::fs::LocalFileSystem>();
  Status status =
      arrow::fs::CopyFiles({{fs_, path}}, {{local, std::filesystem::absolute(target).string()}},
                           arrow::io::default_io_context(), /*chunk_size=*/1 << 20,
                           /*use_threads=*/false);
  return status.ok() ? status
                     : status.WithMessage("cannot copy ", FileUri(path), " to ", target.string(),
                                          ": ", status.message());
}

Result<std::shared_ptr<arrow::Table>> Archive::ReadTable(const std::string& model, int64_t version,
                                                         const std::string& table) {
  ARROW_RETURN_NOT_OK(CheckName("table", table));
  ARROW_ASSIGN_OR_RAISE(const std::string dir, VersionDir(model, version));
  const std::string path = Join(dir, table + std::string(kParquetSuffix));
  auto read = [&]() -> Result<std::shared_ptr<arrow::Table>> {
    ARROW_ASSIGN_OR_RAISE(arrow::fs::FileInfo info, fs_->GetFileInfo(path));
    if (info.type() == arrow::fs::FileType::NotFound) {
      return Status::KeyError("it is not in the archive (ListTables() shows what is)");
    }
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::io::RandomAccessFile> input,
                          fs_->OpenInputFile(info));
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<parquet::arrow::FileReader> reader,
                          parquet::arrow::OpenFile(input, arrow::default_memory_pool()));
    return reader->ReadTable();
  };
  Result<std::shared_ptr<arrow::Table>> result = read();
  if (result.ok()) return result;
  return result.status().WithMessage("cannot read table \"", table, "\" of model \"", model,
                                     "\" version ", version, " from ", FileUri(path), ": ",
                                     result.status().message());
}

Result<std::vector<int64_t>> Archive::ListVersions(const std::string& model) {
  ARROW_RETURN_NOT_OK(CheckName("model", model));
  arrow::fs::FileSelector selector;
  selector.base_dir = Join(root_, model);
  selector.allow_not_found = true;
  Result<std::vector<arrow::fs::FileInfo>> infos = fs_->GetFileInfo(selector);
  if (!infos.ok()) {
    return infos.status().WithMessage("cannot list the versions of model \"", model, "\" in ",
                                      FileUri(selector.base_dir), ": ", infos.status().message());
  }
  std::vector<int64_t> versions;
  for (const arrow::fs::FileInfo& info : *infos) {
    std::optional<int64_t> version = ParseVersionDir(info.base_name());
    if (info.IsDirectory() && version.has_value()) versions.push_back(*version);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

Result<std::vector<std::string>> Archive::ListTables(const std::string& model, int64_t version) {
  arrow::fs::FileSelector selector;
  ARROW_ASSIGN_OR_RAISE(selector.base_dir, VersionDir(model, version));
  selector.allow_not_found = true;
  Result<std::vector<arrow::fs::FileInfo>> infos = fs_->GetFileInfo(selector);
  if (!infos.ok()) {
    return infos.status().WithMessage("cannot list the tables of model \"", model, "\" version ",
                                      version, " in ", FileUri(selector.base_dir), ": ",
                                      infos.status().message());
  }
  std::vector<std::string> tables;
  for (const arrow::fs::FileInfo& info : *infos) {
    const std::string name = info.base_name();
    if (!info.IsFile() || name.size() <= kParquetSuffix.size() || name.front() == '.' ||
        !name.ends_with(kParquetSuffix)) {
      continue;
    }
    tables.push_back(name.substr(0, name.size() - kParquetSuffix.size()));
  }
  std::sort(tables.begin(), tables.end());
  return tables;
}

Status Archive::Check() {
  if (local_) return Status::OK();
  const std::string bucket = root_.substr(0, root_.find('/'));
  auto info = fs_->GetFileInfo(bucket);
  if (!info.ok()) {
    return Status::IOError("archive ", Redacted(uri_), " is unreachable: ", info.status().message(),
                           " (check the endpoint and the AWS credentials)");
  }
  if (info->type() == arrow::fs::FileType::NotFound) {
    return Status::Invalid("archive ", Redacted(uri_), ": bucket \"", bucket,
                           "\" does not exist: create it, or fix the URI");
  }
  return Status::OK();
}

Status Archive::CleanTemporaries(const std::string& model) {
  ARROW_RETURN_NOT_OK(CheckName("model", model));
  arrow::fs::FileSelector selector;
  selector.base_dir = Join(root_, model);
  selector.allow_not_found = true;
  selector.recursive = true;
  Result<std::vector<arrow::fs::FileInfo>> infos = fs_->GetFileInfo(selector);
  Status status = infos.status();
  if (infos.ok()) {
    for (const arrow::fs::FileInfo& info : *infos) {
      if (!info.IsFile() || !IsTemporary(info.base_name())) continue;
      // Keep going past a failure: remove what can be removed, report the first error.
      if (Status deleted = fs_->DeleteFile(info.path()); !deleted.ok() && status.ok()) {
        status = deleted;
      }
    }
  }
  if (status.ok()) return status;
  return status.WithMessage("cannot clean temporaries of model \"", model, "\" in ",
                            FileUri(selector.base_dir), ": ", status.message());
}

}  // namespace teatree
