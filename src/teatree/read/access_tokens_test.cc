#include "teatree/read/access_tokens.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(AccessTokensTest, GrantsRightsOnModels) {
  auto tokens = AccessTokens::Parse(
                    "# token rights models\n"
                    "  analyst   read         sales,inventory\n"
                    "loader read,submit sales\n"
                    "\n"
                    "ops admin *\n"
                    "legacy\n",
                    "tokens")
                    .ValueOrDie();
  EXPECT_EQ(tokens->Check("Bearer analyst", Access::kRead, "sales"), Verdict::kAllowed);
  EXPECT_EQ(tokens->Check("Bearer analyst", Access::kRead, "inventory"), Verdict::kAllowed);
  EXPECT_EQ(tokens->Check("Bearer analyst", Access::kRead, "other"), Verdict::kForbidden);
  EXPECT_EQ(tokens->Check("Bearer analyst", Access::kSubmit, "sales"), Verdict::kForbidden);
  EXPECT_EQ(tokens->Check("Bearer loader", Access::kSubmit, "sales"), Verdict::kAllowed);
  EXPECT_EQ(tokens->Check("Bearer loader", Access::kAdmin, "sales"), Verdict::kForbidden);
  EXPECT_EQ(tokens->Check("Bearer loader", Access::kRead, ""), Verdict::kForbidden);
  EXPECT_EQ(tokens->Check("Bearer ops", Access::kAdmin, ""), Verdict::kAllowed);
  EXPECT_EQ(tokens->Check("Bearer ops", Access::kSubmit, "anything"), Verdict::kAllowed);
  EXPECT_EQ(tokens->Check("Bearer legacy", Access::kAdmin, ""), Verdict::kAllowed);
  for (const char* wrong :
       {"Bearer", "Bearer ", "Bearer analys", "Bearer analyst2", "analyst", "Basic analyst", ""}) {
    EXPECT_EQ(tokens->Check(wrong, Access::kRead, "sales"), Verdict::kUnauthenticated) << wrong;
    EXPECT_FALSE(tokens->Accepts(wrong)) << wrong;
  }
}

TEST(AccessTokensTest, AMalformedFileSaysWhichLineAndWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "holds no token"},
      {"# only a comment\n", "holds no token"},
      {"t write sales\n", "line 1: unknown right \"write\""},
      {"a\nt read\n", "line 2: no models after the rights"},
      {"t read Sales/x\n", "model name"},
      {"t read sales extra\n", "more than three fields"},
  };
  for (const auto& [text, expected] : cases) {
    auto tokens = AccessTokens::Parse(text, "tokens");
    ASSERT_FALSE(tokens.ok()) << text;
    EXPECT_NE(tokens.status().message().find(expected), std::string::npos)
        << text << ": " << tokens.status().message();
  }
}

}  // namespace
}  // namespace teatree
