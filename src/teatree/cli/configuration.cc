#include "teatree/cli/configuration.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "teatree/common/secret_text.h"

namespace teatree::cli {
namespace {

/// The options of `command` that configuration can set: those with a long name, but help.
std::vector<CLI::Option*> Configurable(CLI::App& command) {
  const CLI::Option* help = command.get_help_ptr();
  return command.get_options([help](CLI::Option* option) {
    return option != help && !option->get_lnames().empty() &&
           option->get_lnames().front() != "config";
  });
}

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& value : values) out += (out.empty() ? "" : ",") + value;
  return out;
}

/// Whether `args` give `option` itself (--name, --name=..., -n).
bool OnCommandLine(const CLI::Option& option, const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    for (const auto& name : option.get_lnames()) {
      if (arg == "--" + name || arg.rfind("--" + name + "=", 0) == 0) return true;
    }
    for (const auto& name : option.get_snames()) {
      if (arg.rfind("-" + name, 0) == 0 && arg.rfind("--", 0) != 0) return true;
    }
  }
  return false;
}

constexpr const char* kConfigHelp =
    "TOML file of options (or TEATREE_CONFIG): `key = value` at the top for every command "
    "that has the option, or under [command]; flags and TEATREE_* variables win over it "
    "(docs/deploy.md)";

}  // namespace

std::vector<std::pair<std::string, CLI::App*>> AllCommands(CLI::App& app,
                                                           const std::string& prefix) {
  std::vector<std::pair<std::string, CLI::App*>> out;
  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    const std::string path =
        prefix.empty() ? command->get_name() : prefix + "." + command->get_name();
    out.emplace_back(path, command);
    auto nested = AllCommands(*command, path);
    out.insert(out.end(), nested.begin(), nested.end());
  }
  return out;
}

const char* SourceName(Source source) {
  switch (source) {
    case Source::kFlag:
      return "flag";
    case Source::kEnvironment:
      return "environment";
    case Source::kFile:
      return "file";
    case Source::kDefault:
      break;
  }
  return "default";
}

std::string Shown(const std::string& long_name, const std::string& value) {
  if (value.empty()) return value;
  if (IsSecretOption(long_name)) return "(redacted)";
  return WithoutUrlPasswords(value);  // user:password@ in URLs (NATS, PostgreSQL).
}

Configuration::Configuration(CLI::App& app) : app_(app) {
  const auto commands = AllCommands(app);
  for (auto& [path, command] : commands) {
    for (CLI::Option* option : Configurable(*command)) {
      if (option->get_envname().empty())
        option->envname(OptionVariable(option->get_lnames().front()));
    }
  }
  // Before or after the command: LoadFile finds it on the command line either way.
  app.add_option("--config", file_, kConfigHelp);
  for (auto& [path, command] : commands) command->add_option("--config", file_, kConfigHelp);
}

Status Configuration::LoadFile(const std::vector<std::string>& args) {
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (arg.rfind("--config=", 0) == 0) path = arg.substr(9);
  }
  if (const char* variable = std::getenv("TEATREE_CONFIG"); path.empty() && variable != nullptr) {
    path = variable;
  }
  if (path.empty()) return Status::OK();
  std::ifstream in(path);
  if (!in) {
    return Status::Invalid("cannot read the config file ", path,
                           " (--config or TEATREE_CONFIG): check that it exists and is readable");
  }
  file_ = path;
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::Error& e) {
    return Status::Invalid("config file ", path, " is not TOML as Teatree reads it: ", e.what());
  }
  const auto commands = AllCommands(app_);
  std::vector<const CLI::ConfigItem*> top, sections;
  for (const auto& item : items) {
    // CLI11 marks where a section starts (++) and ends (--).
    if (item.name == "--" || item.name == "++" || item.name.empty()) continue;
    const bool at_top =
        item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == "default");
    (at_top ? top : sections).push_back(&item);
  }
  // The top first, so that a command's section wins over it.
  for (const CLI::ConfigItem* item : top) {
    if (item->name == "config") {
      return Status::Invalid("config file ", path, ": config cannot name another file");
    }
    bool known = false;
    for (const auto& [name, command] : commands) {
      CLI::Option* option = command->get_option_no_throw("--" + item->name);
      if (option == nullptr || option->get_lnames().empty()) continue;
      known = true;
      ARROW_RETURN_NOT_OK(Apply(*option, item->inputs, item->name));
    }
    if (!known) {
      return Status::Invalid("config file ", path, ": unknown key ", item->name,
                             ": no command has --", item->name,
                             " (keys are long options without their dashes; `teatree config "
                             "--reference` lists them)");
    }
  }
  for (const CLI::ConfigItem* item : sections) {
    std::string section;
    for (const auto& parent : item->parents) section += (section.empty() ? "" : ".") + parent;
    auto found = std::find_if(commands.begin(), commands.end(),
                              [&](const auto& command) { return command.first == section; });
    if (found == commands.end()) {
      return Status::Invalid("config file ", path, ": unknown section [", section,
                             "]: sections are commands, e.g. [serve] or [model.create]");
    }
    CLI::Option* option = found->second->get_option_no_throw("--" + item->name);
    if (option == nullptr || option->get_lnames().empty()) {
      return Status::Invalid("config file ", path, ": unknown key ", item->name, " in [", section,
                             "]: `teatree ", found->second->get_name(), "` has no --", item->name,
                             " (its --help lists what it has)");
    }
    ARROW_RETURN_NOT_OK(Apply(*option, item->inputs, section + "." + item->name));
  }
  return Status::OK();
}

