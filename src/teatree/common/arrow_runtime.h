#pragma once

#include "teatree/common/status.h"

namespace teatree {

/// Process-wide Arrow set-up that must happen once before computing: registers the
/// compute kernels of libarrow_compute with the function registry. Idempotent and
/// thread-safe; every entry point (CLI, tests, benchmarks) calls it.
Status InitializeArrow();

/// Process-wide Arrow tear-down, called at the end of main() by every entry point: shuts
/// down S3 support (the AWS SDK) if anything started it. The SDK must be finalized before
/// static destructors run, or the process may crash on exit.
void ShutdownArrow();

}  // namespace teatree
