#pragma once

// Keeping secrets out of sight: which options carry one, and how they travel to child
// processes without appearing on a command line.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace teatree {

/// The environment variable of a long option: data-dir → TEATREE_DATA_DIR.
std::string OptionVariable(std::string_view long_name);

/// Whether an option carries a secret itself (a password or a token, not a file that holds
/// one): its value is never printed nor put on a command line.
bool IsSecretOption(std::string_view long_name);

/// `text` with the password of every URL in it (scheme://user:password@host) replaced by
/// "(redacted)".
std::string WithoutUrlPasswords(std::string text);

/// A child's command line split so that no secret shows in /proc/PID/cmdline: every
/// `--option value` pair whose option IsSecretOption or whose value holds a URL password
/// moves to the environment as OptionVariable(option)=value (which `teatree` reads like the
/// flag); the rest stays in order.
struct SecretFreeArgs {
  std::vector<std::string> args;
  std::map<std::string, std::string> environment;
};
SecretFreeArgs MoveSecretsToEnvironment(const std::vector<std::string>& args);

}  // namespace teatree
