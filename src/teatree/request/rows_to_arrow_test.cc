#include "teatree/request/rows_to_arrow.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <gtest/gtest.h>

namespace teatree {
namespace {

using nlohmann::json;

TableSchema Schema(std::string_view columns, const std::vector<std::string>& key = {"id"},
                   std::string_view table = "orders") {
  auto schema = TableSchema::FromJson(table, json::parse(columns), json(key));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return *schema;
}

TableSchema Orders() {
  return Schema(R"([{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},
                    {"name":"region","type":"VARCHAR"}])");
}

std::shared_ptr<arrow::RecordBatch> Convert(std::string_view rows, const TableSchema& schema) {
  auto batch = RowsToRecordBatch(json::parse(rows), schema);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  return batch.ok() ? *batch : nullptr;
}

std::string Error(std::string_view rows, const TableSchema& schema) {
  auto batch = RowsToRecordBatch(json::parse(rows), schema);
  return batch.ok() ? "ok" : batch.status().message();
}

std::string Cell(const arrow::RecordBatch& batch, int column, int64_t row) {
  auto scalar = batch.column(column)->GetScalar(row);
  EXPECT_TRUE(scalar.ok());
  return (*scalar)->is_valid ? (*scalar)->ToString() : "NULL";
}

TEST(RowsToArrowTest, ConvertsArrayRowsInColumnOrder) {
  auto batch = Convert(R"([[1,9.5,"eu"],[2,3,"us"]])", Orders());
  ASSERT_NE(batch, nullptr);
  EXPECT_TRUE(batch->schema()->Equals(*Orders().ToArrow()));
  EXPECT_EQ(batch->num_rows(), 2);
  EXPECT_EQ(batch->ToString(),
            "id:   [\n    1,\n    2\n  ]\namount:   [\n    9.5,\n    3\n  ]\nregion:   [\n"
            "    \"eu\",\n    \"us\"\n  ]\n");
  EXPECT_TRUE(batch->ValidateFull().ok());
}

TEST(RowsToArrowTest, ConvertsObjectRowsWithMissingKeysAsNull) {
  auto batch =
      Convert(R"([{"region":"us","id":2},{"id":3,"amount":null,"region":"eu"}])", Orders());
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(Cell(*batch, 0, 0), "2");
  EXPECT_EQ(Cell(*batch, 1, 0), "NULL");
  EXPECT_EQ(Cell(*batch, 2, 0), "us");
  EXPECT_EQ(Cell(*batch, 1, 1), "NULL");
  EXPECT_EQ(Cell(*batch, 2, 1), "eu");
}

TEST(RowsToArrowTest, ConvertsEveryType) {
  TableSchema schema = Schema(R"j([{"name":"id","type":"INTEGER"},{"name":"b","type":"BOOLEAN"},
      {"name":"big","type":"BIGINT"},{"name":"d","type":"DOUBLE"},
      {"name":"dec","type":"DECIMAL(10,2)"},{"name":"s","type":"VARCHAR"},
      {"name":"blob","type":"BLOB"},{"name":"day","type":"DATE"},
      {"name":"at","type":"TIMESTAMP"},{"name":"at_tz","type":"TIMESTAMPTZ"},
      {"name":"ints","type":"INTEGER[]"},{"name":"nested","type":"VARCHAR[][]"}])j");
  auto batch = Convert(R"([
      [1, true, 9223372036854775807, 2, "12.34", "héllo", "a\u0000b", "2024-01-02",
       "2024-01-02 03:04:05.123456", "2024-01-02T03:04:05+02:00", [1, null, 3], [["a"], [], null]],
      [2, false, -9223372036854775808, 1.5, 5, "", "", "1970-01-01",
       "2024-01-02T03:04:05", "2024-01-02 03:04:05.123456Z", [], [[null]]],
      [3, null, null, null, null, null, null, null, null, null, null, null]])",
                       schema);
  ASSERT_NE(batch, nullptr);
  ASSERT_TRUE(batch->ValidateFull().ok());
  EXPECT_TRUE(batch->schema()->Equals(*schema.ToArrow()));
  EXPECT_EQ(Cell(*batch, 1, 0), "true");
  EXPECT_EQ(Cell(*batch, 1, 1), "false");
  EXPECT_EQ(Cell(*batch, 2, 0), "9223372036854775807");
  EXPECT_EQ(Cell(*batch, 2, 1), "-9223372036854775808");
  EXPECT_EQ(Cell(*batch, 3, 0), "2");
  EXPECT_EQ(Cell(*batch, 3, 1), "1.5");
  EXPECT_EQ(Cell(*batch, 4, 0), "12.34");
  EXPECT_EQ(Cell(*batch, 4, 1), "5.00");
  EXPECT_EQ(Cell(*batch, 5, 0), "h\xc3\xa9llo");
  auto blob = std::static_pointer_cast<arrow::BinaryArray>(batch->column(6));
  EXPECT_EQ(blob->GetString(0), std::string("a\0b", 3));
  auto days = std::static_pointer_cast<arrow::Date32Array>(batch->column(7));
  EXPECT_EQ(days->Value(0), 19724);
  EXPECT_EQ(days->Value(1), 0);
  auto at = std::static_pointer_cast<arrow::TimestampArray>(batch->column(8));
  EXPECT_EQ(at->Value(0), 1704164645123456);
  EXPECT_EQ(at->Value(1), 1704164645000000);
  auto at_tz = std::static_pointer_cast<arrow::TimestampArray>(batch->column(9));
  EXPECT_EQ(at_tz->Value(0), 1704157445000000);  // 03:04:05+02:00 is 01:04:05 UTC
  EXPECT_EQ(at_tz->Value(1), 1704164645123456);
  EXPECT_EQ(Cell(*batch, 10, 0), "list<item: int32>[1, null, 3]");
  EXPECT_EQ(Cell(*batch, 10, 1), "list<item: int32>[]");
  EXPECT_EQ(Cell(*batch, 11, 0),
            "list<item: list<item: string>>[list<item: string>[a], list<item: string>[], null]");
  for (int c = 1; c < batch->num_columns(); ++c) {
    EXPECT_EQ(Cell(*batch, c, 2), "NULL") << batch->schema()->field(c)->name();
  }
}

