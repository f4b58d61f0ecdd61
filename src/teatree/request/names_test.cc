#include "teatree/request/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace teatree {
namespace {

TEST(NamesTest, AcceptsLowercaseNamesUpTo63Characters) {
  for (const std::string& name :
       std::vector<std::string>{"a", "orders", "sales_2024", "x9", "a_", std::string(63, 'a')}) {
    EXPECT_TRUE(ValidateName("table", name).ok()) << name;
  }
}

TEST(NamesTest, RefusesEverythingElse) {
  for (const std::string& name :
       {std::string(), std::string(".."), std::string("a/b"), std::string("Sales"),
        std::string(64, 'a'), std::string("$x"), std::string("a.b"), std::string("*"),
        std::string("\"x\""), std::string("'x'"), std::string("a;b"), std::string("1abc"),
        std::string("_a"), std::string("a b"), std::string("caf\xc3\xa9"), std::string("a\0b", 3),
        std::string("a-b")}) {
    Status status = ValidateName("column", name);
    ASSERT_FALSE(status.ok()) << name;
    EXPECT_TRUE(status.IsInvalid());
    EXPECT_EQ(status.message().rfind("column name \"", 0), 0u) << status.message();
  }
}

TEST(NamesTest, ErrorNamesKindValueAndFix) {
  EXPECT_EQ(ValidateName("model", "Sales/2024").message(),
            "model name \"Sales/2024\" is invalid: use lowercase letters, digits and _ (start "
            "with a letter, at most 63 characters)");
  EXPECT_EQ(ValidateName("table", "").message().substr(0, 27), "table name \"\" is invalid: u");
}

TEST(NamesTest, ErrorEscapesAndShortensHostileNames) {
  Status status = ValidateName("model", std::string(10000, 'X'));
  EXPECT_LT(status.message().size(), 250u);
  EXPECT_NE(status.message().find("XXX\"..."), std::string::npos) << status.message();
  status = ValidateName("model", "a\"b\n");
  EXPECT_NE(status.message().find("\"a\\\"b\\n\""), std::string::npos) << status.message();
}

TEST(RequestIdTest, AcceptsClientChosenIds) {
  for (const std::string& id : std::vector<std::string>{
           "r1", "A-b_c.d:e", "0", std::string(128, 'z'), "2024-01-01T00:00:00.000Z"}) {
    EXPECT_TRUE(ValidateRequestId(id).ok()) << id;
  }
}

TEST(RequestIdTest, MissingIdSaysWhyItIsNeeded) {
  EXPECT_EQ(ValidateRequestId("").message(),
            "request is missing request_id: every request needs a client-chosen id so it is "
            "applied exactly once");
}

TEST(RequestIdTest, RefusesOtherCharactersAndLongIds) {
  for (const std::string& id :
       std::vector<std::string>{"a b", "a/b", "caf\xc3\xa9", "x\n", "a*", std::string(129, 'z')}) {
    Status status = ValidateRequestId(id);
    ASSERT_FALSE(status.ok()) << id;
    EXPECT_EQ(status.message().rfind("request_id \"", 0), 0u) << status.message();
    EXPECT_NE(status.message().find("1 to 128"), std::string::npos);
  }
}

}  // namespace
}  // namespace teatree
