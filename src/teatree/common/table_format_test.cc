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

namespace teatree {

/// id BIGINT, tags VARCHAR[] with `rows` rows split into batches of two.
std::shared_ptr<arrow::Table> Tagged(int rows) {
  arrow::Int64Builder ids;
  arrow::ListBuilder tags(arrow::default_memory_pool(), std::make_shared<arrow::StringBuilder>());
  auto& tag = static_cast<arrow::StringBuilder&>(*tags.value_builder());
  for (int i = 0; i < rows; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    EXPECT_TRUE(tags.Append().ok());
    EXPECT_TRUE(tag.Append("t" + std::to_string(i)).ok());
  }
  auto table = arrow::Table::Make(arrow::schema({arrow::field("id", arrow::int64()),
                                                 arrow::field("tags", arrow::list(arrow::utf8()))}),
                                  {ids.Finish().ValueOrDie(), tags.Finish().ValueOrDie()});
  arrow::TableBatchReader batches(*table);
  batches.set_chunksize(2);
  return arrow::Table::FromRecordBatches(table->schema(), batches.ToRecordBatches().ValueOrDie())
      .ValueOrDie();
}

TEST(ResultWriterTest, WritesJsonAndCsvAcrossBatchesAndForNoRows) {
  auto three = Tagged(3);
  EXPECT_EQ(WriteResult(*three, ResultFormat::kJson).ValueOrDie(),
            "[\n{\"id\":0,\"tags\":[\"t0\"]},\n{\"id\":1,\"tags\":[\"t1\"]},\n"
            "{\"id\":2,\"tags\":[\"t2\"]}\n]\n");
  EXPECT_EQ(WriteResult(*three, ResultFormat::kCsv).ValueOrDie(),
            "\"id\",\"tags\"\n0,\"[t0]\"\n1,\"[t1]\"\n2,\"[t2]\"\n");
  auto none = Tagged(0);
  EXPECT_EQ(WriteResult(*none, ResultFormat::kJson).ValueOrDie(), "[]\n");
  EXPECT_EQ(WriteResult(*none, ResultFormat::kCsv).ValueOrDie(), "\"id\",\"tags\"\n");
  EXPECT_NE(WriteResult(*none, ResultFormat::kArrow).ValueOrDie().size(), 0u);
  EXPECT_EQ(ParseResultFormat("xml").status().message(),
            "unknown result format \"xml\": use table, csv, json or arrow");
}

}  // namespace teatree
