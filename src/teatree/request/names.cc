#include "teatree/request/names.h"

#include "teatree/request/message_internal.h"

namespace teatree {
namespace {

bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

Status ValidateName(std::string_view kind, std::string_view name) {
  bool valid = !name.empty() && name.size() <= kMaxNameLength && name[0] >= 'a' && name[0] <= 'z';
  for (size_t i = 1; valid && i < name.size(); ++i) valid = IsLowerOrDigit(name[i]);
  if (valid) return Status::OK();
  return Status::Invalid(kind, " name ", request_internal::Quoted(name),
                         " is invalid: use lowercase letters, digits and _ (start with a letter, "
                         "at most ",
                         kMaxNameLength, " characters)");
}

Status ValidateRequestId(std::string_view id) {
  if (id.empty()) {
    return Status::Invalid(
        "request is missing request_id: every request needs a client-chosen id so it is "
        "applied exactly once");
  }
  bool valid = id.size() <= kMaxRequestIdLength;
  for (size_t i = 0; valid && i < id.size(); ++i) valid = IsIdChar(id[i]);
  if (valid) return Status::OK();
  return Status::Invalid("request_id ", request_internal::Quoted(id), " is invalid: use 1 to ",
                         kMaxRequestIdLength, " letters, digits, '.', '_', ':' or '-'");
}

Status ValidateStagedId(std::string_view id) {
  bool valid = id.size() == kStagedIdLength;
  for (size_t i = 0; valid && i < id.size(); ++i) {
    valid = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
  }
  if (valid) return Status::OK();
  return Status::Invalid("staged upload id ", request_internal::Quoted(id),
                         " is invalid: give the id the upload returned (", kStagedIdLength,
                         " lowercase hex digits)");
}

}  // namespace teatree