TEST(RowsToArrowTest, DecimalsAreExact) {
  TableSchema schema =
      Schema(R"j([{"name":"id","type":"BIGINT"},{"name":"p","type":"DECIMAL(38,10)"},
      {"name":"q","type":"DECIMAL(4,1)"}])j");
  auto batch = Convert(R"([[1, 9.95, "-1.50"], [2, "1234567890123456789012345678.0123456789",
      0.1], [3, 1e-7, "999.9"], [4, "0", -999]])",
                       schema);
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(Cell(*batch, 1, 0), "9.9500000000");
  EXPECT_EQ(Cell(*batch, 2, 0), "-1.5");
  EXPECT_EQ(Cell(*batch, 1, 1), "1234567890123456789012345678.0123456789");
  EXPECT_EQ(Cell(*batch, 2, 1), "0.1");
  EXPECT_EQ(Cell(*batch, 1, 2), "1.000E-7");  // Arrow's spelling of 0.0000001000
  EXPECT_EQ(Cell(*batch, 2, 2), "999.9");
  EXPECT_EQ(Cell(*batch, 2, 3), "-999.0");
}

TEST(RowsToArrowTest, RefusesDecimalsWithTooManyDigits) {
  TableSchema schema =
      Schema(R"j([{"name":"id","type":"BIGINT"},{"name":"p","type":"DECIMAL(5,2)"}])j");
  EXPECT_EQ(Error(R"([[1, 1234.5]])", schema),
            "row 1, column \"p\": 1234.5 does not fit DECIMAL(5,2): it allows at most 3 digits "
            "before the point and 2 after it");
  EXPECT_NE(Error(R"([[1, "1.234"]])", schema).find("does not fit DECIMAL(5,2)"),
            std::string::npos);
  EXPECT_NE(Error(R"([[1, 100000]])", schema).find("does not fit"), std::string::npos);
  EXPECT_NE(Error(R"([[1, "1e10"]])", schema).find("does not fit"), std::string::npos);
  EXPECT_NE(
      Error(R"([[1, "123456789012345678901234567890123456789012"]])", schema).find("does not fit"),
      std::string::npos);
  EXPECT_EQ(Error(R"([[1, "abc"]])", schema),
            "row 1, column \"p\": expected DECIMAL(5,2), got \"abc\"");
  EXPECT_NE(Error(R"([[1, true]])", schema).find("expected DECIMAL(5,2), got true"),
            std::string::npos);
  EXPECT_EQ(Error(R"([[1, "999.99"], [2, "-999.99"], [3, "1.20"]])", schema), "ok");
}

