#include "teatree/common/sql_quote.h"

namespace teatree {
namespace {

std::string Quote(std::string_view text, char quote) {
  std::string out(1, quote);
  for (char c : text) {
    out += c;
    if (c == quote) out += quote;
  }
  out += quote;
  return out;
}

}  // namespace

std::string SqlStringLiteral(std::string_view value) { return Quote(value, '\''); }
std::string SqlIdentifier(std::string_view name) { return Quote(name, '"'); }

}  // namespace teatree
