#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "teatree/common/status.h"

namespace teatree::cli {

/// Adds serve, manager, dispatcher, submit, watch and status to `app`. The returned
/// function runs whichever of them was parsed (OK when none was).
std::function<Status()> AddServiceCommands(CLI::App& app);

}  // namespace teatree::cli
