#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace teatree::request_internal {

/// `text` as a double-quoted, JSON-escaped string for an error message, shortened when long,
/// so that hostile input (control characters, megabytes of text) cannot garble a message.
std::string Quoted(std::string_view text);

/// `value` as compact JSON for an error message, shortened when long. Never throws.
std::string Snippet(const nlohmann::json& value);

/// `value` as compact JSON. Never throws: invalid UTF-8 is replaced by U+FFFD.
std::string DumpJson(const nlohmann::json& value);

/// "a, b, c".
std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ");

/// What a JSON value is, for messages: "a string", "an array", ...
std::string_view JsonKind(const nlohmann::json& value);

}  // namespace teatree::request_internal
