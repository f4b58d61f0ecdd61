#pragma once

#include <string>
#include <string_view>

#include "teatree/common/status.h"
#include "teatree/control/control_store.h"

// Helpers shared by the control module's backends; not part of its public face.
namespace teatree {

/// `status` with `context` and ": " in front of its message; OK stays OK.
Status WithContext(const Status& status, std::string_view context);

/// The current time as ISO-8601 UTC with microseconds, e.g. "2025-01-31T12:00:00.123456Z":
/// fixed width, so text order is time order on every backend.
std::string NowIso8601Utc();

/// `url` with the password of its user-info replaced by "***", for error messages.
std::string RedactUrl(const std::string& url);

/// Checks a record before any backend writes it; the error names the record and the field.
Status ValidateModelRecord(const ModelRecord& model);
Status ValidateContentRecord(const ContentRecord& content);
Status ValidateRequestLogRecord(const RequestLogRecord& request);

}  // namespace teatree