TEST(RowsToArrowTest, RefusesRowsOfTheWrongShape) {
  EXPECT_EQ(Error(R"([[1,1.0,"a"],[2,2.0,"b"],[3,"x"]])", Orders()),
            "row 3 has 2 values, table orders has 3 columns (id, amount, region)");
  EXPECT_EQ(Error(R"([{"id":1,"amt":2}])", Orders()),
            "row 1 has column \"amt\", which table orders does not have (columns: id, amount, "
            "region)");
  EXPECT_NE(Error(R"([5])", Orders()).find("row 1 is 5"), std::string::npos);
  EXPECT_NE(Error(R"({"id":1})", Orders()).find("rows must be an array"), std::string::npos);
  auto empty = RowsToRecordBatch(json::array(), Orders());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->num_rows(), 0);
}

TEST(RowsToArrowTest, RefusesValuesOfTheWrongType) {
  EXPECT_EQ(Error(R"([[1,1.0,"a"],[2,2.0,"b"],[3,"abc","c"]])", Orders()),
            "row 3, column \"amount\": expected DOUBLE, got \"abc\"");
  EXPECT_EQ(Error(R"([[1,1.0,5]])", Orders()), "row 1, column \"region\": expected VARCHAR, got 5");
  EXPECT_EQ(Error(R"([[1.5,1.0,"a"]])", Orders()),
            "row 1, column \"id\": expected BIGINT, got 1.5");
  TableSchema typed = Schema(R"([{"name":"id","type":"INTEGER"},{"name":"b","type":"BOOLEAN"},
      {"name":"day","type":"DATE"},{"name":"at","type":"TIMESTAMP"},
      {"name":"tz","type":"TIMESTAMPTZ"},{"name":"l","type":"INTEGER[]"}])");
  auto error = [&](std::string_view column, std::string_view value) {
    json row = {{"id", 1}, {std::string(column), json::parse(value)}};
    return Error(json::array({row}).dump(), typed);
  };
  EXPECT_EQ(error("b", "1"), "row 1, column \"b\": expected BOOLEAN, got 1");
  EXPECT_EQ(error("b", "\"true\""), "row 1, column \"b\": expected BOOLEAN, got \"true\"");
  EXPECT_EQ(error("day", "\"2024-02-30\""),
            "row 1, column \"day\": expected DATE \"YYYY-MM-DD\", got \"2024-02-30\"");
  for (const char* bad : {"\"2024-1-2\"", "\"2024-01-02 \"", "19724", "\"0000-01-01\""}) {
    EXPECT_NE(error("day", bad).find("expected DATE"), std::string::npos) << bad;
  }
  EXPECT_NE(
      error("at", "\"2024-01-02 03:04:05Z\"").find("expected TIMESTAMP \"YYYY-MM-DD HH:MM:SS"),
      std::string::npos);
  for (const char* bad : {"\"2024-01-02\"", "\"2024-01-02 24:00:00\"", "\"2024-01-02 03:04\"",
                          "\"2024-01-02 03:04:05.1234567\"", "\"2024-01-02 03:04:05.\""}) {
    EXPECT_NE(error("at", bad).find("expected TIMESTAMP"), std::string::npos) << bad;
  }
  EXPECT_NE(error("tz", "\"2024-01-02 03:04:05\"").find("ending in Z or +hh:mm"),
            std::string::npos);
  EXPECT_NE(error("tz", "\"2024-01-02 03:04:05+25:00\"").find("expected TIMESTAMPTZ"),
            std::string::npos);
  EXPECT_EQ(error("l", "[1,\"x\"]"),
            "row 1, column \"l\": list element 2: expected INTEGER, got \"x\"");
  EXPECT_EQ(error("l", "5"), "row 1, column \"l\": expected INTEGER[] (a JSON array), got 5");
}

