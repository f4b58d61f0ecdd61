#include "teatree/read/model_reads.h"

#include <arrow/record_batch.h>

#include <map>
#include <mutex>

#include "teatree/manager/model_manager.h"

namespace teatree {

struct ModelReads::Impl {
  ModelReadsOptions options;
  LiveReaderSource live;  // Empty in a replica.
  // State below is protected by mutex.
  mutable std::mutex mutex;
  std::shared_ptr<DuckReader> newest;  // A replica's current version file.
  int64_t newest_version = 0;
  std::chrono::steady_clock::time_point last_refresh;
  // Version files open for at_version reads, dropped when their last read ends.
  std::map<int64_t, std::weak_ptr<DuckReader>> opened;

  /// Opens version file `version` (or returns it if open); mutex held.
  Result<std::shared_ptr<DuckReader>> Open(int64_t version) {
    if (version == newest_version && newest) return newest;
    if (auto reader = opened[version].lock()) return reader;
    std::error_code ec;
    const auto path = VersionFilePath(options.data_dir, options.model, version);
    if (!std::filesystem::exists(path, ec)) return NotRetained(version);
    ARROW_ASSIGN_OR_RAISE(auto reader, DuckReader::OpenFile(path, options.reader));
    opened[version] = reader;
    std::erase_if(opened, [](const auto& entry) { return entry.second.expired(); });
    return reader;
  }

  Status NotRetained(int64_t version) const {
    auto versions = ListVersionFiles(options.data_dir, options.model);
    std::string kept;
    for (int64_t v : versions.ValueOr({})) kept += (kept.empty() ? "" : ", ") + std::to_string(v);
    return Status::KeyError("version ", version, " of model ", options.model,
                            " is not retained (kept: ", kept.empty() ? "none" : kept,
                            "): read a kept version or leave at_version out");
  }

  /// Moves a replica to the newest version file; mutex held.
  Result<int64_t> RefreshLocked() {
    last_refresh = std::chrono::steady_clock::now();
    ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(options.data_dir, options.model));
    if (versions.empty()) {
      // Clients read this: it names the model, never the server's directories.
      return Status::KeyError("model ", options.model,
                              " has no published version yet: submit requests to it first");
    }
    if (versions.back() > newest_version) {
      const int64_t version = versions.back();
      auto path = VersionFilePath(options.data_dir, options.model, version);
      ARROW_ASSIGN_OR_RAISE(auto reader, DuckReader::OpenFile(path, options.reader));
      // The previous file closes when the reads still running on it end.
      newest = std::move(reader);
      newest_version = version;
    }
    return newest_version;
  }
};

ModelReads::ModelReads(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelReads::~ModelReads() = default;

std::unique_ptr<ModelReads> ModelReads::Live(const ModelReadsOptions& options,
                                             LiveReaderSource live) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->live = std::move(live);
  return std::unique_ptr<ModelReads>(new ModelReads(std::move(impl)));
}

Result<std::unique_ptr<ModelReads>> ModelReads::Replica(const ModelReadsOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  {
    std::lock_guard lock(impl->mutex);
    ARROW_RETURN_NOT_OK(impl->RefreshLocked());
  }
  return std::unique_ptr<ModelReads>(new ModelReads(std::move(impl)));
}

const std::string& ModelReads::model() const { return impl_->options.model; }

Result<std::shared_ptr<DuckReader>> ModelReads::At(std::optional<int64_t> version) {
  std::lock_guard lock(impl_->mutex);
  if (version) return impl_->Open(*version);
  if (impl_->live) return impl_->live();
  if (std::chrono::steady_clock::now() - impl_->last_refresh >= impl_->options.refresh_interval) {
    ARROW_RETURN_NOT_OK(impl_->RefreshLocked());
  }
  return impl_->newest;
}

Result<int64_t> ModelReads::Refresh() {
  if (impl_->live) return 0;
  std::lock_guard lock(impl_->mutex);
  return impl_->RefreshLocked();
}

Result<int64_t> ModelReads::CurrentVersion() {
  if (!impl_->live) return Refresh();
  ARROW_ASSIGN_OR_RAISE(auto reader, impl_->live());
  // The version comes with any read's transaction; the cheapest read there is.
  ARROW_ASSIGN_OR_RAISE(auto probe, reader->Read({.sql = "SELECT 1"}));
  return probe.version;
}

Result<int64_t> ModelReads::PublishedVersion() const {
  ARROW_ASSIGN_OR_RAISE(auto versions,
                        ListVersionFiles(impl_->options.data_dir, impl_->options.model));
  return versions.empty() ? 0 : versions.back();
}

Result<std::vector<VersionFileInfo>> ModelReads::Versions() const {
  ARROW_ASSIGN_OR_RAISE(auto versions,
                        ListVersionFiles(impl_->options.data_dir, impl_->options.model));
  std::vector<VersionFileInfo> files;
  for (int64_t version : versions) {
    auto path = VersionFilePath(impl_->options.data_dir, impl_->options.model, version);
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) continue;  // Removed by the publisher since it was listed.
    files.push_back({version, path, static_cast<int64_t>(bytes)});
  }
  if (!impl_->live && !files.empty()) {
    // A client that saw a version in the list reads it (or a newer one) next from here.
    std::lock_guard lock(impl_->mutex);
    if (files.back().version > impl_->newest_version) impl_->last_refresh = {};
  }
  return files;
}

Result<VersionFileInfo> ModelReads::VersionFile(std::optional<int64_t> version) const {
  ARROW_ASSIGN_OR_RAISE(auto files, Versions());
  if (!version && !files.empty()) return files.back();
  for (const auto& file : files) {
    if (file.version == *version) return file;
  }
  if (!version) {
    return Status::KeyError("model ", impl_->options.model, " has no published version yet");
  }
  return impl_->NotRetained(*version);
}

}  // namespace teatree
