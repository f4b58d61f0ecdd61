#pragma once

#include <string>
#include <string_view>

namespace teatree {

/// `value` as a SQL string literal: wrapped in single quotes, inner quotes doubled.
std::string SqlStringLiteral(std::string_view value);
/// `name` as a SQL identifier: wrapped in double quotes, inner double quotes doubled.
std::string SqlIdentifier(std::string_view name);

}  // namespace teatree
