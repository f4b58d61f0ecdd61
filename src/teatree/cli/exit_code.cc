#include "teatree/cli/exit_code.h"

#include <arrow/flight/types.h>

#include "teatree/common/failure.h"

namespace teatree::cli {

ExitCode ExitCodeOf(const Status& status) {
  if (status.ok()) return ExitCode::kOk;
  if (auto kind = FailureKindOf(status)) {
    return *kind == FailureKind::kUsage ? ExitCode::kUsage : ExitCode::kUnavailable;
  }
  // A read server that is down, or a deadline it reported, reaches the client this way.
  if (auto flight = arrow::flight::FlightStatusDetail::UnwrapStatus(status)) {
    const auto code = flight->code();
    if (code == arrow::flight::FlightStatusCode::Unavailable ||
        code == arrow::flight::FlightStatusCode::TimedOut) {
      return ExitCode::kUnavailable;
    }
  }
  if (status.IsKeyError()) return ExitCode::kNotFound;
  return ExitCode::kError;
}

ExitCode ExitCodeOfParse(int cli11_code) {
  return cli11_code == 0 ? ExitCode::kOk : ExitCode::kUsage;
}

}  // namespace teatree::cli
