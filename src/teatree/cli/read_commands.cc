#include "teatree/cli/read_commands.h"

#include <iostream>
#include <memory>

#include "teatree/cli/options.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/manager/commands.h"
#include "teatree/service/commands.h"
#include "teatree/service/read_commands.h"

namespace teatree::cli {
namespace {

namespace fs = std::filesystem;

/// Everything the commands' flags parse into; lives as long as the returned function.
struct Flags {
  QueryOptions query;
  std::string format, args;
  int64_t at_version = 0;
  PullVersionOptions pull;
  PullOptions archive_pull;
  int64_t version = 0;
  int64_t min_version = 0, wait_ms = kDefaultVersionWait.count();
  ReaderOptions reader;
};

/// --min-version and --wait-ms of a read: read your writes.
void AddMinVersionOptions(CLI::App& command, Flags& f) {
  command
      .add_option("--min-version", f.min_version,
                  "wait until the model has this version or newer (the version in a write's "
                  "outcome), then read")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--wait-ms", f.wait_ms,
                  "how long the server waits for --min-version (at most " +
                      std::to_string(kMaxVersionWait.count()) + ")")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, static_cast<int64_t>(kMaxVersionWait.count())));
}

std::optional<VersionWanted> Wanted(const Flags& f) {
  if (f.min_version <= 0) return std::nullopt;
  return VersionWanted{.min_version = f.min_version, .wait = std::chrono::milliseconds(f.wait_ms)};
}

/// `teatree query` from its flags.
Status Query(Flags& f, OutputFormat output) {
  f.query.output_format = output;
  if (output == OutputFormat::kJson && !f.format.empty() && f.format != "json") {
    return UsageError("--output json prints the rows as JSON: leave out --format ", f.format,
                      ", or use --output text");
  }
  auto format = ParseResultFormat(f.format.empty() ? "table" : f.format);
  if (!format.ok()) return MarkFailure(format.status(), FailureKind::kUsage);
  f.query.format = *format;
  if (!f.args.empty()) {
    auto args = ParseJson(f.args, "--args");
    if (!args.ok() || !args->is_object()) {
      return UsageError("--args must be a JSON object, e.g. '{\"n\": 5}'",
                        args.ok() ? "" : ": " + args.status().message());
    }
    f.query.ticket.args = std::move(*args);
  }
  if (f.at_version > 0) f.query.ticket.at_version = f.at_version;
  f.query.ticket.min_version = Wanted(f);
  // The server checks the ticket too; checking here gives the same message sooner.
  Status ticket = ReadTicket::Parse(f.query.ticket.ToJson()).status();
  if (!ticket.ok()) return MarkFailure(ticket, FailureKind::kUsage);
  return RunQuery(f.query, std::cout);
}

/// Where -o puts the file must be an existing directory: pull never makes one (a typo would
/// scatter files), and never leaves a partial file at the path.
Status CheckOutputFile(const fs::path& output) {
  const fs::path dir = output.has_parent_path() ? output.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return UsageError("-o/--output-file ", output.string(), ": directory ", dir.string(),
                      " does not exist; create it first (pull makes no directories)");
  }
  if (fs::is_directory(output, ec)) {
    return UsageError("-o/--output-file ", output.string(),
                      " is a directory: give the path of the .duckdb file to write");
  }
  return Status::OK();
}

/// `teatree pull` from its flags.
Status Pull(Flags& f, OutputFormat output) {
  ARROW_RETURN_NOT_OK(CheckOutputFile(f.pull.output));
  if (!f.archive_pull.archive_url.empty()) {
    if (f.min_version > 0) return UsageError("--min-version reads from a server, not an archive");
    f.archive_pull.model = f.pull.model;
    f.archive_pull.version = f.version;
    f.archive_pull.output = f.pull.output;
    f.archive_pull.output_format = output;
    return RunPull(f.archive_pull, std::cout);
  }
  if (f.version > 0) f.pull.version = f.version;
  f.pull.min_version = Wanted(f);
  f.pull.output_format = output;
  return RunPullVersion(f.pull, std::cout, std::cerr);
}

