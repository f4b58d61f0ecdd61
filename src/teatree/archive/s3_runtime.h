#pragma once

#include "teatree/common/status.h"

namespace teatree {

/// Initializes Arrow's S3 support (the AWS SDK) once per process. Thread-safe. Call before
/// constructing any S3 filesystem; ShutdownArrow() at the end of main() finalizes it.
Status EnsureS3Runtime();

}  // namespace teatree
