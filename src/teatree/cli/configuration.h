#pragma once

// Configuration from the environment and from a file, besides flags, for every command.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "teatree/common/status.h"

namespace teatree::cli {

/// Every command under `app` (not `app` itself), nested ones too, each with its path:
/// "serve", "model.create".
std::vector<std::pair<std::string, CLI::App*>> AllCommands(CLI::App& app,
                                                           const std::string& prefix = "");

/// Where an option's value came from; an earlier one wins.
enum class Source { kFlag, kEnvironment, kFile, kDefault };

/// "flag", "environment", "file" or "default".
const char* SourceName(Source source);

/// The configuration layer of a `teatree` command line whose commands are all defined. The
/// flags themselves are the one table of options: every long option of every command can
/// also be set by
/// - an environment variable TEATREE_<OPTION> (`--data-dir`: TEATREE_DATA_DIR), and
/// - a TOML file (`--config FILE`, or TEATREE_CONFIG): a key at the top (`data-dir =
///   "/var/lib/teatree"`) for every command that has the option, or under a command's
///   section (`[serve]`, `[model.create]`) for that command only.
/// Precedence: flag > environment > file > default. Unknown keys and bad values in the file
/// are refused, with the key, the file and the reason.
class Configuration {
 public:
  /// Gives every option of every command in `app` its variable, and `app` the --config
  /// option. Call once every command is defined, before parsing.
  explicit Configuration(CLI::App& app);

  /// Before app.parse(): reads the file that `args` (the command line without the program,
  /// --config FILE) or TEATREE_CONFIG names, if any, and makes its values the options'
  /// defaults.
  Status LoadFile(const std::vector<std::string>& args);

  struct Entry {
    std::string key;  // The long option without its dashes: data-dir.
    std::string variable;
    std::string value;  // Secrets redacted.
    Source source;
  };
  /// After app.parse(args): every option of the command that runs, its value and where the
  /// value came from.
  std::vector<Entry> Effective(const std::vector<std::string>& args) const;

  /// The command that runs after app.parse(): the deepest one chosen.
  CLI::App* chosen() const;

  /// Markdown: each option's key and variable, the commands that have it, what it does.
  std::string Reference() const;

  /// The file LoadFile read ("" when none).
  const std::string& file() const { return file_; }

 private:
  Status Apply(CLI::Option& option, const std::vector<std::string>& values, const std::string& key);

  CLI::App& app_;
  std::string file_;
  std::map<const CLI::Option*, std::string> from_file_;  // Option → the value it got.
};

/// `value` as it may be shown: "(redacted)" for a secret option (IsSecretOption); a URL's
/// password replaced.
std::string Shown(const std::string& long_name, const std::string& value);

}  // namespace teatree::cli
