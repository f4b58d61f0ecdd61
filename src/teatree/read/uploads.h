#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"
#include "teatree/engine/staging.h"

namespace teatree {

class ModelRegistry;

/// The Flight command of a DoPut that uploads a payload into a model's staging area:
/// {"upload": "<model>"}. The client sends the file's bytes as metadata-only messages (any
/// sizes up to kMaxUploadChunkBytes, in order) and gets one PutResult back, the JSON
/// {"staged": "<id>", "bytes": N}; a request then names the id as `source.staged`.
inline constexpr const char* kUploadCommandKey = "upload";
/// The largest piece of an upload one message may carry.
inline constexpr size_t kMaxUploadChunkBytes = size_t{16} << 20;
/// The size of the pieces Teatree's clients send.
inline constexpr size_t kUploadChunkBytes = size_t{4} << 20;

/// Where a server takes uploads (Flight DoPut, HTTP POST /v1/models/{m}/uploads): the
/// staging areas of a data directory, for the models a registry knows.
struct UploadOptions {
  /// The data directory whose staging areas uploads go to; empty: the server takes none.
  std::filesystem::path data_dir;
  StagingLimits limits;
  /// The models that exist: uploads for others are refused (KeyError); null: no check.
  ModelRegistry* registry = nullptr;
};

/// Starts an upload for `model`: an error when this server takes no uploads (NotImplemented),
/// the model does not exist (KeyError) or the staging area cannot take one.
Result<std::unique_ptr<StagedUpload>> BeginUpload(const UploadOptions& options,
                                                  const std::string& model);

}  // namespace teatree
