#pragma once

#include <cstddef>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// The longest model, table, column, function or attachment name.
inline constexpr size_t kMaxNameLength = 63;
/// The longest request id.
inline constexpr size_t kMaxRequestIdLength = 128;

/// The one validator for the names of models, tables, columns, functions and attachments:
/// `^[a-z][a-z0-9_]{0,62}$`. These names end up in NATS subjects, file paths and SQL, so
/// everything else is refused before it gets there. `kind` says what the name is for in the
/// error ("model", "table", "column", ...):
///   model name "Sales/2024" is invalid: use lowercase letters, digits and _ (start with a
///   letter, at most 63 characters)
/// Thread-safe (pure function).
Status ValidateName(std::string_view kind, std::string_view name);

/// Checks a client-chosen request id: 1 to 128 characters from [A-Za-z0-9._:-]. The id is
/// used as the NATS message id and as a key of the request log. Thread-safe.
Status ValidateRequestId(std::string_view id);

/// The length of a staged upload's id: that many lowercase hex digits.
inline constexpr size_t kStagedIdLength = 32;

/// Checks the id of a staged upload (what a request's `source.staged` names): exactly
/// kStagedIdLength lowercase hex digits, as the server hands them out, so the id can only
/// ever name a file inside a staging directory. Thread-safe.
Status ValidateStagedId(std::string_view id);

}  // namespace teatree
