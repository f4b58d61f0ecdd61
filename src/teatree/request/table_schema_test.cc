#include "teatree/request/table_schema.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

namespace teatree {
namespace {

using nlohmann::json;

const json kOrders = json::parse(R"([{"name":"id","type":"BIGINT"},
    {"name":"amount","type":"DOUBLE"},{"name":"region","type":"VARCHAR"}])");

std::string Error(const json& schema, const json& key = json::array({"id"}),
                  std::string_view table = "orders") {
  auto result = TableSchema::FromJson(table, schema, key);
  return result.ok() ? "ok" : result.status().message();
}

TEST(TableSchemaTest, BuildsTheOrdersTable) {
  auto schema = TableSchema::FromJson("orders", kOrders, json::array({"id"}));
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(schema->name, "orders");
  ASSERT_EQ(schema->columns.size(), 3u);
  EXPECT_EQ(schema->columns[1].name, "amount");
  EXPECT_EQ(schema->columns[1].type.ToString(), "DOUBLE");
  EXPECT_EQ(schema->primary_key, std::vector<std::string>{"id"});
  EXPECT_TRUE(schema->IsKey("id"));
  EXPECT_FALSE(schema->IsKey("amount"));
  ASSERT_NE(schema->FindColumn("region"), nullptr);
  EXPECT_EQ(schema->FindColumn("region")->type.kind, ColumnType::Kind::kVarchar);
  EXPECT_EQ(schema->FindColumn("nope"), nullptr);
  EXPECT_EQ(schema->ColumnNames(), "id, amount, region");
}

TEST(TableSchemaTest, ToArrowMakesKeyColumnsNonNullable) {
  auto schema = TableSchema::FromJson("orders", kOrders, json::array({"id"}));
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->ToArrow()->ToString(), "id: int64 not null\namount: double\nregion: string");
}

TEST(TableSchemaTest, ToJsonRoundTrips) {
  json columns = json::parse(R"j([{"name":"id","type":"bigint"},{"name":"d","type":"DECIMAL"},
      {"name":"tags","type":"LIST(VARCHAR)"}])j");
  auto schema = TableSchema::FromJson("t", columns, json::array({"id"}));
  ASSERT_TRUE(schema.ok());
  json out = schema->ToJson();
  EXPECT_EQ(out.dump(),
            R"({"primary_key":["id"],"schema":[{"name":"id","type":"BIGINT"},)"
            R"j({"name":"d","type":"DECIMAL(18,3)"},{"name":"tags","type":"VARCHAR[]"}]})j");
  auto again = TableSchema::FromJson("t", out["schema"], out["primary_key"]);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *schema);
}

TEST(TableSchemaTest, NoKeyIsAllowed) {
  auto schema = TableSchema::FromJson("events", kOrders, json());
  ASSERT_TRUE(schema.ok());
  EXPECT_TRUE(schema->primary_key.empty());
  EXPECT_TRUE(schema->ToArrow()->field(0)->nullable());
}

TEST(TableSchemaTest, RefusesBadSchemas) {
  EXPECT_NE(Error(json::array()).find("must be a non-empty array"), std::string::npos);
  EXPECT_NE(Error(json::object()).find("must be a non-empty array"), std::string::npos);
  EXPECT_NE(Error(json::parse(R"(["id"])")).find("schema entry 1 of table orders is \"id\""),
            std::string::npos);
  EXPECT_NE(
      Error(json::parse(R"([{"name":"id","type":"BIGINT","null":false}])")).find("schema entry 1"),
      std::string::npos);
  EXPECT_NE(Error(json::parse(R"([{"name":"id","type":5}])")).find("schema entry 1"),
            std::string::npos);
  EXPECT_EQ(Error(json::parse(R"([{"name":"Id","type":"BIGINT"}])")),
            "column name \"Id\" is invalid: use lowercase letters, digits and _ (start with a "
            "letter, at most 63 characters)");
  EXPECT_EQ(Error(json::parse(R"([{"name":"id","type":"BIGINT"},{"name":"id","type":"DATE"}])")),
            "column \"id\" appears twice in table orders: column names must be unique");
  EXPECT_NE(Error(json::parse(R"([{"name":"id","type":"TEXT"}])"))
                .find("column \"id\" of table orders: unknown column type \"TEXT\""),
            std::string::npos);
  EXPECT_NE(Error(kOrders, json::array(), "Orders").find("table name \"Orders\" is invalid"),
            std::string::npos);
}

TEST(TableSchemaTest, RefusesBadKeys) {
  EXPECT_EQ(Error(kOrders, json::array({"idd"})),
            "primary key column \"idd\" is not a column of table orders (columns: id, amount, "
            "region)");
  EXPECT_NE(Error(kOrders, json::array({"id", "id"})).find("is listed twice"), std::string::npos);
  EXPECT_NE(Error(kOrders, "id").find("must be an array of column names"), std::string::npos);
  EXPECT_NE(Error(kOrders, json::array({1})).find("must be an array of column names"),
            std::string::npos);
  json with_list = json::parse(R"([{"name":"tags","type":"VARCHAR[]"}])");
  EXPECT_NE(Error(with_list, json::array({"tags"})).find("a LIST cannot be part of a key"),
            std::string::npos);
  auto composite = TableSchema::FromJson("orders", kOrders, json::array({"region", "id"}));
  ASSERT_TRUE(composite.ok());
  EXPECT_EQ(composite->primary_key, (std::vector<std::string>{"region", "id"}));
}

}  // namespace
}  // namespace teatree
