#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "teatree/cli/exit_code.h"
#include "teatree/common/output_format.h"
#include "teatree/common/status.h"

namespace teatree::cli {

/// Adds the commands that work on this machine's files without a server: doctor, demo, apply,
/// versions, catalog and inspect. Their --output goes to `output`. The returned function runs
/// whichever of them was parsed (kOk when none was).
std::function<Result<ExitCode>()> AddLocalCommands(CLI::App& app, OutputFormat& output);

}  // namespace teatree::cli
