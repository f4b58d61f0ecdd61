#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// The longest ticket a read server reads (its SQL included).
inline constexpr size_t kMaxTicketBytes = size_t{1} << 20;

/// What a read asks for, as clients send it in a Flight ticket or an HTTP body:
/// {"model":"sales","sql":"SELECT …","at_version":12} or
/// {"model":"sales","function":"top_n","args":{…}}.
struct ReadTicket {
  std::string model;
  std::string sql;
  std::string function;
  nlohmann::json args = nlohmann::json::object();
  /// A retained version to read; none: the newest the server has (live in a manager).
  std::optional<int64_t> at_version;

  /// Parses and checks a ticket; errors say which field is wrong and how to write it.
  static Result<ReadTicket> Parse(std::string_view json);
  std::string ToJson() const;
};

}  // namespace teatree
