#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "teatree/common/status.h"

namespace teatree::cli {

/// Adds `query`, `pull` and `reader`; the returned function runs the one that was parsed.
std::function<Status()> AddReadCommands(CLI::App& app);

}  // namespace teatree::cli
