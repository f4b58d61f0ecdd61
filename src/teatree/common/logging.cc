#include "teatree/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

namespace teatree {
namespace {

/// Formats each message as JsonLogLine.
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const std::string line =
        JsonLogLine(msg.level, std::string(msg.payload.data(), msg.payload.size()), ms) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string JsonLogLine(spdlog::level::level_enum level, const std::string& message,
                        int64_t time_ms) {
  const std::time_t seconds = time_ms / 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[8];
  std::snprintf(millis, sizeof(millis), ".%03dZ", static_cast<int>(time_ms % 1000));
  const auto name = spdlog::level::to_string_view(level);
  nlohmann::json line{{"time", std::string(stamp) + millis},
                      {"level", std::string(name.data(), name.size())}};
  // Teatree's lines name what they are about in words: "model sales: ...", "request r1".
  static const std::regex kModel(R"(^model ([A-Za-z0-9_][A-Za-z0-9_-]*):)");
  static const std::regex kRequest(R"(\brequest ([A-Za-z0-9_.-]*[A-Za-z0-9_]))");
  std::smatch found;
  if (std::regex_search(message, found, kModel)) line["model"] = found[1].str();
  if (std::regex_search(message, found, kRequest)) line["request_id"] = found[1].str();
  line["message"] = message;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status ConfigureLogging(const LogOptions& options) {
  spdlog::sink_ptr sink;
  if (options.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    if (options.max_bytes <= 0 || options.keep < 1) {
      return Status::Invalid("log rotation needs a positive size and at least one file kept");
    }
    try {
      sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file.string(), static_cast<size_t>(options.max_bytes),
          static_cast<size_t>(options.keep));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IOError("cannot write the log file ", options.file.string(), ": ", e.what());
    }
  }
  if (options.format == LogFormat::kJson) {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_formatter(
        std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e] [%l] %v"));
  }
  auto logger = std::make_shared<spdlog::logger>("teatree", sink);
  logger->set_level(options.level);
  logger->flush_on(spdlog::level::trace);  // Each line is out before a crash can lose it.
  spdlog::set_default_logger(logger);
  return Status::OK();
}

}  // namespace teatree