TEST(RowsToArrowTest, AcceptsTimeZoneOffsetSpellings) {
  TableSchema schema =
      Schema(R"([{"name":"id","type":"BIGINT"},{"name":"tz","type":"TIMESTAMPTZ"}])");
  auto batch = Convert(R"([[1,"1970-01-01 00:00:00Z"],[2,"1970-01-01 01:30:00+01:30"],
      [3,"1970-01-01 00:00:00-01"],[4,"1969-12-31T23:59:59.5+0000"]])",
                       schema);
  ASSERT_NE(batch, nullptr);
  auto values = std::static_pointer_cast<arrow::TimestampArray>(batch->column(1));
  EXPECT_EQ(values->Value(0), 0);
  EXPECT_EQ(values->Value(1), 0);
  EXPECT_EQ(values->Value(2), 3600000000);
  EXPECT_EQ(values->Value(3), -500000);
}

TEST(RowsToArrowTest, RefusesIntegersOutOfRange) {
  TableSchema schema = Schema(R"([{"name":"id","type":"BIGINT"},{"name":"n","type":"INTEGER"}])");
  EXPECT_EQ(Error(R"([[1, 3000000000]])", schema),
            "row 1, column \"n\": 3000000000 is out of range for INTEGER (use BIGINT for larger "
            "numbers)");
  EXPECT_NE(Error(R"([[1, -2147483649]])", schema).find("out of range for INTEGER"),
            std::string::npos);
  EXPECT_EQ(Error(R"([[1, 2147483647], [2, -2147483648]])", schema), "ok");
  EXPECT_EQ(Error(R"([[18446744073709551615, 1]])", schema),
            "row 1, column \"id\": 18446744073709551615 is out of range for BIGINT");
}

TEST(RowsToArrowTest, RefusesNullInKeyColumns) {
  EXPECT_EQ(Error(R"([[1,1.0,"a"],[null,2.0,"b"]])", Orders()),
            "row 2, column \"id\": NULL in a key column; every row needs a value for the key (id)");
  EXPECT_NE(Error(R"([{"amount":1.0}])", Orders()).find("row 1, column \"id\": NULL in a key"),
            std::string::npos);
}

TEST(RowsToArrowTest, ConvertsTenThousandRows) {
  json rows = json::array();
  for (int i = 0; i < 10000; ++i) rows.push_back({i, i * 0.5, i % 2 ? "eu" : "us"});
  auto batch = RowsToRecordBatch(rows, Orders());
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ((*batch)->num_rows(), 10000);
  EXPECT_EQ(Cell(**batch, 1, 9999), "4999.5");
}

// ---------------------------------------------------------------------------------------
// Arrow IPC.

std::string WriteStream(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                        std::shared_ptr<arrow::Schema> schema = nullptr) {
  if (!schema) schema = batches.front()->schema();
  auto sink = arrow::io::BufferOutputStream::Create().ValueOrDie();
  auto writer = arrow::ipc::MakeStreamWriter(sink, schema).ValueOrDie();
  for (const auto& batch : batches) EXPECT_TRUE(writer->WriteRecordBatch(*batch).ok());
  EXPECT_TRUE(writer->Close().ok());
  return sink->Finish().ValueOrDie()->ToString();
}

std::string IpcError(std::string_view stream, const TableSchema& schema) {
  auto batch = IpcToRecordBatch(stream, schema);
  return batch.ok() ? "ok" : batch.status().message();
}

