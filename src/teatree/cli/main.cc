// The `teatree` command: parses flags into options, calls the Run… functions and turns what
// they return into an exit code (cli/exit_code.h, docs/cli.md).
#include <arrow/config.h>
#include <nats/nats.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <string_view>
#include <vector>

#include "teatree/cli/configuration.h"
#include "teatree/cli/exit_code.h"
#include "teatree/cli/local_commands.h"
#include "teatree/cli/options.h"
#include "teatree/cli/read_commands.h"
#include "teatree/cli/service_commands.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/failure.h"
#include "teatree/common/json_text.h"
#include "teatree/common/logging.h"
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

using RunCommand = std::function<teatree::Result<ExitCode>()>;

/// Defines every command that runs something on `app`; the one chosen runs when each
/// returned function is called in turn (the others return kOk at once). Every command takes
/// the log flags, into `log`.
std::vector<RunCommand> DefineCommands(CLI::App& app, OutputFormat& output,
                                       teatree::LogOptions& log) {
  app.set_version_flag("--version", VersionText());
  app.require_subcommand(1);
  std::vector<RunCommand> commands{teatree::cli::AddLocalCommands(app, output),
                                   teatree::cli::AddServiceCommands(app, output, log),
                                   teatree::cli::AddReadCommands(app, output)};
  for (auto& [path, command] : teatree::cli::AllCommands(app)) {
    teatree::cli::AddLogOptions(*command, log);
  }
  return commands;
}

CLI::App MakeApp() {
  return CLI::App{
      "Teatree: a near-real-time data pipeline server. Clients send typed requests for a data\n"
      "model through NATS JetStream; one manager per model applies them exactly once through a\n"
      "single DuckDB writer (or Arrow datasets), publishes immutable versions, archives Parquet\n"
      "and serves reads over Arrow Flight and HTTP. Every option can also come from a TEATREE_*\n"
      "variable or a --config file (docs/deploy.md). Exit codes: docs/cli.md.",
      "teatree"};
}

/// `teatree config [--reference] COMMAND [ITS FLAGS]`: what COMMAND would run with.
teatree::Result<ExitCode> RunConfig(const std::vector<std::string>& args,
                                    const std::vector<std::string>& command, bool reference,
                                    OutputFormat output) {
  CLI::App app = MakeApp();
  OutputFormat ignored = OutputFormat::kText;
  teatree::LogOptions log;
  // Never run, but alive while `app` parses: they own the flags' variables.
  const std::vector<RunCommand> commands = DefineCommands(app, ignored, log);
  teatree::cli::Configuration configuration(app);
  if (reference) {
    std::cout << configuration.Reference();
    return ExitCode::kOk;
  }
  if (command.empty()) {
    return teatree::UsageError(
        "name the command to show, with its flags if any: teatree config serve --http-port 8080");
  }
  ARROW_RETURN_NOT_OK(configuration.LoadFile(args));
  std::vector<std::string> reversed(command.rbegin(), command.rend());  // As CLI11 takes them.
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return teatree::UsageError("teatree ", command.front(), ": ", e.what());
  }
  const auto entries = configuration.Effective(command);
  std::string name;
  for (const auto& [path, at] : teatree::cli::AllCommands(app)) {
    if (at == configuration.chosen()) name = path;
  }
  std::replace(name.begin(), name.end(), '.', ' ');
  if (output == OutputFormat::kJson) {
    nlohmann::json options = nlohmann::json::array();
    for (const auto& entry : entries) {
      options.push_back({{"key", entry.key},
                         {"value", entry.value},
                         {"source", teatree::cli::SourceName(entry.source)},
                         {"variable", entry.variable}});
    }
    std::cout << teatree::DumpJson(nlohmann::json{
                     {"command", name}, {"file", configuration.file()}, {"options", options}})
              << std::endl;
    return ExitCode::kOk;
  }
  size_t key_width = 3, value_width = 5;
  for (const auto& entry : entries) {
    key_width = std::max(key_width, entry.key.size());
    value_width = std::max(value_width, entry.value.size());
  }
  std::cout << "teatree " << name << " runs with"
            << (configuration.file().empty() ? "" : " (config file " + configuration.file() + ")")
            << ":\n"
            << std::left << std::setw(static_cast<int>(key_width) + 2) << "key"
            << std::setw(static_cast<int>(value_width) + 2) << "value" << std::setw(13) << "from"
            << "variable\n";
  for (const auto& entry : entries) {
    std::cout << std::setw(static_cast<int>(key_width) + 2) << entry.key
              << std::setw(static_cast<int>(value_width) + 2)
              << (entry.value.empty() ? "-" : entry.value) << std::setw(13)
              << teatree::cli::SourceName(entry.source) << entry.variable << "\n";
  }
  return ExitCode::kOk;
}

int Main(int argc, char** argv) {
  CLI::App app = MakeApp();
  OutputFormat output = OutputFormat::kText;
  teatree::LogOptions log;
  std::vector<RunCommand> commands = DefineCommands(app, output, log);
  teatree::cli::Configuration configuration(app);
  // Added after the configuration layer: its own flags come from the command line only.
  auto* config = app.add_subcommand(
      "config",
      "Print the configuration a command would run with: each option's value and where it came\n"
      "from (flag, environment TEATREE_*, --config file, default), secrets redacted. Its own\n"
      "flags go before the command: teatree config --output json serve --http-port 8080");
  bool reference = false;
  config->add_flag("--reference", reference,
                   "print every option as a Markdown table: key, variable, commands, what it does");
  teatree::cli::AddOutputOption(*config, output);
  config->prefix_command();

  const std::vector<std::string> args(argv + 1, argv + argc);
  if (teatree::Status loaded = configuration.LoadFile(args); !loaded.ok()) {
    return Report(teatree::UsageError(loaded.message()), output);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Prints the help, the version or the error, and says 0 for the first two.
    const ExitCode code = teatree::cli::ExitCodeOfParse(app.exit(e));
    if (code != ExitCode::kOk && AsksForJson(argc, argv)) PrintJsonError(e.what(), code);
    return teatree::cli::ToInt(code);
  }
  if (config->parsed())
    return Report(RunConfig(args, config->remaining(), reference, output), output);

  if (teatree::Status logging = teatree::ConfigureLogging(log); !logging.ok()) {
    return Report(teatree::UsageError(logging.message()), output);
  }
  RaiseOpenFilesLimit();
  teatree::Result<ExitCode> result = ExitCode::kOk;
  if (auto started = teatree::InitializeArrow(); !started.ok()) result = started;
  if (result.ok()) {
    for (auto& run : commands) {
      result = run();
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
