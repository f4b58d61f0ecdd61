#include "teatree/common/json_text.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(JsonTextTest, ParsesWhatIsWithinTheLimits) {
  auto parsed = ParseJson(R"({"a": [1, {"b": "é"}]})", "the body");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ((*parsed)["a"][1]["b"], "é");
}

TEST(JsonTextTest, DeepNestingIsRefusedBeforeParsing) {
  // 200,000 levels: parsed and then copied or dumped, this would exhaust the stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto parsed = ParseJson(deep, "the body");
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(parsed.status().IsInvalid());
  EXPECT_NE(parsed.status().message().find("more than 256 levels deep"), std::string::npos)
      << parsed.status().message();
  // Brackets inside strings are text, not nesting.
  const std::string quoted = "[\"" + std::string(1000, '[') + "\"]";
  EXPECT_TRUE(ParseJson(quoted, "the body").ok());
  EXPECT_TRUE(ParseJson(std::string(5, '[') + std::string(5, ']'), "x", {.max_depth = 5}).ok());
  EXPECT_FALSE(ParseJson(std::string(6, '[') + std::string(6, ']'), "x", {.max_depth = 5}).ok());
}

TEST(JsonTextTest, LongTextIsRefusedBeforeParsing) {
  auto parsed = ParseJson(std::string(2000, ' ') + "1", "the body", {.max_bytes = 1000});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "the body is 2001 bytes, more than the limit of 1000 bytes");
}

TEST(JsonTextTest, InvalidUtf8AndSyntaxErrorsGetAPrintableMessage) {
  for (const std::string& text :
       {std::string("{\"a\": \"\xff\xfe\"}"), std::string("{\"a\xc0\": 1}"), std::string("\xff"),
        std::string("{\"a\": tru\xe2}")}) {
    auto parsed = ParseJson(text, "the request");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_NE(parsed.status().message().find("the request is not valid JSON"), std::string::npos);
    // The message itself goes into JSON documents: it must be valid UTF-8.
    EXPECT_EQ(ValidUtf8(parsed.status().message()), parsed.status().message());
    EXPECT_NO_THROW(DumpJson(nlohmann::json{{"error", parsed.status().message()}}));
  }
}

TEST(JsonTextTest, DumpNeverThrowsAndValidUtf8ReplacesOnlyBadBytes) {
  nlohmann::json value{{"text", std::string("ok \xff then \xc3\xa9")}};
  std::string dumped;
  EXPECT_NO_THROW(dumped = DumpJson(value));
  EXPECT_EQ(dumped, "{\"text\":\"ok \xef\xbf\xbd then \xc3\xa9\"}");
  EXPECT_EQ(ValidUtf8("plain"), "plain");
  EXPECT_EQ(ValidUtf8("\xe2\x82\xac"), "\xe2\x82\xac");          // A whole 3-byte sequence.
  EXPECT_EQ(ValidUtf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");  // Cut short.
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // A surrogate.
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // Overlong.
  EXPECT_EQ(Quoted(std::string(100, 'a')), "\"" + std::string(80, 'a') + "\"...");
}

}  // namespace
}  // namespace teatree
