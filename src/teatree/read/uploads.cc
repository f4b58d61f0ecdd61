#include "teatree/read/uploads.h"

#include "teatree/bus/model_registry.h"
#include "teatree/request/names.h"

namespace teatree {

Result<std::unique_ptr<StagedUpload>> BeginUpload(const UploadOptions& options,
                                                  const std::string& model) {
  if (options.data_dir.empty()) {
    return Status::NotImplemented(
        "this server takes no uploads: upload to the Flight or HTTP URL of `teatree serve`");
  }
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  if (options.registry != nullptr) {
    ARROW_ASSIGN_OR_RAISE(bool exists, options.registry->Exists(model));
    if (!exists) {
      return Status::KeyError("model ", model,
                              " does not exist: create it (a create_table request) before "
                              "uploading its data");
    }
  }
  return StagedUpload::Begin(StagingDir(options.data_dir, model), options.limits);
}

}  // namespace teatree
