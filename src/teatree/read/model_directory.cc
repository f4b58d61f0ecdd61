#include "teatree/read/model_directory.h"

#include <algorithm>

#include "teatree/manager/model_manager.h"
#include "teatree/request/names.h"

namespace teatree {

Result<ModelReads*> SingleModel::Find(const std::string& model) {
  if (model != reads_->model()) {
    return Status::KeyError("this server reads model ", reads_->model(), ", not ", model,
                            ": ask `teatree serve` or the manager of ", model);
  }
  return reads_.get();
}

std::vector<std::string> DataDirReplicas::Models() {
  std::vector<std::string> models;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(defaults_.data_dir / "models", ec)) {
    const std::string name = entry.path().filename().string();
    if (!ValidateName("model", name).ok()) continue;
    auto versions = ListVersionFiles(defaults_.data_dir, name);
    if (versions.ok() && !versions->empty()) models.push_back(name);
  }
  std::sort(models.begin(), models.end());
  return models;
}

Result<ModelReads*> DataDirReplicas::Find(const std::string& model) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  std::lock_guard lock(mutex_);
  auto& replica = replicas_[model];
  if (!replica) {
    ModelReadsOptions options = defaults_;
    options.model = model;
    auto made = ModelReads::Replica(options);
    if (!made.ok()) {
      replicas_.erase(model);
      return made.status();
    }
    replica = std::move(made).ValueUnsafe();
  }
  return replica.get();
}

}  // namespace teatree
