#include <string>

#include "teatree/bus/nats_status_internal.h"
#include "teatree/common/failure.h"

namespace teatree {

Status FromNats(natsStatus status, std::string_view context, jsErrCode js_error) {
  if (status == NATS_OK) return Status::OK();
  std::string message = natsStatus_GetText(status);
  if (const char* detail = nats_GetLastError(nullptr); detail != nullptr && *detail != '\0') {
    message = detail;
    // nats.c prefixes its detail with where it was raised, "(conn.c:2088): ": noise to a user.
    if (const size_t end = message.find("): "); message[0] == '(' && end < 32) {
      message.erase(0, end + 3);
    }
  }
  if (js_error != 0) message += " (JetStream error " + std::to_string(js_error) + ")";
  if (status == NATS_TIMEOUT || status == NATS_NO_SERVER || status == NATS_CONNECTION_CLOSED) {
    return Unavailable(context, ": ", message);
  }
  return Status::UnknownError(context, ": ", message);
}

}  // namespace teatree
