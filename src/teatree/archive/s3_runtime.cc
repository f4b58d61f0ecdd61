#include "teatree/archive/s3_runtime.h"

#include <arrow/filesystem/s3fs.h>

namespace teatree {

Status EnsureS3Runtime() {
  static const Status status = arrow::fs::InitializeS3(arrow::fs::S3GlobalOptions::Defaults());
  return status;
}

}  // namespace teatree
