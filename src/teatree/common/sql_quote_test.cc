#include "teatree/common/sql_quote.h"

#include <gtest/gtest.h>

namespace teatree {

TEST(SqlQuoteTest, DoublesEmbeddedQuotes) {
  EXPECT_EQ(SqlStringLiteral("it's"), "'it''s'");
  EXPECT_EQ(SqlStringLiteral(""), "''");
  EXPECT_EQ(SqlIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(SqlIdentifier("orders"), "\"orders\"");
}

}  // namespace teatree
