#pragma once

// The read-side commands of `teatree`: query, pull (over the read path) and reader.

#include <atomic>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "teatree/bus/nats_connection.h"
#include "teatree/common/output_format.h"
#include "teatree/common/status.h"
#include "teatree/common/table_format.h"
#include "teatree/read/read_servers.h"
#include "teatree/read/read_ticket.h"
#include "teatree/service/client.h"

namespace teatree {

struct QueryOptions {
  ReadClientOptions read;
  /// Where `teatree serve` runs, to find its read path when read.url is empty.
  std::filesystem::path data_dir = "teatree-data";
  ReadTicket ticket;
  ResultFormat format = ResultFormat::kTable;
  /// kJson: {"model", "version", "rows": [...]} whatever `format` says.
  OutputFormat output_format = OutputFormat::kText;
};

/// `teatree query`: runs one read and prints its result in `format` (the table format also
/// says at which version), or as one JSON object with the version.
Status RunQuery(const QueryOptions& options, std::ostream& out);

struct PullVersionOptions {
  ReadClientOptions read;
  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  std::optional<int64_t> version;
  /// Pull once the newest published version is this one or newer (read your writes).
  std::optional<VersionWanted> min_version;
  /// The file to write; its directory must exist.
  std::filesystem::path output;
  /// kJson: {"model", "path", "version", "bytes", "sha256"}.
  OutputFormat output_format = OutputFormat::kText;
};

/// `teatree pull`: downloads a version file over the read path into a temporary file beside
/// `output`, checks its SHA-256 and the version it holds, and renames it to `output`; nothing
/// is left at `output` on failure. Progress goes to `progress`.
Status RunPullVersion(const PullVersionOptions& options, std::ostream& out, std::ostream& progress);

struct ReaderOptions {
  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  ReadServingOptions read;
  /// Where version notifications come from; an empty url uses serve.json's, and without one
  /// the replica only looks for new version files every second.
  NatsClientOptions nats;
  /// An archive the managers mirror version files into (--mirror-versions): the replica
  /// fetches each newer version from there into `data_dir` (checked against its SHA-256),
  /// instead of sharing a disk with the manager. Empty: version files are in `data_dir`.
  std::string from_archive;
  /// Version files kept in `data_dir` when following an archive (reads in flight keep the
  /// older ones open until they end).
  int keep_versions = 2;
};

/// `teatree reader`: a read replica of one model. Serves the newest version file and moves to
/// each newer one as it is published (told by the model's notifications, or seen on disk),
/// without failing a read in flight: a read finishes on the file it started on, and a file
/// closes when its last read ends. With `from_archive`, version files come from the archive
/// (a replica on a machine or pod of its own). Runs until `stop`.
Status RunReader(const ReaderOptions& options, const std::atomic<bool>& stop, std::ostream& out);

}  // namespace teatree
