#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// A fresh directory under the system temp dir, removed with its contents on destruction.
/// Not thread-safe; the owner decides its lifetime.
class TempDir {
 public:
  /// Creates `$TMPDIR/<prefix>XXXXXX`.
  static Result<std::unique_ptr<TempDir>> Make(std::string_view prefix);
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace teatree
