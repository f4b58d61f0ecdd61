#pragma once

#include <chrono>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

/// Asks the kernel for a TCP port on 127.0.0.1 that is free right now. Another process may
/// take it before the caller binds it; callers that spawn servers retry on a bind failure.
Result<int> FreeLoopbackPort();

/// Waits until something accepts TCP connections on host:port, or fails after `timeout`.
Status WaitForTcpPort(const std::string& host, int port, std::chrono::milliseconds timeout);

/// The host to put in the URLs a server hands out (to clients, in Flight endpoints, in the
/// catalog): `advertise` when set; else `listen`, unless that is a wildcard address
/// (0.0.0.0, ::), which is never handed out: then this machine's host name. An IPv6
/// address comes in brackets, ready for host:port.
std::string AdvertisedHost(const std::string& listen, const std::string& advertise);

}  // namespace teatree