TEST(IpcToArrowTest, ReadsAndConcatenatesBatches) {
  auto first = Convert(R"([[1,9.5,"eu"],[2,3.0,"us"]])", Orders());
  auto second = Convert(R"([[3,null,"eu"]])", Orders());
  const std::string stream = WriteStream({first, second});
  auto batch = IpcToRecordBatch(stream, Orders());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ((*batch)->num_rows(), 3);
  EXPECT_TRUE((*batch)->schema()->Equals(*Orders().ToArrow()));
  EXPECT_EQ(Cell(**batch, 0, 2), "3");
  EXPECT_EQ(Cell(**batch, 1, 2), "NULL");
  EXPECT_EQ(Cell(**batch, 2, 1), "us");
}

TEST(IpcToArrowTest, ResultOwnsItsMemory) {
  std::string stream = WriteStream({Convert(R"([[1,9.5,"eu"]])", Orders())});
  auto batch = IpcToRecordBatch(stream, Orders());
  ASSERT_TRUE(batch.ok());
  std::fill(stream.begin(), stream.end(), '\0');
  EXPECT_EQ(Cell(**batch, 2, 0), "eu");
}

TEST(IpcToArrowTest, AcceptsDuckDBStyleListNamesNullableFieldsAndOtherZones) {
  TableSchema schema = Schema(R"([{"name":"id","type":"BIGINT"},{"name":"tags","type":"VARCHAR[]"},
      {"name":"at","type":"TIMESTAMPTZ"}])");
  auto duck_schema =
      arrow::schema({arrow::field("id", arrow::int64()),
                     arrow::field("tags", arrow::list(arrow::field("l", arrow::utf8()))),
                     arrow::field("at", arrow::timestamp(arrow::TimeUnit::MICRO, "Europe/Paris"))});
  arrow::Int64Builder ids;
  ASSERT_TRUE(ids.AppendValues({7, 8}).ok());
  arrow::ListBuilder tags(arrow::default_memory_pool(), std::make_shared<arrow::StringBuilder>(),
                          arrow::list(arrow::field("l", arrow::utf8())));
  ASSERT_TRUE(tags.Append().ok());
  ASSERT_TRUE(static_cast<arrow::StringBuilder*>(tags.value_builder())->Append("x").ok());
  ASSERT_TRUE(tags.AppendNull().ok());
  arrow::TimestampBuilder at(arrow::timestamp(arrow::TimeUnit::MICRO, "Europe/Paris"),
                             arrow::default_memory_pool());
  ASSERT_TRUE(at.AppendValues({0, 1}).ok());
  auto batch = arrow::RecordBatch::Make(
      duck_schema, 2,
      {ids.Finish().ValueOrDie(), tags.Finish().ValueOrDie(), at.Finish().ValueOrDie()});
  auto result = IpcToRecordBatch(WriteStream({batch}), schema);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE((*result)->schema()->Equals(*schema.ToArrow()));
  EXPECT_TRUE((*result)->ValidateFull().ok());
  EXPECT_EQ(Cell(**result, 1, 0), "list<item: string>[x]");
  EXPECT_EQ(Cell(**result, 2, 1), "1970-01-01 00:00:00.000001Z");
}

TEST(IpcToArrowTest, EmptyStreamGivesNoRows) {
  auto batch = IpcToRecordBatch(WriteStream({}, Orders().ToArrow()), Orders());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ((*batch)->num_rows(), 0);
  EXPECT_TRUE((*batch)->schema()->Equals(*Orders().ToArrow()));
}

