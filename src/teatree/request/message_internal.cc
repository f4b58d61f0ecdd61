#include "teatree/request/message_internal.h"

#include "teatree/common/json_text.h"

namespace teatree::request_internal {
namespace {

constexpr size_t kMaxShown = 80;

std::string Shorten(std::string text) {
  if (text.size() <= kMaxShown) return text;
  text.resize(kMaxShown);
  return text + "...";
}

}  // namespace

std::string Snippet(const nlohmann::json& value) { return Shorten(DumpJson(value)); }

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string_view JsonKind(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "binary data";
  }
}

}  // namespace teatree::request_internal
