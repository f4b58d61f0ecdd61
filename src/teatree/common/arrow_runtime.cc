#include "teatree/common/arrow_runtime.h"

#include <arrow/compute/initialize.h>
#include <arrow/filesystem/s3fs.h>

namespace teatree {

Status InitializeArrow() {
  static const Status status = arrow::compute::Initialize();
  return status;
}

void ShutdownArrow() {
  if (arrow::fs::IsS3Initialized()) (void)arrow::fs::EnsureS3Finalized();
}

}  // namespace teatree
