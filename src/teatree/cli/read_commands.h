#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "teatree/cli/exit_code.h"
#include "teatree/common/output_format.h"
#include "teatree/common/status.h"

namespace teatree::cli {

/// Adds `query`, `pull` and `reader`, their --output going to `output`; the returned function
/// runs the one that was parsed (kOk when none was).
std::function<Result<ExitCode>()> AddReadCommands(CLI::App& app, OutputFormat& output);

}  // namespace teatree::cli