CLI::App* AddQuery(CLI::App& app, Flags& f, OutputFormat& output) {
  auto* query = app.add_subcommand(
      "query",
      "Run one read-only SELECT (or a read function) on a model over Arrow Flight and print\n"
      "the result, e.g. `teatree query --model sales \"SELECT region, sum(amount) FROM orders\n"
      "GROUP BY region\"`. Reads the live model (through its manager) unless --at-version");
  query->add_option("sql", f.query.ticket.sql, "one SELECT statement");
  query->add_option("--model,-m", f.query.ticket.model, "model name")->required();
  query->add_option("--function", f.query.ticket.function, "a read function instead of SQL");
  query->add_option("--args", f.args, "function arguments as a JSON object");
  query->add_option("--at-version", f.at_version, "read this retained version");
  AddMinVersionOptions(*query, f);
  query->add_option("--format", f.format, "table (default), csv, json or arrow (an IPC stream)");
  AddOutputOption(*query, output);
  query->add_option("--data-dir,-d", f.query.data_dir, "data directory of a `teatree serve`")
      ->capture_default_str();
  AddReadClientOptions(*query, f.query.read);
  return query;
}

CLI::App* AddPull(CLI::App& app, Flags& f, OutputFormat& output) {
  auto* pull = app.add_subcommand(
      "pull",
      "Download a version of a model as one .duckdb file that any DuckDB client opens: over\n"
      "the read path (default), or with --from-archive from an archive the managers mirror\n"
      "version files into (--mirror-versions). The SHA-256 is checked either way; the file\n"
      "appears at -o only once complete");
  pull->add_option("--model,-m", f.pull.model, "model name")->required();
  pull->add_option("--version", f.version, "version to pull (default: the newest)");
  AddMinVersionOptions(*pull, f);
  pull->add_option("--output-file,-o", f.pull.output,
                   "where to write the .duckdb file (its directory must exist)")
      ->required();
  AddOutputOption(*pull, output, ": the file to write is -o/--output-file PATH");
  pull->add_option("--data-dir,-d", f.pull.data_dir, "data directory of a `teatree serve`")
      ->capture_default_str();
  AddReadClientOptions(*pull, f.pull.read);
  pull->add_option("--from-archive", f.archive_pull.archive_url,
                   "pull from this archive instead, e.g. "
                   "s3://bucket/prefix?endpoint_override=host:port&scheme=http");
  return pull;
}

}  // namespace

std::function<Result<ExitCode>()> AddReadCommands(CLI::App& app, OutputFormat& output) {
  auto f = std::make_shared<Flags>();
  auto* query = AddQuery(app, *f, output);
  auto* pull = AddPull(app, *f, output);

  auto* reader = app.add_subcommand(
      "reader",
      "Run a read replica of one model: serve its newest version file over Arrow Flight and\n"
      "move to each new version as it is published, without failing reads in flight");
  reader->add_option("--model,-m", f->reader.model, "model name")->required();
  reader->add_option("--data-dir,-d", f->reader.data_dir, "data directory holding the model")
      ->capture_default_str();
  reader->add_option("--from-archive", f->reader.from_archive,
                     "fetch each new version file from this archive, which the managers mirror "
                     "them into (--mirror-versions), e.g. s3://bucket/prefix?region=…: a replica "
                     "on a machine of its own; --data-dir is then its local copy");
  AddReadServingOptions(*reader, f->reader.read);
  AddNatsOptions(*reader, f->reader.nats);

  return [=, &output]() -> Result<ExitCode> {
    if (query->parsed()) ARROW_RETURN_NOT_OK(Query(*f, output));
    if (pull->parsed()) ARROW_RETURN_NOT_OK(Pull(*f, output));
    if (reader->parsed()) ARROW_RETURN_NOT_OK(RunReader(f->reader, StopOnSignals(), std::cout));
    return ExitCode::kOk;
  };
}

}  // namespace teatree::cli
