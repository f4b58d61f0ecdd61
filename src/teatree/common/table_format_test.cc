#include "teatree/common/table_format.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

namespace teatree {

TEST(TableFormatTest, AlignsColumnsAndShowsNulls) {
  arrow::StringBuilder names;
  arrow::Int64Builder counts;
  ASSERT_TRUE(names.Append("eu").ok());
  ASSERT_TRUE(names.Append("latam").ok());
  ASSERT_TRUE(counts.Append(7).ok());
  ASSERT_TRUE(counts.AppendNull().ok());
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("region", arrow::utf8()), arrow::field("n", arrow::int64())}),
      {names.Finish().ValueOrDie(), counts.Finish().ValueOrDie()});
  auto text = FormatTable(*table);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "region     n\n"
            "------  ----\n"
            "eu         7\n"
            "latam   NULL\n"
            "(2 rows)\n");
}

TEST(TableFormatTest, SummarizesRowsBeyondTheLimit) {
  arrow::Int64Builder values;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(values.Append(i).ok());
  auto table = arrow::Table::Make(arrow::schema({arrow::field("v", arrow::int64())}),
                                  {values.Finish().ValueOrDie()});
  auto text = FormatTable(*table, 2);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("... 3 more rows\n(5 rows)"), std::string::npos);
}

}  // namespace teatree
