#include "teatree/request/column_type.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

namespace teatree {
namespace {

using Kind = ColumnType::Kind;

std::string Parsed(std::string_view text) {
  auto type = ParseColumnType(text);
  return type.ok() ? type->ToString() : "error: " + type.status().message();
}

TEST(ColumnTypeTest, ParsesEveryTypeCaseInsensitively) {
  const std::pair<const char*, const char*> cases[] = {
      {"BOOLEAN", "BOOLEAN"},
      {"integer", "INTEGER"},
      {"BigInt", "BIGINT"},
      {"double", "DOUBLE"},
      {"DECIMAL(10,2)", "DECIMAL(10,2)"},
      {" decimal ( 38 , 0 ) ", "DECIMAL(38,0)"},
      {"varchar", "VARCHAR"},
      {"BLOB", "BLOB"},
      {"date", "DATE"},
      {"timestamp", "TIMESTAMP"},
      {"TimestampTZ", "TIMESTAMPTZ"},
  };
  for (const auto& [text, expected] : cases) EXPECT_EQ(Parsed(text), expected) << text;
}

TEST(ColumnTypeTest, ParsesListsInBothSpellingsAndNested) {
  EXPECT_EQ(Parsed("LIST(INTEGER)"), "INTEGER[]");
  EXPECT_EQ(Parsed("varchar[]"), "VARCHAR[]");
  EXPECT_EQ(Parsed("list ( date )"), "DATE[]");
  EXPECT_EQ(Parsed("LIST(DECIMAL(10,2))[]"), "DECIMAL(10,2)[][]");
  EXPECT_EQ(Parsed("LIST(LIST(BIGINT))"), "BIGINT[][]");
  EXPECT_EQ(Parsed("timestamptz [ ] [ ]"), "TIMESTAMPTZ[][]");
  auto type = ParseColumnType("LIST(VARCHAR[])");
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(type->kind, Kind::kList);
  EXPECT_EQ(type->element->kind, Kind::kList);
  EXPECT_EQ(type->element->element->kind, Kind::kVarchar);
}

TEST(ColumnTypeTest, DecimalDefaultsFollowDuckDB) {
  EXPECT_EQ(Parsed("DECIMAL"), "DECIMAL(18,3)");
  EXPECT_EQ(Parsed("decimal(5)"), "DECIMAL(5,0)");
  EXPECT_EQ(Parsed("DECIMAL(1,1)"), "DECIMAL(1,1)");
}

TEST(ColumnTypeTest, RefusesDecimalsOutOfRange) {
  for (const char* text : {"DECIMAL(0,0)", "DECIMAL(39,0)", "DECIMAL(5,6)", "DECIMAL(99999,1)"}) {
    EXPECT_NE(Parsed(text).find("needs a precision p from 1 to 38 and a scale s from 0 to p"),
              std::string::npos)
        << text << ": " << Parsed(text);
  }
  for (const char* text : {"DECIMAL(-1,0)", "DECIMAL(10,)", "DECIMAL(10,2", "DECIMAL()"}) {
    EXPECT_NE(Parsed(text).find("unknown column type"), std::string::npos) << text;
  }
}

TEST(ColumnTypeTest, UnknownTypeListsTheValidOnes) {
  EXPECT_EQ(Parsed("TEXT"),
            "error: unknown column type \"TEXT\": use BOOLEAN, INTEGER, BIGINT, DOUBLE, "
            "DECIMAL(p,s), VARCHAR, BLOB, DATE, TIMESTAMP, TIMESTAMPTZ, or a list of one of "
            "these written LIST(T) or T[]");
  for (const char* text : {"", "INTEGER X", "INTEGER[", "LIST(INTEGER", "[]", "LIST()", "INT",
                           "STRUCT(a INTEGER)", "INTEGER[3]", "VARCHAR; DROP TABLE x"}) {
    EXPECT_NE(Parsed(text).find("error: unknown column type"), std::string::npos) << text;
  }
}

TEST(ColumnTypeTest, RefusesListsNestedTooDeeply) {
  EXPECT_EQ(Parsed("INTEGER[][][][][][][][]"), "INTEGER[][][][][][][][]");
  EXPECT_NE(Parsed("INTEGER[][][][][][][][][]").find("nested too deeply"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "LIST(";
  EXPECT_NE(Parsed(deep).find("nested too deeply"), std::string::npos);
}

TEST(ColumnTypeTest, ToArrowMapsEachType) {
  const std::pair<const char*, const char*> cases[] = {
      {"BOOLEAN", "bool"},
      {"INTEGER", "int32"},
      {"BIGINT", "int64"},
      {"DOUBLE", "double"},
      {"DECIMAL(10,2)", "decimal128(10, 2)"},
      {"VARCHAR", "string"},
      {"BLOB", "binary"},
      {"DATE", "date32[day]"},
      {"TIMESTAMP", "timestamp[us]"},
      {"TIMESTAMPTZ", "timestamp[us, tz=UTC]"},
      {"INTEGER[]", "list<item: int32>"},
      {"VARCHAR[][]", "list<item: list<item: string>>"},
  };
  for (const auto& [text, arrow_type] : cases) {
    auto type = ParseColumnType(text);
    ASSERT_TRUE(type.ok()) << text;
    EXPECT_EQ(type->ToArrow()->ToString(), arrow_type) << text;
    auto back = ColumnTypeFromArrow(*type->ToArrow());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, *type) << text;
  }
}

TEST(ColumnTypeTest, FromArrowAcceptsOtherTimeZonesAndListChildNames) {
  auto tz = ColumnTypeFromArrow(*arrow::timestamp(arrow::TimeUnit::MICRO, "Europe/Paris"));
  ASSERT_TRUE(tz.ok());
  EXPECT_EQ(tz->kind, Kind::kTimestampTz);
  // DuckDB names a list's child "l".
  auto list = ColumnTypeFromArrow(*arrow::list(arrow::field("l", arrow::utf8())));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->ToString(), "VARCHAR[]");
}

TEST(ColumnTypeTest, FromArrowRefusesUnsupportedTypes) {
  for (const auto& type :
       {arrow::int8(), arrow::float32(), arrow::large_utf8(), arrow::uint64(),
        arrow::timestamp(arrow::TimeUnit::NANO), arrow::dictionary(arrow::int32(), arrow::utf8()),
        arrow::struct_({arrow::field("a", arrow::int32())}), arrow::list(arrow::int8())}) {
    auto result = ColumnTypeFromArrow(*type);
    ASSERT_FALSE(result.ok()) << type->ToString();
    EXPECT_NE(result.status().message().find("is not supported"), std::string::npos);
    EXPECT_NE(result.status().message().find("use boolean, int32"), std::string::npos);
  }
  auto nanos = ColumnTypeFromArrow(*arrow::timestamp(arrow::TimeUnit::NANO));
  EXPECT_NE(nanos.status().message().find("microseconds"), std::string::npos);
}

TEST(ColumnTypeTest, EqualityComparesParametersAndElements) {
  EXPECT_EQ(ColumnType::Decimal(10, 2), ColumnType::Decimal(10, 2));
  EXPECT_FALSE(ColumnType::Decimal(10, 2) == ColumnType::Decimal(10, 3));
  EXPECT_FALSE(ColumnType::Decimal(10, 2) == ColumnType::Decimal(11, 2));
  EXPECT_EQ(ColumnType::List(ColumnType::Of(Kind::kDate)),
            ColumnType::List(ColumnType::Of(Kind::kDate)));
  EXPECT_FALSE(ColumnType::List(ColumnType::Of(Kind::kDate)) ==
               ColumnType::List(ColumnType::Of(Kind::kTimestamp)));
  EXPECT_FALSE(ColumnType::Of(Kind::kTimestamp) == ColumnType::Of(Kind::kTimestampTz));
}

TEST(ColumnTypeTest, ClassifiesNumericAndTemporal) {
  for (Kind kind : {Kind::kInteger, Kind::kBigint, Kind::kDouble, Kind::kDecimal}) {
    EXPECT_TRUE(ColumnType::Of(kind).is_numeric());
    EXPECT_FALSE(ColumnType::Of(kind).is_temporal());
  }
  for (Kind kind : {Kind::kDate, Kind::kTimestamp, Kind::kTimestampTz}) {
    EXPECT_TRUE(ColumnType::Of(kind).is_temporal());
    EXPECT_FALSE(ColumnType::Of(kind).is_numeric());
  }
  for (Kind kind : {Kind::kBoolean, Kind::kVarchar, Kind::kBlob}) {
    EXPECT_FALSE(ColumnType::Of(kind).is_numeric() || ColumnType::Of(kind).is_temporal());
  }
  EXPECT_FALSE(ColumnType::List(ColumnType::Of(Kind::kInteger)).is_numeric());
}

}  // namespace
}  // namespace teatree
