#include "teatree/request/column_change.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

using nlohmann::json;

TableSchema Orders() {
  return TableSchema::FromJson("orders", json::parse(R"j([{"name":"id","type":"BIGINT"},
      {"name":"qty","type":"INTEGER"},{"name":"price","type":"DECIMAL(12,2)"},
      {"name":"region","type":"VARCHAR"}])j"),
                               json::array({"id"}))
      .ValueOrDie();
}

std::vector<ColumnChange> Changes(std::string_view text) {
  return ColumnChangesFromJson("orders", json::parse(text)).ValueOrDie();
}

/// The schema after `changes` as "name TYPE, ...; key", or the error.
std::string Altered(std::string_view changes) {
  auto altered = AlterSchema(Orders(), Changes(changes));
  if (!altered.ok()) return altered.status().message();
  std::string text;
  for (const auto& column : altered->columns) {
    text += (text.empty() ? "" : ", ") + column.name + " " + column.type.ToString();
  }
  std::string key;
  for (const auto& column : altered->primary_key) key += (key.empty() ? "" : ", ") + column;
  return text + "; " + key;
}

bool Widens(std::string_view from, std::string_view to) {
  return IsWidening(ParseColumnType(from).ValueOrDie(), ParseColumnType(to).ValueOrDie());
}

TEST(ColumnChangeTest, AppliesEachKindInOrder) {
  EXPECT_EQ(Altered(R"j([{"add_column":"note","type":"varchar"}])j"),
            "id BIGINT, qty INTEGER, price DECIMAL(12,2), region VARCHAR, note VARCHAR; id");
  EXPECT_EQ(Altered(R"j([{"drop_column":"region"}])j"),
            "id BIGINT, qty INTEGER, price DECIMAL(12,2); id");
  EXPECT_EQ(Altered(R"j([{"rename_column":"qty","to":"quantity"}])j"),
            "id BIGINT, quantity INTEGER, price DECIMAL(12,2), region VARCHAR; id");
  EXPECT_EQ(Altered(R"j([{"alter_column":"qty","type":"BIGINT"}])j"),
            "id BIGINT, qty BIGINT, price DECIMAL(12,2), region VARCHAR; id");
  // A later change sees the earlier ones: a column added, then renamed and widened; a column
  // dropped, then added again under its name (its values gone).
  EXPECT_EQ(Altered(R"j([{"add_column":"n","type":"INTEGER"},{"rename_column":"n","to":"m"},
                        {"alter_column":"m","type":"DOUBLE"},{"drop_column":"region"},
                        {"add_column":"region","type":"DATE"}])j"),
            "id BIGINT, qty INTEGER, price DECIMAL(12,2), m DOUBLE, region DATE; id");
}

TEST(ColumnChangeTest, RenamingAKeyColumnRenamesTheKey) {
  EXPECT_EQ(Altered(R"j([{"rename_column":"id","to":"order_id"}])j"),
            "order_id BIGINT, qty INTEGER, price DECIMAL(12,2), region VARCHAR; order_id");
}

TEST(ColumnChangeTest, RefusesWhatTheTableDoesNotAllow) {
  EXPECT_EQ(Altered(R"j([{"drop_column":"nope"}])j"),
            "alter_table orders, change 1 of 1: drop_column: table orders has no column \"nope\" "
            "(its columns: id, qty, price, region)");
  EXPECT_EQ(Altered(R"j([{"rename_column":"nope","to":"x"}])j"),
            "alter_table orders, change 1 of 1: rename_column: table orders has no column "
            "\"nope\" (its columns: id, qty, price, region)");
  EXPECT_EQ(Altered(R"j([{"alter_column":"nope","type":"BIGINT"}])j"),
            "alter_table orders, change 1 of 1: alter_column: table orders has no column \"nope\" "
            "(its columns: id, qty, price, region)");
  EXPECT_EQ(Altered(R"j([{"add_column":"qty","type":"BIGINT"}])j"),
            "alter_table orders, change 1 of 1: add_column: table orders already has a column "
            "\"qty\": choose another name, or drop that column first");
  EXPECT_EQ(Altered(R"j([{"rename_column":"qty","to":"price"}])j"),
            "alter_table orders, change 1 of 1: rename_column: table orders already has a column "
            "\"price\": choose another name, or drop that column first");
  EXPECT_EQ(Altered(R"j([{"drop_column":"id"}])j"),
            "alter_table orders, change 1 of 1: drop_column: \"id\" is part of the primary key "
            "of table orders and cannot be dropped; create a new table to change the key");
  EXPECT_EQ(Altered(R"j([{"alter_column":"id","type":"DECIMAL(30,0)"}])j"),
            "alter_table orders, change 1 of 1: alter_column: \"id\" is part of the primary key "
            "of table orders and its type cannot change; create a new table to change the key");
  EXPECT_EQ(Altered(R"j([{"alter_column":"qty","type":"INTEGER"}])j"),
            "alter_table orders, change 1 of 1: alter_column: column \"qty\" of table orders is "
            "INTEGER already");
  // The whole request fails on its first bad change; the message says none was made.
  EXPECT_EQ(Altered(R"j([{"add_column":"note","type":"VARCHAR"},{"drop_column":"note"},
                        {"drop_column":"note"}])j"),
            "alter_table orders, change 3 of 3: drop_column: table orders has no column \"note\" "
            "(its columns: id, qty, price, region) (no change of this request was made)");
}

