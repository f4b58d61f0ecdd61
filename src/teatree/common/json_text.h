#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// Bounds on JSON text that comes from outside the process.
struct JsonLimits {
  /// Longer text is refused before it is parsed.
  size_t max_bytes = size_t{64} << 20;
  /// Deeper nesting of arrays and objects is refused before it is parsed: nlohmann's copy,
  /// dump and comparison recurse once per level, so depth is what exhausts a stack.
  int max_depth = 256;
};

/// Parses JSON text from a client, a message, a file or a flag: the one way untrusted JSON
/// is read. Size and depth are checked first, in one pass that allocates nothing; the parser
/// then refuses invalid UTF-8 in strings. `what` names the text in messages ("the request",
/// "the body"). Never throws; the message of a refusal is valid UTF-8 and quotes at most a
/// few bytes of the input.
Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what,
                                 const JsonLimits& limits = {});

/// `value` as JSON text (`indent` < 0: compact). Never throws: strings that are not valid
/// UTF-8 have the bad bytes replaced by U+FFFD.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

/// `text` as a double-quoted, JSON-escaped string for an error message, shortened when long,
/// so that hostile input (control characters, invalid UTF-8, megabytes of text) cannot garble
/// a message.
std::string Quoted(std::string_view text);

/// `text` with every byte sequence that is not valid UTF-8 replaced by U+FFFD, so that it
/// can go into a JSON document, a log line or an error message.
std::string ValidUtf8(std::string_view text);

}  // namespace teatree
