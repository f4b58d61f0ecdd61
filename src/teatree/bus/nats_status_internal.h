#pragma once

#include <nats/nats.h>

#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// The one conversion from nats.c results to Status: OK for NATS_OK, otherwise an error
/// naming `context`, nats.c's text, the JetStream error code when there is one, and the
/// thread's last nats.c error detail.
Status FromNats(natsStatus status, std::string_view context, jsErrCode js_error = jsErrCode(0));

}  // namespace teatree
