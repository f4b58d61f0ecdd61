#include "teatree/common/json_text.h"

namespace teatree {
namespace {

using nlohmann::json;

/// The deepest nesting of arrays and objects in `text`, outside strings; stops counting
/// once past `limit`. Invalid JSON gets some answer: the parser refuses it afterwards.
Status CheckDepth(std::string_view text, std::string_view what, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        return Status::Invalid(what, " nests arrays and objects more than ", limit,
                               " levels deep (at byte ", i, "): flatten it");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::OK();
}

/// Keeps the first syntax error, with its position.
class FirstError : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    message_ = error.what();
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

std::string DescribeSyntaxError(std::string_view text) {
  FirstError sax;
  json::sax_parse(text, &sax);
  std::string message = sax.message();
  // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
  if (auto end = message.find("] "); message.rfind("[json.", 0) == 0 && end != std::string::npos) {
    message.erase(0, end + 2);
  }
  // The message quotes the bytes read last, which may be anything.
  constexpr size_t kMaxShown = 200;
  if (message.size() > kMaxShown) message = message.substr(0, kMaxShown) + "...";
  return message.empty() ? "syntax error" : ValidUtf8(message);
}

}  // namespace

Result<json> ParseJson(std::string_view text, std::string_view what, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::Invalid(what, " is ", text.size(), " bytes, more than the limit of ",
                           limits.max_bytes, " bytes");
  }
  ARROW_RETURN_NOT_OK(CheckDepth(text, what, limits.max_depth));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Status::Invalid(what, " is not valid JSON: ", DescribeSyntaxError(text));
  }
  return parsed;
}

std::string DumpJson(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string Quoted(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  std::string shown = DumpJson(json(std::string(text.substr(0, kMaxShown))));
  return text.size() > kMaxShown ? shown + "..." : shown;
}

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = bytes[i];
    // The length of the sequence `lead` starts and the range its second byte must be in
    // (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      const unsigned char next = bytes[i + k];
      valid = k == 1 ? next >= low && next <= high : next >= 0x80 && next <= 0xBF;
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the one bad byte; resynchronise after it.
      ++i;
    }
  }
  return out;
}

}  // namespace teatree
