// The `teatree` command: parses flags into options, calls the Run… functions and turns what
// they return into an exit code (cli/exit_code.h, docs/cli.md).
#include <arrow/config.h>
#include <nats/nats.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string_view>

#include "teatree/cli/exit_code.h"
#include "teatree/cli/local_commands.h"
#include "teatree/cli/read_commands.h"
#include "teatree/cli/service_commands.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/json_text.h"
#include "teatree/common/version.h"
#include "teatree/engine/duckdb/duckdb_database.h"

namespace {

using teatree::OutputFormat;
using teatree::cli::ExitCode;

std::string VersionText() {
  return std::string("teatree ") + teatree::kVersion + " (DuckDB " +
         teatree::DuckDatabase::LibraryVersion() + ", Arrow " +
         arrow::GetBuildInfo().version_string + ", nats.c " + nats_GetVersion() + ")";
}

/// Whether the command line asks for --output json, read before (or without) parsing it: a
/// command line CLI11 refuses still gets its error as JSON.
bool AsksForJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--output=json" || arg == "--json") return true;
    if (arg == "--output" && i + 1 < argc && std::string_view(argv[i + 1]) == "json") return true;
  }
  return false;
}

/// {"error", "exit_code"} on stdout, for scripts that asked for --output json.
void PrintJsonError(const std::string& message, ExitCode code) {
  std::cout << teatree::DumpJson(
                   nlohmann::json{{"error", message}, {"exit_code", teatree::cli::ToInt(code)}})
            << std::endl;
}

/// The exit code of `result`; an error goes to stderr for people, and to stdout as JSON too
/// with --output json.
int Report(const teatree::Result<ExitCode>& result, OutputFormat output) {
  if (result.ok()) return teatree::cli::ToInt(*result);
  const ExitCode code = teatree::cli::ExitCodeOf(result.status());
  std::cerr << "teatree: error: " << result.status().message() << std::endl;
  if (output == OutputFormat::kJson) PrintJsonError(result.status().message(), code);
  return teatree::cli::ToInt(code);
}

/// Servers hold a descriptor per client connection (and DuckDB, Arrow and NATS their own):
/// the soft limit, often 1024, would refuse clients long before the hard limit.
void RaiseOpenFilesLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Teatree: a near-real-time data pipeline server. Clients send typed requests for a data\n"
      "model through NATS JetStream; one manager per model applies them exactly once through a\n"
      "single DuckDB writer (or Arrow datasets), publishes immutable versions, archives Parquet\n"
      "and serves reads over Arrow Flight and HTTP. Exit codes: docs/cli.md.",
      "teatree"};
  app.set_version_flag("--version", VersionText());
  app.require_subcommand(1);

  OutputFormat output = OutputFormat::kText;
  auto run_local_command = teatree::cli::AddLocalCommands(app, output);
  auto run_service_command = teatree::cli::AddServiceCommands(app, output);
  auto run_read_command = teatree::cli::AddReadCommands(app, output);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Prints the help, the version or the error, and says 0 for the first two.
    const ExitCode code = teatree::cli::ExitCodeOfParse(app.exit(e));
    if (code != ExitCode::kOk && AsksForJson(argc, argv)) PrintJsonError(e.what(), code);
    return teatree::cli::ToInt(code);
  }

  RaiseOpenFilesLimit();
  teatree::Result<ExitCode> result = ExitCode::kOk;
  if (auto started = teatree::InitializeArrow(); !started.ok()) result = started;
  if (result.ok()) {
    for (auto* run : {&run_local_command, &run_service_command, &run_read_command}) {
      result = (*run)();
      if (!result.ok() || *result != ExitCode::kOk) break;
    }
  }
  teatree::ShutdownArrow();
  return Report(result, output);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {  // Only a bug gets here: errors travel as Status.
    std::cerr << "teatree: internal error: " << e.what() << std::endl;
    return teatree::cli::ToInt(ExitCode::kInternal);
  }
}
