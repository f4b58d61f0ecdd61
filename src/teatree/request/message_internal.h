#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/json_text.h"

namespace teatree::request_internal {

using ::teatree::Quoted;

/// `value` as compact JSON for an error message, shortened when long. Never throws.
std::string Snippet(const nlohmann::json& value);

/// "a, b, c".
std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ");

/// What a JSON value is, for messages: "a string", "an array", ...
std::string_view JsonKind(const nlohmann::json& value);

}  // namespace teatree::request_internal
