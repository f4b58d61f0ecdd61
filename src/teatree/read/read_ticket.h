#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// The longest ticket a read server reads (its SQL included).
inline constexpr size_t kMaxTicketBytes = size_t{1} << 20;

/// How long a read with a min_version waits for that version when it does not say (wait_ms),
/// and the longest it may ask for: a waiting read holds a server thread (an HTTP connection's,
/// a gRPC worker), so no client may hold one longer.
inline constexpr std::chrono::milliseconds kDefaultVersionWait = std::chrono::seconds(10);
inline constexpr std::chrono::milliseconds kMaxVersionWait = std::chrono::seconds(30);

/// Read your writes: the version a read must see at least, and how long the server may wait
/// for it before failing (kUnavailable, naming the newest version it has).
struct VersionWanted {
  int64_t min_version = 0;
  std::chrono::milliseconds wait = kDefaultVersionWait;
};

/// Parses "min_version" and "wait_ms" (from a ticket, an action body or HTTP query
/// parameters already turned into JSON numbers) into `wanted`; `json` may hold other fields.
/// Errors name the field and the range.
Status ParseVersionWanted(const nlohmann::json& json, std::optional<VersionWanted>& wanted);

/// What a read asks for, as clients send it in a Flight ticket or an HTTP body:
/// {"model":"sales","sql":"SELECT …","at_version":12} or
/// {"model":"sales","function":"top_n","args":{…}}; "min_version":N (and "wait_ms") makes the
/// server wait until it serves version N or newer (read your writes).
struct ReadTicket {
  std::string model;
  std::string sql;
  std::string function;
  nlohmann::json args = nlohmann::json::object();
  /// A retained version to read; none: the newest the server has (live in a manager).
  std::optional<int64_t> at_version;
  /// Wait until the version read is this one or newer (at most `wait`): the version in a
  /// write's outcome, so that the read sees the write.
  std::optional<VersionWanted> min_version;

  /// Parses and checks a ticket; errors say which field is wrong and how to write it.
  static Result<ReadTicket> Parse(std::string_view json);
  std::string ToJson() const;
};

}  // namespace teatree
