// The `teatree` command: parses flags into options and calls the Run… functions.
#include <arrow/config.h>
#include <nats/nats.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "teatree/common/arrow_runtime.h"
#include "teatree/common/version.h"
#include "teatree/doctor/doctor.h"
#include "teatree/engine/duckdb/duckdb_database.h"

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

  CLI11_PARSE(app, argc, argv);

  teatree::Status status = teatree::InitializeArrow();
  if (status.ok() && doctor->parsed()) status = teatree::RunDoctor(doctor_options, std::cout);
  if (status.ok() && demo->parsed()) status = teatree::RunQuickDemo(std::cout);
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
