#include "teatree/request/message_internal.h"

namespace teatree::request_internal {
namespace {

constexpr size_t kMaxShown = 80;

std::string Shorten(std::string text) {
  if (text.size() <= kMaxShown) return text;
  text.resize(kMaxShown);
  return text + "...";
}

}  // namespace

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Quoted(std::string_view text) {
  const bool long_text = text.size() > kMaxShown;
  std::string shown = DumpJson(nlohmann::json(std::string(text.substr(0, kMaxShown))));
  if (long_text) shown += "...";
  return shown;
}

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
