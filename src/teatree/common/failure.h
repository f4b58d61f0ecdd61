#pragma once

// What a failure means to whoever asked, where Arrow's status codes cannot say it.

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "teatree/common/status.h"

namespace teatree {

/// Failures that callers must tell apart (the command line maps them to exit codes) but that
/// Arrow's codes mix up: an IOError may be a full disk or a server that does not answer, an
/// Invalid a refused query or flags that do not go together.
enum class FailureKind {
  /// The command line asked for something that cannot be done as given: flags that do not
  /// go together, a directory that does not exist for --output-file.
  kUsage,
  /// A server, the queue or a version did not answer or arrive in time: the same command may
  /// work later.
  kUnavailable,
};

/// `status` with `kind` attached (its code and message unchanged; any detail it had is
/// replaced). OK stays OK.
Status MarkFailure(Status status, FailureKind kind);

/// The kind `status` was marked with, if any.
std::optional<FailureKind> FailureKindOf(const Status& status);

/// Status::Invalid(args...) marked kUsage: what the command line returns for arguments it
/// refuses.
template <typename... Args>
Status UsageError(Args&&... args) {
  return MarkFailure(Status::Invalid(std::forward<Args>(args)...), FailureKind::kUsage);
}

/// Status::IOError(args...) marked kUnavailable.
template <typename... Args>
Status Unavailable(Args&&... args) {
  return MarkFailure(Status::IOError(std::forward<Args>(args)...), FailureKind::kUnavailable);
}

/// Calls `setup` (returning Status or Result) until it succeeds, fails for a reason other
/// than kUnavailable, or `stop` is set, waiting a second between tries and logging each as
/// `who`: for a server's start against a NATS cluster that is slow to answer (a stream of
/// several replicas is created by a vote of its servers), which is waited for, not fatal.
template <typename Setup>
auto RetryWhileUnavailable(std::string_view who, const std::atomic<bool>& stop, Setup&& setup)
    -> decltype(setup()) {
  for (int attempt = 1;; ++attempt) {
    auto result = setup();
    const Status& status = [&]() -> const Status& {
      if constexpr (std::is_same_v<decltype(result), Status>) {
        return result;
      } else {
        return result.status();
      }
    }();
    if (status.ok() || stop || FailureKindOf(status) != FailureKind::kUnavailable) return result;
    spdlog::warn("{}: {} (attempt {}); trying again in 1 s", who, status.message(), attempt);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace teatree
