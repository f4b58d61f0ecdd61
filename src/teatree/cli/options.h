#pragma once

// Flags several `teatree` commands share.

#include <CLI/CLI.hpp>

#include "teatree/bus/nats_connection.h"
#include "teatree/manager/model_manager.h"

namespace teatree::cli {

/// --data-dir, --control, --archive, --input-dir, --functions: where a model's files live.
void AddModelOptions(CLI::App& command, ManagerOptions& options);

/// --nats and its authentication and TLS flags.
void AddNatsOptions(CLI::App& command, NatsClientOptions& options);

}  // namespace teatree::cli
