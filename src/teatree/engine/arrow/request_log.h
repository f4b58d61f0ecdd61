#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/batch_screen.h"

namespace teatree {

/// The Arrow engine's memory of request ids, so that a redelivered request gets its stored
/// outcome instead of applying twice: an append-only file of JSON lines beside the manifests.
/// A batch appends its lines with one write and an fdatasync before its manifest is
/// published; the manifest is the commit. So at open, lines of a version after the newest
/// published one (their batch never committed) are dropped, as is a line a crash cut short.
/// Not thread-safe: one writer.
class RequestLog {
 public:
  /// Opens (or creates) the log at `path`; `published_version` is the newest manifest's.
  static Result<std::unique_ptr<RequestLog>> Open(const std::filesystem::path& path,
                                                  int64_t published_version);
  ~RequestLog();

  /// The request with this id, if one was answered.
  const KnownRequest* Find(const std::string& request_id) const;
  /// Appends a batch's requests durably.
  Status Append(const std::vector<KnownRequest>& requests);
  /// Every answered request by id (what ScreenBatch() takes).
  const std::map<std::string, KnownRequest>& known() const { return known_; }
  size_t size() const { return known_.size(); }

 private:
  RequestLog(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_;  // Opened for appending.
  std::map<std::string, KnownRequest> known_;
};

}  // namespace teatree