TEST(ColumnChangeTest, RefusesDroppingTheLastColumn) {
  TableSchema one =
      TableSchema::FromJson("t", json::parse(R"j([{"name":"x","type":"INTEGER"}])j"), nullptr)
          .ValueOrDie();
  auto dropped = AlterSchema(one, Changes(R"j([{"drop_column":"x"}])j"));
  EXPECT_EQ(dropped.status().message(),
            "alter_table t, change 1 of 1: drop_column: \"x\" is the last column of table t; use "
            "drop_table to drop the table");
  // Adding another first makes it possible.
  EXPECT_TRUE(
      AlterSchema(one, Changes(R"j([{"add_column":"y","type":"BLOB"},{"drop_column":"x"}])j"))
          .ok());
}

TEST(ColumnChangeTest, RefusesNarrowingNamingBothTypes) {
  const std::string error = Altered(R"j([{"alter_column":"price","type":"DECIMAL(12,1)"}])j");
  EXPECT_NE(error.find("column \"price\" of table orders cannot change from DECIMAL(12,2) to "
                       "DECIMAL(12,1): only widening changes"),
            std::string::npos)
      << error;
  EXPECT_NE(Altered(R"j([{"alter_column":"qty","type":"VARCHAR"}])j")
                .find("cannot change from INTEGER to VARCHAR"),
            std::string::npos);
}

TEST(ColumnChangeTest, WideningKeepsEveryValueExactly) {
  EXPECT_TRUE(Widens("INTEGER", "BIGINT"));
  EXPECT_TRUE(Widens("INTEGER", "DOUBLE"));
  EXPECT_TRUE(Widens("INTEGER", "DECIMAL(10,0)"));
  EXPECT_TRUE(Widens("INTEGER", "DECIMAL(12,2)"));
  EXPECT_TRUE(Widens("BIGINT", "DECIMAL(19,0)"));
  EXPECT_TRUE(Widens("BIGINT", "DECIMAL(38,19)"));
  EXPECT_TRUE(Widens("DECIMAL(12,2)", "DECIMAL(13,3)"));
  EXPECT_TRUE(Widens("DECIMAL(12,2)", "DECIMAL(18,2)"));
  EXPECT_FALSE(Widens("DECIMAL(5,0)", "INTEGER[]"));
  EXPECT_TRUE(Widens("INTEGER[]", "BIGINT[]"));
  EXPECT_TRUE(Widens("INTEGER[][]", "DECIMAL(20,2)[][]"));

  EXPECT_FALSE(Widens("BIGINT", "INTEGER"));
  EXPECT_FALSE(Widens("BIGINT", "DOUBLE"));  // Above 2^53 a DOUBLE rounds.
  EXPECT_FALSE(Widens("INTEGER", "DECIMAL(9,0)"));
  EXPECT_FALSE(Widens("INTEGER", "DECIMAL(12,3)"));
  EXPECT_FALSE(Widens("BIGINT", "DECIMAL(20,2)"));
  EXPECT_FALSE(Widens("DECIMAL(12,2)", "DECIMAL(12,3)"));  // One digit less before the point.
  EXPECT_FALSE(Widens("DECIMAL(12,2)", "DECIMAL(14,1)"));  // One less after it.
  EXPECT_FALSE(Widens("DECIMAL(12,2)", "DOUBLE"));
  EXPECT_FALSE(Widens("DECIMAL(12,0)", "BIGINT"));
  EXPECT_FALSE(Widens("DOUBLE", "DECIMAL(38,10)"));
  EXPECT_FALSE(Widens("INTEGER", "VARCHAR"));
  EXPECT_FALSE(Widens("DATE", "TIMESTAMP"));
  EXPECT_FALSE(Widens("TIMESTAMP", "TIMESTAMPTZ"));
  EXPECT_FALSE(Widens("INTEGER", "INTEGER[]"));
  EXPECT_FALSE(Widens("BIGINT[]", "INTEGER[]"));
  EXPECT_FALSE(Widens("INTEGER", "INTEGER"));
}

TEST(ColumnChangeTest, OriginsFollowRenamesDropsAndAdds) {
  const auto changes = Changes(R"j([{"rename_column":"qty","to":"n"},{"drop_column":"region"},
      {"add_column":"region","type":"INTEGER"},{"rename_column":"price","to":"qty"},
      {"alter_column":"n","type":"BIGINT"}])j");
  EXPECT_EQ(Altered(R"j([{"rename_column":"qty","to":"n"},{"drop_column":"region"},
      {"add_column":"region","type":"INTEGER"},{"rename_column":"price","to":"qty"},
      {"alter_column":"n","type":"BIGINT"}])j"),
            "id BIGINT, n BIGINT, qty DECIMAL(12,2), region INTEGER; id");
  EXPECT_EQ(ColumnOrigins(Orders(), changes), (std::vector<std::string>{"id", "qty", "price", ""}));
}

TEST(ColumnChangeTest, EncodesTheFormsItReads) {
  const json text = json::parse(R"j([{"add_column":"note","type":"VARCHAR"},{"drop_column":"a"},
      {"rename_column":"b","to":"c"},{"alter_column":"d","type":"DECIMAL(12,2)"}])j");
  json encoded = json::array();
  for (const auto& change : Changes(text.dump())) encoded.push_back(change.ToJson());
  EXPECT_EQ(encoded, text);
}

}  // namespace
}  // namespace teatree
