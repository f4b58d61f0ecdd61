#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "teatree/common/status.h"

namespace arrow {
class RecordBatchReader;
class Table;
namespace fs {
class FileSystem;
}  // namespace fs
}  // namespace arrow

namespace teatree {

/// One table of one version, as WriteTable() left it in the archive.
struct ArchivedFile {
  /// Where the file is: file:///abs/path/t.parquet or s3://bucket/prefix/t.parquet (without
  /// the archive URI's query, which holds connection settings, not location).
  std::string uri;
  /// Size of the Parquet file.
  int64_t bytes = 0;
  int64_t rows = 0;
};

/// Where published versions are archived as Parquet: <root>/<model>/v<version>/<table>.parquet,
/// on any arrow::fs filesystem (a local directory or S3). Files are written under a hidden
/// temporary name (".<table>.parquet.tmp-<random>") beside the final one and moved into place,
/// so a final name never holds a partial file; on a local disk the move is durable (fsync of
/// file and directories). The Arrow schema is stored in the file, so types round-trip exactly.
///
/// Thread-safe: Arrow filesystems are, and the archive holds no other mutable state. Writing
/// the same (model, version, table) twice at once is the caller's error: one of the two wins.
class Archive {
 public:
  /// Opens the archive at `uri`:
  ///   - an absolute directory path or file:///abs/dir: created if missing;
  ///   - s3://bucket/prefix[?endpoint_override=host:port&scheme=http&region=...]: credentials
  ///     from the AWS environment (or s3://key:secret@bucket/...). Opening does no network
  ///     I/O when endpoint_override or region is given, so an unreachable server is reported
  ///     by the first read or write, not here. Without either, Arrow asks AWS for the bucket's
  ///     region.
  /// A malformed URI or an unsupported scheme is Invalid, naming it and the accepted forms.
  static Result<std::unique_ptr<Archive>> Open(const std::string& uri);
  ~Archive();

  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;

  /// Streams `rows` to <root>/<model>/v<version>/<table>.parquet (ZSTD, schema stored),
  /// replacing any file already there. Written under a temporary name in the same directory
  /// and moved into place; if `rows` or the filesystem fails, the temporary is removed and
  /// the final name is untouched.
  Result<ArchivedFile> WriteTable(const std::string& model, int64_t version,
                                  const std::string& table, arrow::RecordBatchReader& rows);

  /// Copies the local file `source` to <root>/<model>/v<version>/<name> (e.g. a version file
  /// mirrored beside its tables), under a temporary name first, then moved into place.
  Result<ArchivedFile> PutFile(const std::string& model, int64_t version, const std::string& name,
                               const std::filesystem::path& source);
  /// Copies <root>/<model>/v<version>/<name> to the local file `target`. KeyError if absent.
  Status GetFile(const std::string& model, int64_t version, const std::string& name,
                 const std::filesystem::path& target);

  /// Reads a table back whole. KeyError if that model, version or table was never archived.
  Result<std::shared_ptr<arrow::Table>> ReadTable(const std::string& model, int64_t version,
                                                  const std::string& table);

  /// Versions archived for `model`, ascending (directories named v<N>; anything else,
  /// temporaries included, is ignored). Empty if the model has none.
  Result<std::vector<int64_t>> ListVersions(const std::string& model);

  /// Tables archived for one version, sorted; temporaries are ignored. Empty if none.
  Result<std::vector<std::string>> ListTables(const std::string& model, int64_t version);

  /// Removes leftover temporaries (e.g. after a crash) under <root>/<model>. Call it only
  /// while nothing writes to that model (e.g. when a manager takes the model's lease), or it
  /// removes a write in progress.
  Status CleanTemporaries(const std::string& model);

  /// Asks the storage whether the archive can be used: for S3, whether its bucket exists.
  /// A missing bucket is Invalid (a configuration to fix); an unreachable server or refused
  /// credentials are IOError (it may come back). A local archive is always OK.
  Status Check();

  /// The URI the archive was opened with.
  const std::string& uri() const { return uri_; }

 private:
  Archive(std::string uri, std::shared_ptr<arrow::fs::FileSystem> fs, std::string root, bool local);

  /// <root>/<model>/v<version>, after checking the model name and the version.
  Result<std::string> VersionDir(const std::string& model, int64_t version) const;
  /// The URI of a path on fs_, for ArchivedFile and error messages.
  std::string FileUri(const std::string& path) const;
  /// Moves a finished temporary into place: durably (fsyncs) on a local disk.
  Status Publish(const std::string& tmp, const std::string& final_path) const;

  const std::string uri_;
  /// Shared with the streams Arrow opens on it, which keep it alive.
  const std::shared_ptr<arrow::fs::FileSystem> fs_;
  /// The archive's root as a path on fs_: "/abs/dir" locally, "bucket/prefix" on S3.
  const std::string root_;
  /// Whether fs_ is the local filesystem, whose paths are the operating system's.
  const bool local_;
};

}  // namespace teatree
