#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "teatree/cli/exit_code.h"
#include "teatree/common/logging.h"
#include "teatree/common/output_format.h"
#include "teatree/common/status.h"

namespace teatree::cli {

/// Adds serve, manager, dispatcher, submit, watch, status and model to `app`; their --output
/// goes to `output`. The returned function runs whichever of them was parsed (kOk when none
/// was) and says how it ended: kRejected when submit saw a request rejected.
/// `log`: the log flags as parsed, passed on to the managers serve and dispatcher start.
std::function<Result<ExitCode>()> AddServiceCommands(CLI::App& app, OutputFormat& output,
                                                     const LogOptions& log);

}  // namespace teatree::cli
