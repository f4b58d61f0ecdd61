#pragma once

// Where Teatree's log lines go and how they look: one setup for every process.

#include <spdlog/common.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

enum class LogFormat {
  kText,  // [2026-12-07 10:00:00.123] [info] model sales: ...
  kJson,  // {"time":"2026-12-07T10:00:00.123Z","level":"info","model":"sales","message":...}
};

struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  LogFormat format = LogFormat::kText;
  /// Empty: stderr. Otherwise this file, rotated once it passes `max_bytes` (F → F.1 → …,
  /// the oldest past `keep` removed).
  std::filesystem::path file;
  int64_t max_bytes = int64_t{64} << 20;
  int keep = 5;
};

/// Sends the process's log (spdlog's default logger) where `options` say, in their format.
/// JSON lines carry, where the line names them, the model ("model M: …") and the request id
/// ("request R"). Call once, early, from one thread.
Status ConfigureLogging(const LogOptions& options);

/// One log line as JSON (the kJson format), for `level` and `message` at `time_ms` (Unix
/// milliseconds). Exposed for tests.
std::string JsonLogLine(spdlog::level::level_enum level, const std::string& message,
                        int64_t time_ms);

}  // namespace teatree
