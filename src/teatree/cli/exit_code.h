#pragma once

// The exit codes of `teatree`, in one place: scripts depend on them, so they never change
// meaning (docs/cli.md lists them; a test checks the two agree).

#include <array>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree::cli {

enum class ExitCode : int {
  /// Everything asked for was done: every request stored (and, with --wait, applied).
  kOk = 0,
  /// Any other failure.
  kError = 1,
  /// Bad flags or arguments: the command did nothing.
  kUsage = 2,
  /// At least one request was rejected (by its manager, or before submitting as an invalid
  /// line of --file); the others went through.
  kRejected = 3,
  /// NATS, the server or the read server cannot be reached, or a wait ran out of time (an
  /// outcome, a version): the same command may work later.
  kUnavailable = 4,
  /// The model, version or file asked for does not exist.
  kNotFound = 5,
  /// A bug in teatree (an exception escaped): please report it.
  kInternal = 70,
};

struct ExitCodeInfo {
  ExitCode code;
  std::string_view name;
};

/// Every exit code with its name in docs/cli.md.
inline constexpr std::array<ExitCodeInfo, 7> kExitCodes{{{ExitCode::kOk, "ok"},
                                                         {ExitCode::kError, "error"},
                                                         {ExitCode::kUsage, "usage"},
                                                         {ExitCode::kRejected, "rejected"},
                                                         {ExitCode::kUnavailable, "unavailable"},
                                                         {ExitCode::kNotFound, "not found"},
                                                         {ExitCode::kInternal, "internal"}}};

/// The exit code of a command that ended with `status`: kUsage and kUnavailable where the
/// status is marked so (FailureKind) or Flight says the server is unavailable or timed out,
/// kNotFound for a KeyError, kError for any other error.
ExitCode ExitCodeOf(const Status& status);

/// The exit code for CLI11's exit code of a parse error: 0 stays 0 (--help, --version),
/// anything else is kUsage.
ExitCode ExitCodeOfParse(int cli11_code);

inline int ToInt(ExitCode code) { return static_cast<int>(code); }

}  // namespace teatree::cli
