#include "teatree/read/access_tokens.h"

#include <fstream>

namespace teatree {
namespace {

bool SameInConstantTime(std::string_view a, std::string_view b) {
  if (b.empty()) return false;
  // Runs over all of `a` whatever matches, so timing does not reveal a prefix of a token.
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= a[i] ^ b[i % b.size()];
  return difference == 0;
}

}  // namespace

Result<std::unique_ptr<AccessTokens>> AccessTokens::Load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Status::IOError("cannot read the token file ", file.string());
  std::vector<std::string> tokens;
  for (std::string line; std::getline(in, line);) {
    const auto begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') continue;
    const auto end = line.find_last_not_of(" \t\r");
    tokens.push_back(line.substr(begin, end - begin + 1));
  }
  if (tokens.empty()) {
    return Status::Invalid("the token file ", file.string(),
                           " holds no token: write one token per line");
  }
  return std::unique_ptr<AccessTokens>(new AccessTokens(std::move(tokens)));
}

bool AccessTokens::Accepts(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return false;
  authorization.remove_prefix(kBearer.size());
  bool accepted = false;
  for (const auto& token : tokens_) accepted |= SameInConstantTime(authorization, token);
  return accepted;
}

}  // namespace teatree
