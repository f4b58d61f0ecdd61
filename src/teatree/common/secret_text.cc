#include "teatree/common/secret_text.h"

#include <cctype>

namespace teatree {

std::string OptionVariable(std::string_view long_name) {
  std::string variable = "TEATREE_";
  for (char c : long_name) {
    variable += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return variable;
}

bool IsSecretOption(std::string_view name) {
  if (name.find("-file") != std::string_view::npos || name.find("seed") != std::string_view::npos ||
      name.find("creds") != std::string_view::npos) {
    return false;  // A file that holds a secret is not one.
  }
  return name.find("password") != std::string_view::npos ||
         name.find("secret") != std::string_view::npos || name == "token" ||
         name.ends_with("-token");
}

std::string WithoutUrlPasswords(std::string text) {
  for (size_t scheme = text.find("://"); scheme != std::string::npos;
       scheme = text.find("://", scheme + 3)) {
    const size_t start = scheme + 3;
    const size_t end = std::min(text.find_first_of("/, \"'", start), text.size());
    const size_t at = text.rfind('@', end);
    if (at == std::string::npos || at < start) continue;
    const size_t colon = text.find(':', start);
    if (colon == std::string::npos || colon > at) continue;
    text.replace(colon + 1, at - colon - 1, "(redacted)");
  }
  return text;
}

SecretFreeArgs MoveSecretsToEnvironment(const std::vector<std::string>& args) {
  SecretFreeArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool option = arg.size() > 2 && arg.starts_with("--");
    if (option && i + 1 < args.size() && !args[i + 1].starts_with("--")) {
      const std::string_view name = std::string_view(arg).substr(2);
      const std::string& value = args[i + 1];
      if (IsSecretOption(name) || WithoutUrlPasswords(value) != value) {
        out.environment[OptionVariable(name)] = value;
        ++i;
        continue;
      }
    }
    out.args.push_back(arg);
  }
  return out;
}

}  // namespace teatree
