#include "teatree/read/access_tokens.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <sstream>

#include "teatree/common/file_util.h"
#include "teatree/request/names.h"

namespace teatree {

struct AccessTokens::Grant {
  std::string token_sha256;  // Of the token: compared with CRYPTO_memcmp at one length.
  bool read = false, submit = false, admin = false;
  bool every_model = false;
  std::vector<std::string> models;

  bool Has(Access access) const {
    return admin || (access == Access::kRead && read) || (access == Access::kSubmit && submit);
  }
  bool Covers(std::string_view model) const {
    if (every_model) return true;
    return !model.empty() && std::find(models.begin(), models.end(), model) != models.end();
  }
};

namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

}  // namespace

std::string_view AccessName(Access access) {
  switch (access) {
    case Access::kRead:
      return "read";
    case Access::kSubmit:
      return "submit to";
    case Access::kAdmin:
      return "administer";
  }
  return "use";
}

std::string ForbiddenMessage(Access access, std::string_view model) {
  return "this token may not " + std::string(AccessName(access)) +
         (model.empty() ? std::string(" this server") : " model " + std::string(model)) +
         ": ask for a token with that right (token file format: docs/reads.md)";
}

AccessTokens::AccessTokens(std::vector<Grant> grants) : grants_(std::move(grants)) {}
AccessTokens::~AccessTokens() = default;

Result<std::unique_ptr<AccessTokens>> AccessTokens::Load(const std::filesystem::path& file) {
  auto text = ReadFileToString(file);
  if (!text.ok()) return Status::IOError("cannot read the token file ", file.string());
  return Parse(*text, "the token file " + file.string());
}

Result<std::unique_ptr<AccessTokens>> AccessTokens::Parse(std::string_view text,
                                                          std::string_view origin) {
  std::vector<Grant> grants;
  std::istringstream in{std::string(text)};
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    std::istringstream fields(line);
    std::string token, rights, models, extra;
    fields >> token >> rights >> models >> extra;
    if (token.empty() || token[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return Status::Invalid(origin, " line ", number, ": ", why,
                             " (write: <token> [read,submit,admin] [model,model|*])");
    };
    if (!extra.empty()) return bad("more than three fields");
    Grant grant{.token_sha256 = Sha256Hex(token)};
    if (rights.empty()) {
      grant.admin = grant.every_model = true;  // A bare token, as before rights existed.
    } else {
      for (const auto& right : SplitCommas(rights)) {
        if (right == "read") {
          grant.read = true;
        } else if (right == "submit") {
          grant.submit = true;
        } else if (right == "admin") {
          grant.admin = true;
        } else {
          return bad("unknown right \"" + right + "\"");
        }
      }
      if (models.empty()) return bad("no models after the rights: name them, or * for all");
      for (const auto& model : SplitCommas(models)) {
        if (model == "*") {
          grant.every_model = true;
          continue;
        }
        ARROW_RETURN_NOT_OK(ValidateName("model", model));
        grant.models.push_back(model);
      }
    }
    grants.push_back(std::move(grant));
  }
  if (grants.empty()) return Status::Invalid(origin, " holds no token: write one token per line");
  return std::unique_ptr<AccessTokens>(new AccessTokens(std::move(grants)));
}

const AccessTokens::Grant* AccessTokens::Find(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return nullptr;
  authorization.remove_prefix(kBearer.size());
  if (authorization.empty()) return nullptr;
  // Digests have one length, so the comparison's time says nothing of the token.
  const std::string digest = Sha256Hex(authorization);
  const Grant* found = nullptr;
  for (const auto& grant : grants_) {
    if (CRYPTO_memcmp(digest.data(), grant.token_sha256.data(), digest.size()) == 0) {
      found = &grant;
    }
  }
  return found;
}

bool AccessTokens::Accepts(std::string_view authorization) const {
  return Find(authorization) != nullptr;
}

Verdict AccessTokens::Check(std::string_view authorization, Access access,
                            std::string_view model) const {
  const Grant* grant = Find(authorization);
  if (grant == nullptr) return Verdict::kUnauthenticated;
  const bool covered = model.empty() ? grant->every_model : grant->Covers(model);
  return covered && grant->Has(access) ? Verdict::kAllowed : Verdict::kForbidden;
}

}  // namespace teatree
