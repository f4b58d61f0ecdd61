#pragma once

#include <filesystem>
#include <ostream>

#include "teatree/common/output_format.h"
#include "teatree/common/status.h"
#include "teatree/manager/model_manager.h"

namespace teatree {

struct ApplyOptions {
  /// Data directory, catalog, archive, inputs and functions for every model in the file;
  /// `manager.model` is ignored (each request names its model).
  ManagerOptions manager;
  /// JSON lines, one request each ("-" reads standard input). Blank lines and lines starting
  /// with '#' are skipped.
  std::filesystem::path file;
  /// Requests group-committed together (consecutive requests for the same model).
  size_t batch_size = 256;
  /// Wait at the end until the newest version of each model is published.
  bool wait_published = true;
  /// "json": one JSON object per outcome (for programs); "text": aligned lines for people,
  /// with the rows that queries and functions return.
  std::string output = "json";
};

/// `teatree apply`: applies a file of requests in-process, printing one JSON outcome line per
/// request to `out` as soon as its batch is committed, and progress to `progress`.
Status RunApply(const ApplyOptions& options, std::ostream& out, std::ostream& progress);

/// `teatree versions`: the published versions of one model with size and checksum; JSON:
/// {"model", "versions": [{"version", "bytes", "sha256"}]}.
Status RunVersions(const std::filesystem::path& data_dir, const std::string& model,
                   OutputFormat output, std::ostream& out);

/// `teatree catalog`: every model in the control catalog with its versions, and the tables
/// and row counts of its newest published version; JSON: {"models": [{"model", "engine",
/// "status", "version", "published_version", "tables": [{"table", "rows", "archive_uri"}]}]}.
Status RunCatalog(const std::filesystem::path& data_dir, OutputFormat output, std::ostream& out);

struct PullOptions {
  /// The archive the managers mirror version files into (--mirror-versions).
  std::string archive_url;
  std::string model;
  /// 0: the newest archived version.
  int64_t version = 0;
  /// The file to write; its directory must exist.
  std::filesystem::path output;
  /// kJson: {"model", "path", "version", "bytes", "sha256"}.
  OutputFormat output_format = OutputFormat::kText;
};

/// `teatree pull --from-archive`: downloads a version file mirrored in the archive, checks
/// its SHA-256 against the checksum published with it and that it holds that version, then
/// moves it into place as `output`, a DuckDB file any client opens.
Status RunPull(const PullOptions& options, std::ostream& out);

/// What a downloaded version file must be.
struct ExpectedVersionFile {
  std::string model;
  int64_t version = 0;
  std::string sha256;
};
/// Checks a downloaded version file `tmp` against its checksum and the version it must hold,
/// then renames it durably to `output`.
Status KeepVerifiedVersionFile(const std::filesystem::path& tmp,
                               const ExpectedVersionFile& expected,
                               const std::filesystem::path& output);

/// `teatree inspect`: opens a model or version file read-only, as any DuckDB client would,
/// and prints its Teatree version and tables with row counts, or the result of `sql`.
Status RunInspect(const std::filesystem::path& file, const std::string& sql, std::ostream& out);

}  // namespace teatree
