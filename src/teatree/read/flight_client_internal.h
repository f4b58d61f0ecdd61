#pragma once

// What the read path's Flight clients (ReadClient, LiveForwarder) share.

#include <arrow/flight/api.h>

#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

/// A Flight client of `url`, trusting `tls_root` (a PEM file; empty: the system's roots).
Result<std::unique_ptr<arrow::flight::FlightClient>> ConnectFlight(
    const std::string& url, const std::filesystem::path& tls_root);

/// `status` (code and details kept) without what Flight's transport appends to the server's
/// message: ". Detail: TimedOut" once per hop, gRPC's debug context.
Status WithoutTransportNoise(const Status& status);

/// The model version a DoGet stream's schema carries (kVersionMetadataKey), or 0.
int64_t VersionOf(const arrow::Schema& schema);

}  // namespace teatree
