#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"

namespace teatree {

/// What a token may do to a model. Admin implies read and submit.
enum class Access { kRead, kSubmit, kAdmin };

/// What `access` lets a client do, as a verb for messages: "read", "submit to", "administer".
std::string_view AccessName(Access access);

/// The answer to "may this client do that?".
enum class Verdict {
  kAllowed,
  kUnauthenticated,  // No token, or one the server does not know.
  kForbidden,        // A known token without that right on that model.
};

/// The bearer tokens a server accepts and what each may do, from a token file. One token a
/// line, then optionally its rights and its models, separated by blanks:
///
///     # token          rights          models
///     s3cret-analyst   read            sales,inventory
///     s3cret-loader    read,submit     sales
///     s3cret-ops       admin           *
///     s3cret-legacy                                     (no more fields: admin on every model)
///
/// Rights are read (queries, notifications, versions, pulls), submit (requests into the
/// queue) and admin (everything, and the server-wide endpoints such as /metrics); models are
/// names or `*` for every model. Blank lines and lines starting with # are ignored. Tokens are
/// compared in constant time. Thread-safe (immutable).
class AccessTokens {
 public:
  static Result<std::unique_ptr<AccessTokens>> Load(const std::filesystem::path& file);
  /// The same from the file's text; `origin` names it in messages.
  static Result<std::unique_ptr<AccessTokens>> Parse(std::string_view text,
                                                     std::string_view origin);
  ~AccessTokens();

  /// Whether `authorization` ("Bearer <token>") carries a known token.
  bool Accepts(std::string_view authorization) const;
  /// Whether the token in `authorization` may do `access` to `model`; an empty model asks for
  /// the right on every model (server-wide endpoints).
  Verdict Check(std::string_view authorization, Access access, std::string_view model) const;

 private:
  struct Grant;
  explicit AccessTokens(std::vector<Grant> grants);
  const Grant* Find(std::string_view authorization) const;
  std::vector<Grant> grants_;
};

/// What a server tells a client it refuses: no or a wrong token.
inline constexpr const char* kUnauthenticatedMessage =
    "missing or invalid token: send the header 'Authorization: Bearer <token>' with a token "
    "from the server's token file (teatree --token-file)";

/// What a server tells a client whose token lacks a right: "this token may not submit to
/// model sales: ask for a token with that right (see the token file format in docs/reads.md)".
std::string ForbiddenMessage(Access access, std::string_view model);

}  // namespace teatree