TEST(IpcToArrowTest, RefusesSchemaMismatchesNamingTheFirst) {
  auto wrong_order =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("region", arrow::utf8()),
                     arrow::field("amount", arrow::float64())});
  EXPECT_EQ(IpcError(WriteStream({}, wrong_order), Orders()),
            "rows_ipc column 2 is \"region\" but table orders has \"amount\" there: send the "
            "columns in table order (id, amount, region)");
  auto wrong_type =
      arrow::schema({arrow::field("id", arrow::int32()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8())});
  EXPECT_EQ(IpcError(WriteStream({}, wrong_type), Orders()),
            "rows_ipc column \"id\" is int32 but table orders stores it as BIGINT (Arrow int64)");
  auto large =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::large_utf8())});
  EXPECT_NE(IpcError(WriteStream({}, large), Orders()).find("\"region\" is large_string"),
            std::string::npos);
  auto fewer = arrow::schema({arrow::field("id", arrow::int64())});
  EXPECT_EQ(IpcError(WriteStream({}, fewer), Orders()),
            "rows_ipc has 1 columns (id), table orders has 3 (id BIGINT, amount DOUBLE, region "
            "VARCHAR)");
}

TEST(IpcToArrowTest, RefusesNullInKeyColumns) {
  TableSchema keyless = Schema(R"([{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},
      {"name":"region","type":"VARCHAR"}])",
                               {});
  auto first = Convert(R"([[1,1.0,"a"]])", keyless);
  auto second = Convert(R"([[2,1.0,"a"],[null,2.0,"b"]])", keyless);
  EXPECT_EQ(IpcError(WriteStream({first, second}), Orders()),
            "rows_ipc row 3, column \"id\": NULL in a key column; every row needs a value for "
            "the key");
}

TEST(IpcToArrowTest, RefusesEveryTruncationWithoutCrashing) {
  const std::string stream = WriteStream({Convert(R"([[1,9.5,"eu"],[2,3.0,"us"]])", Orders()),
                                          Convert(R"([[3,1.0,"eu"]])", Orders())});
  for (size_t length = 0; length < stream.size(); ++length) {
    auto batch = IpcToRecordBatch(std::string_view(stream).substr(0, length), Orders());
    EXPECT_FALSE(batch.ok()) << "prefix of " << length << " bytes was accepted";
  }
  EXPECT_NE(IpcError(stream.substr(0, stream.size() - 8), Orders())
                .find("rows_ipc is truncated or not an Arrow IPC stream"),
            std::string::npos);
}

TEST(IpcToArrowTest, CorruptBytesGiveErrorsNotCrashes) {
  const std::string stream = WriteStream({Convert(R"([[1,9.5,"eu"],[2,3.0,"us"]])", Orders())});
  int refused = 0;
  for (size_t i = 0; i + 8 < stream.size(); ++i) {
    for (unsigned char flip : {0xFF, 0x80, 0x01}) {
      std::string corrupt = stream;
      corrupt[i] = static_cast<char>(corrupt[i] ^ flip);
      auto batch = IpcToRecordBatch(corrupt, Orders());
      if (!batch.ok()) {
        ++refused;
      } else {
        EXPECT_TRUE((*batch)->ValidateFull().ok());
      }
    }
  }
  EXPECT_GT(refused, 0);
  std::string garbage(64, 'x');
  garbage += std::string("\xff\xff\xff\xff\0\0\0\0", 8);
  EXPECT_NE(IpcError(garbage, Orders()).find("rows_ipc is not a valid Arrow IPC stream"),
            std::string::npos);
}

TEST(IpcToArrowTest, RefusesDataThatFailsFullValidation) {
  // A string column whose bytes are not UTF-8: readable, but invalid.
  auto offsets = arrow::Buffer::FromString(std::string("\0\0\0\0\x02\0\0\0", 8));
  auto data = arrow::Buffer::FromString("\xff\xfe");
  auto region = std::make_shared<arrow::StringArray>(1, offsets, data);
  arrow::Int64Builder ids;
  ASSERT_TRUE(ids.Append(1).ok());
  arrow::DoubleBuilder amounts;
  ASSERT_TRUE(amounts.Append(1.0).ok());
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8())}),
      1, {ids.Finish().ValueOrDie(), amounts.Finish().ValueOrDie(), region});
  std::string error = IpcError(WriteStream({batch}), Orders());
  EXPECT_NE(error.find("rows_ipc is not a valid Arrow IPC stream (batch 1)"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace teatree
