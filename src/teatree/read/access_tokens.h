#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

/// The bearer tokens a server accepts, from a token file: one token per line; blank lines and
/// lines starting with # are ignored. Thread-safe (immutable).
class AccessTokens {
 public:
  static Result<std::unique_ptr<AccessTokens>> Load(const std::filesystem::path& file);

  /// True when `authorization` is "Bearer <one of the tokens>". Compares in constant time.
  bool Accepts(std::string_view authorization) const;

 private:
  explicit AccessTokens(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  std::vector<std::string> tokens_;
};

/// What a server tells a client it refuses: no or a wrong token.
inline constexpr const char* kUnauthenticatedMessage =
    "missing or invalid token: send the header 'Authorization: Bearer <token>' with a token "
    "from the server's token file (teatree --token-file)";

}  // namespace teatree
