#include "teatree/cli/read_commands.h"

#include <iostream>
#include <memory>

#include "teatree/cli/options.h"
#include "teatree/common/json_text.h"
#include "teatree/manager/commands.h"
#include "teatree/service/commands.h"
#include "teatree/service/read_commands.h"

namespace teatree::cli {
namespace {

/// Everything the commands' flags parse into; lives as long as the returned function.
struct Flags {
  QueryOptions query;
  std::string format = "table", args;
  int64_t at_version = 0;
  PullVersionOptions pull;
  PullOptions archive_pull;
  int64_t version = 0;
  ReaderOptions reader;
};

}  // namespace

std::function<Status()> AddReadCommands(CLI::App& app) {
  auto f = std::make_shared<Flags>();

  auto* query = app.add_subcommand(
      "query",
      "Run one read-only SELECT (or a read function) on a model over Arrow Flight and print\n"
      "the result, e.g. `teatree query --model sales \"SELECT region, sum(amount) FROM orders\n"
      "GROUP BY region\"`. Reads the live model (through its manager) unless --at-version");
  query->add_option("sql", f->query.ticket.sql, "one SELECT statement");
  query->add_option("--model,-m", f->query.ticket.model, "model name")->required();
  query->add_option("--function", f->query.ticket.function, "a read function instead of SQL");
  query->add_option("--args", f->args, "function arguments as a JSON object");
  query->add_option("--at-version", f->at_version, "read this retained version");
  query->add_option("--format", f->format, "table, csv, json or arrow (an IPC stream)")
      ->capture_default_str();
  query->add_option("--data-dir,-d", f->query.data_dir, "data directory of a `teatree serve`")
      ->capture_default_str();
  AddReadClientOptions(*query, f->query.read);

  auto* pull = app.add_subcommand(
      "pull",
      "Download a version of a model as one .duckdb file that any DuckDB client opens: over\n"
      "the read path (default), or with --from-archive from an archive the managers mirror\n"
      "version files into (--mirror-versions). The SHA-256 is checked either way");
  pull->add_option("--model,-m", f->pull.model, "model name")->required();
  pull->add_option("--version", f->version, "version to pull (default: the newest)");
  pull->add_option("--output,-o", f->pull.output, "where to write the .duckdb file")->required();
  pull->add_option("--data-dir,-d", f->pull.data_dir, "data directory of a `teatree serve`")
      ->capture_default_str();
  AddReadClientOptions(*pull, f->pull.read);
  pull->add_option("--from-archive", f->archive_pull.archive_url,
                   "pull from this archive instead, e.g. "
                   "s3://bucket/prefix?endpoint_override=host:port&scheme=http");

  auto* reader = app.add_subcommand(
      "reader",
      "Run a read replica of one model: serve its newest version file over Arrow Flight and\n"
      "move to each new version as it is published, without failing reads in flight");
  reader->add_option("--model,-m", f->reader.model, "model name")->required();
  reader->add_option("--data-dir,-d", f->reader.data_dir, "data directory holding the model")
      ->capture_default_str();
  AddReadServingOptions(*reader, f->reader.read);
  AddNatsOptions(*reader, f->reader.nats);

  return [=]() -> Status {
    if (query->parsed()) {
      ARROW_ASSIGN_OR_RAISE(f->query.format, ParseResultFormat(f->format));
      if (!f->args.empty()) {
        ARROW_ASSIGN_OR_RAISE(f->query.ticket.args, ParseJson(f->args, "--args"));
        if (!f->query.ticket.args.is_object()) {
          return Status::Invalid("--args must be a JSON object, e.g. '{\"n\": 5}'");
        }
      }
      if (f->at_version > 0) f->query.ticket.at_version = f->at_version;
      // The server checks the ticket too; checking here gives the same message sooner.
      ARROW_RETURN_NOT_OK(ReadTicket::Parse(f->query.ticket.ToJson()).status());
      return RunQuery(f->query, std::cout);
    }
    if (pull->parsed()) {
      if (!f->archive_pull.archive_url.empty()) {
        f->archive_pull.model = f->pull.model;
        f->archive_pull.version = f->version;
        f->archive_pull.output = f->pull.output;
        return RunPull(f->archive_pull, std::cout);
      }
      if (f->version > 0) f->pull.version = f->version;
      return RunPullVersion(f->pull, std::cout, std::cerr);
    }
    if (reader->parsed()) return RunReader(f->reader, StopOnSignals(), std::cout);
    return Status::OK();
  };
}

}  // namespace teatree::cli
