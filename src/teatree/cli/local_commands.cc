#include "teatree/cli/local_commands.h"

#include <iostream>
#include <memory>

#include "teatree/cli/options.h"
#include "teatree/doctor/doctor.h"
#include "teatree/manager/commands.h"

namespace teatree::cli {
namespace {

/// Everything the commands' flags parse into; lives as long as the returned function.
struct Flags {
  DoctorOptions doctor;
  ApplyOptions apply;
  std::filesystem::path data_dir = "teatree-data";
  std::string model;
  std::filesystem::path inspect_file;
  std::string inspect_sql;
};

CLI::App* AddApply(CLI::App& app, ApplyOptions& options) {
  auto* apply = app.add_subcommand(
      "apply",
      "Apply a file of JSON-line requests in-process, one group-committed batch at a time;\n"
      "prints one outcome line per request once its batch is committed");
  apply->add_option("--file,-f", options.file, "requests, one JSON object per line (- for stdin)")
      ->required();
  AddModelOptions(*apply, options.manager);
  apply
      ->add_option("--batch-size", options.batch_size, "requests committed together (group commit)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  // apply printed JSON before the other commands could: its default stays json.
  apply
      ->add_option("--output", options.output,
                   "json: one JSON outcome per line; text: aligned lines and result rows")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "text"}));
  apply->add_flag("!--no-wait", options.wait_published,
                  "do not wait for the newest version to be published before exiting");
  return apply;
}

}  // namespace

std::function<Result<ExitCode>()> AddLocalCommands(CLI::App& app, OutputFormat& output) {
  auto f = std::make_shared<Flags>();
  auto* doctor = app.add_subcommand(
      "doctor", "Prove every dependency works by using it: one line per part, ok or what to do");
  doctor->add_option("--nats-server", f->doctor.nats_server,
                     "nats-server binary to check (default: $TEATREE_NATS_SERVER, else the "
                     "one installed beside teatree in libexec/teatree/, else PATH's)");
  doctor->add_option("--postgres", f->doctor.postgres_url,
                     "also connect to this PostgreSQL, e.g. postgresql://user@host:5432/db");

  auto* demo = app.add_subcommand(
      "demo", "A tiny end to end: DuckDB writes a table, Arrow computes on it, the result prints");

  auto* apply = AddApply(app, f->apply);

  auto* versions = app.add_subcommand("versions", "List the published versions of a model");
  versions->add_option("--data-dir,-d", f->data_dir, "data directory")->capture_default_str();
  versions->add_option("--model,-m", f->model, "model name")->required();
  AddOutputOption(*versions, output);
  auto* catalog = app.add_subcommand(
      "catalog", "Show the control catalog: models, versions, tables and row counts");
  catalog->add_option("--data-dir,-d", f->data_dir, "data directory")->capture_default_str();
  AddOutputOption(*catalog, output);

  auto* inspect = app.add_subcommand(
      "inspect",
      "Open a model or version file read-only (as any DuckDB client would) and show "
      "its tables, or run one SELECT on it");
  inspect
      ->add_option("file", f->inspect_file, "a .duckdb file, e.g. a version from teatree versions")
      ->required();
  inspect->add_option("sql", f->inspect_sql, "a SELECT statement to run");

  return [=, &output]() -> Result<ExitCode> {
    Status status;
    if (doctor->parsed()) status = RunDoctor(f->doctor, std::cout);
    if (demo->parsed()) status = RunQuickDemo(std::cout);
    if (apply->parsed()) {
      output = f->apply.output == "json" ? OutputFormat::kJson : OutputFormat::kText;
      status = RunApply(f->apply, std::cout, std::cerr);
    }
    if (versions->parsed()) status = RunVersions(f->data_dir, f->model, output, std::cout);
    if (catalog->parsed()) status = RunCatalog(f->data_dir, output, std::cout);
    if (inspect->parsed()) status = RunInspect(f->inspect_file, f->inspect_sql, std::cout);
    ARROW_RETURN_NOT_OK(status);
    return ExitCode::kOk;
  };
}

}  // namespace teatree::cli
