#include "teatree/control/control_internal.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace teatree {

Status WithContext(const Status& status, std::string_view context) {
  if (status.ok()) return status;
  return status.WithMessage(context, ": ", status.message());
}

std::string NowIso8601Utc() {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  const int64_t micros =
      duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char date_time[32];
  std::strftime(date_time, sizeof(date_time), "%Y-%m-%dT%H:%M:%S", &utc);
  char fraction[16];
  std::snprintf(fraction, sizeof(fraction), ".%06dZ", static_cast<int>(micros % 1000000));
  return std::string(date_time) + fraction;
}

std::string RedactUrl(const std::string& url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

Status ValidateModelRecord(const ModelRecord& model) {
  if (model.id.empty()) {
    return Status::Invalid("model record has an empty id: give every model an id");
  }
  if (model.current_version < 0 || model.published_version < 0) {
    return Status::Invalid("model \"", model.id, "\" has a negative version (current ",
                           model.current_version, ", published ", model.published_version,
                           "): versions start at 0");
  }
  return Status::OK();
}

Status ValidateContentRecord(const ContentRecord& content) {
  if (content.model.empty() || content.table_name.empty()) {
    return Status::Invalid("content record (model \"", content.model, "\", version ",
                           content.version, ", table \"", content.table_name,
                           "\") needs both a model and a table_name");
  }
  if (content.version < 0 || content.rows < 0 || content.bytes < 0) {
    return Status::Invalid("content record (model \"", content.model, "\", version ",
                           content.version, ", table \"", content.table_name, "\") has rows ",
                           content.rows, " and bytes ", content.bytes,
                           ": version, rows and bytes cannot be negative");
  }
  return Status::OK();
}

Status ValidateRequestLogRecord(const RequestLogRecord& request) {
  if (request.model.empty() || request.request_id.empty()) {
    return Status::Invalid("request log record (model \"", request.model, "\", request_id \"",
                           request.request_id, "\") needs both a model and a request_id");
  }
  if (request.status != "applied" && request.status != "rejected" &&
      request.status != "duplicate") {
    return Status::Invalid("request \"", request.request_id, "\" of model \"", request.model,
                           "\" has status \"", request.status,
                           "\": use applied, rejected or duplicate");
  }
  return Status::OK();
}

}  // namespace teatree