Status Configuration::Apply(CLI::Option& option, const std::vector<std::string>& values,
                            const std::string& key) {
  const std::string& name = option.get_lnames().front();
  try {
    // The value becomes what the option holds unless the command line or the environment
    // gives another: its results are cleared again, so that parsing sees it unset.
    option.clear();
    option.add_result(values);
    option.run_callback();
    option.clear();
  } catch (const CLI::Error& e) {
    option.clear();
    return Status::Invalid("config file ", file_, ": ", key, " = ", Shown(name, Join(values)), ": ",
                           e.what());
  }
  from_file_[&option] = Join(values);
  return Status::OK();
}

CLI::App* Configuration::chosen() const {
  CLI::App* command = &app_;
  for (;;) {
    auto chosen = command->get_subcommands();
    if (chosen.empty()) return command;
    command = chosen.front();
  }
}

std::vector<Configuration::Entry> Configuration::Effective(
    const std::vector<std::string>& args) const {
  std::vector<Entry> entries;
  CLI::App* command = chosen();
  if (command == &app_) return entries;
  for (CLI::Option* option : Configurable(*command)) {
    const std::string& name = option->get_lnames().front();
    Entry entry{.key = name, .variable = option->get_envname(), .source = Source::kDefault};
    if (option->count() > 0) {
      const bool from_variable =
          !OnCommandLine(*option, args) && std::getenv(entry.variable.c_str()) != nullptr;
      entry.source = from_variable ? Source::kEnvironment : Source::kFlag;
      entry.value = Join(option->results());
    } else if (auto found = from_file_.find(option); found != from_file_.end()) {
      entry.source = Source::kFile;
      entry.value = found->second;
    } else {
      entry.value = option->get_default_str();
    }
    entry.value = Shown(name, entry.value);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string Configuration::Reference() const {
  struct Row {
    std::string variable, help;
    std::vector<std::string> commands;
  };
  std::map<std::string, Row> rows;
  for (auto& [path, command] : AllCommands(app_)) {
    for (CLI::Option* option : Configurable(*command)) {
      Row& row = rows[option->get_lnames().front()];
      row.variable = option->get_envname();
      if (row.help.empty()) row.help = option->get_description();
      std::string shown = path;
      std::replace(shown.begin(), shown.end(), '.', ' ');
      row.commands.push_back(shown);
    }
  }
  std::ostringstream out;
  out << "| key (`--key`, `key =`) | variable | commands | what |\n|---|---|---|---|\n";
  for (const auto& [key, row] : rows) {
    std::string help = row.help;
    std::replace(help.begin(), help.end(), '\n', ' ');
    std::string escaped;
    for (char c : help) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
    std::string commands;
    for (const auto& command : row.commands) commands += (commands.empty() ? "" : ", ") + command;
    out << "| `" << key << "` | `" << row.variable << "` | " << commands << " | " << escaped
        << " |\n";
  }
  return out.str();
}

}  // namespace teatree::cli
