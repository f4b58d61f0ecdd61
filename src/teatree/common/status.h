#pragma once

#include <arrow/result.h>
#include <arrow/status.h>

namespace teatree {

/// Teatree speaks Arrow's error types end to end: every fallible function returns
/// `Status` or `Result<T>` and propagates with ARROW_RETURN_NOT_OK / ARROW_ASSIGN_OR_RAISE.
using Status = arrow::Status;
template <typename T>
using Result = arrow::Result<T>;

}  // namespace teatree
