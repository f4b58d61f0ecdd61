// The `teatree` command: parses flags into options and calls the Run… functions.
#include <arrow/config.h>
#include <nats/nats.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "teatree/cli/options.h"
#include "teatree/cli/read_commands.h"
#include "teatree/cli/service_commands.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/version.h"
#include "teatree/doctor/doctor.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/manager/commands.h"

namespace {

std::string VersionText() {
  return std::string("teatree ") + teatree::kVersion + " (DuckDB " +
         teatree::DuckDatabase::LibraryVersion() + ", Arrow " +
         arrow::GetBuildInfo().version_string + ", nats.c " + nats_GetVersion() + ")";
}

int Report(const teatree::Status& status) {
  if (status.ok()) return 0;
  std::cerr << "teatree: error: " << status.message() << std::endl;
  return 1;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Teatree: a near-real-time data pipeline server. Clients send typed requests for a data\n"
      "model through NATS JetStream; one manager per model applies them exactly once through a\n"
      "single DuckDB writer (or Arrow datasets), publishes immutable versions, archives Parquet\n"
      "and serves reads over Arrow Flight and HTTP.",
      "teatree"};
  app.set_version_flag("--version", VersionText());
  app.require_subcommand(1);

  teatree::DoctorOptions doctor_options;
  auto* doctor = app.add_subcommand(
      "doctor", "Prove every dependency works by using it: one line per part, ok or what to do");
  doctor->add_option("--nats-server", doctor_options.nats_server,
                     "nats-server binary to check (default: $TEATREE_NATS_SERVER, else the "
                     "pinned one from scripts/bootstrap)");
  doctor->add_option("--postgres", doctor_options.postgres_url,
                     "also connect to this PostgreSQL, e.g. postgresql://user@host:5432/db");

  auto* demo = app.add_subcommand(
      "demo", "A tiny end to end: DuckDB writes a table, Arrow computes on it, the result prints");

  teatree::ApplyOptions apply_options;
  auto* apply = app.add_subcommand(
      "apply",
      "Apply a file of JSON-line requests in-process, one group-committed batch at a time;\n"
      "prints one outcome line per request once its batch is committed");
  apply
      ->add_option("--file,-f", apply_options.file,
                   "requests, one JSON object per line (- for stdin)")
      ->required();
  teatree::cli::AddModelOptions(*apply, apply_options.manager);
  apply
      ->add_option("--batch-size", apply_options.batch_size,
                   "requests committed together (group commit)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  apply
      ->add_option("--output", apply_options.output,
                   "json: one JSON outcome per line; text: aligned lines and result rows")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "text"}));
  apply->add_flag("!--no-wait", apply_options.wait_published,
                  "do not wait for the newest version to be published before exiting");

  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  auto* versions = app.add_subcommand("versions", "List the published versions of a model");
  versions->add_option("--data-dir,-d", data_dir, "data directory")->capture_default_str();
  versions->add_option("--model,-m", model, "model name")->required();
  auto* catalog = app.add_subcommand(
      "catalog", "Show the control catalog: models, versions, tables and row counts");
  catalog->add_option("--data-dir,-d", data_dir, "data directory")->capture_default_str();

  std::filesystem::path inspect_file;
  std::string inspect_sql;
  auto* inspect = app.add_subcommand(
      "inspect",
      "Open a model or version file read-only (as any DuckDB client would) and show "
      "its tables, or run one SELECT on it");
  inspect->add_option("file", inspect_file, "a .duckdb file, e.g. a version from teatree versions")
      ->required();
  inspect->add_option("sql", inspect_sql, "a SELECT statement to run");

  auto run_service_command = teatree::cli::AddServiceCommands(app);
  auto run_read_command = teatree::cli::AddReadCommands(app);

  CLI11_PARSE(app, argc, argv);

  // Servers hold a descriptor per client connection (and DuckDB, Arrow and NATS their own):
  // the soft limit, often 1024, would refuse clients long before the hard limit.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }

  teatree::Status status = teatree::InitializeArrow();
  if (status.ok() && doctor->parsed()) status = teatree::RunDoctor(doctor_options, std::cout);
  if (status.ok() && demo->parsed()) status = teatree::RunQuickDemo(std::cout);
  if (status.ok() && apply->parsed())
    status = teatree::RunApply(apply_options, std::cout, std::cerr);
  if (status.ok() && versions->parsed()) status = teatree::RunVersions(data_dir, model, std::cout);
  if (status.ok() && catalog->parsed()) status = teatree::RunCatalog(data_dir, std::cout);
  if (status.ok() && inspect->parsed()) {
    status = teatree::RunInspect(inspect_file, inspect_sql, std::cout);
  }
  if (status.ok()) status = run_service_command();
  if (status.ok()) status = run_read_command();
  teatree::ShutdownArrow();
  return Report(status);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {  // Only a bug gets here: errors travel as Status.
    std::cerr << "teatree: internal error: " << e.what() << std::endl;
    return 70;
  }
}
