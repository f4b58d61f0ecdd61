#pragma once

#include <cstdint>
#include <string_view>

namespace teatree::request_internal {

/// Parses "YYYY-MM-DD" (years 0001-9999) into days since 1970-01-01.
bool ParseDate(std::string_view text, int32_t* days);

/// Whether a timestamp's text must carry a zone offset (TIMESTAMPTZ) or must not (TIMESTAMP).
enum class ZoneOffset { kForbidden, kRequired };

/// Parses "YYYY-MM-DD HH:MM:SS[.ffffff]" ('T' may replace the space) into microseconds since
/// the epoch. With kRequired the text ends in "Z", "+hh", "+hh:mm" or "+hhmm" (or '-') and
/// the result is UTC; with kForbidden it has no offset.
bool ParseTimestamp(std::string_view text, ZoneOffset zone, int64_t* micros);

/// How each temporal type is written in JSON, for error messages.
inline constexpr std::string_view kDateFormat = "\"YYYY-MM-DD\"";
inline constexpr std::string_view kTimestampFormat = "\"YYYY-MM-DD HH:MM:SS[.ffffff]\"";
inline constexpr std::string_view kTimestampTzFormat =
    "\"YYYY-MM-DD HH:MM:SS[.ffffff]\" ending in Z or +hh:mm";

}  // namespace teatree::request_internal
