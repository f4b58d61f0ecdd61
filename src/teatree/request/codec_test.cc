#include "teatree/request/codec.h"

#include <arrow/util/base64.h>
#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include "teatree/request/names.h"

namespace teatree {
namespace {

using nlohmann::json;

const char* const kExamples[] = {
    R"({"request_id":"r1","model":"sales","op":"create_table","table":"orders","schema":[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"},{"name":"region","type":"VARCHAR"}],"primary_key":["id"]})",
    R"({"request_id":"r2","model":"sales","op":"append","table":"orders","rows":[[1,9.5,"eu"],[2,3.0,"us"]]})",
    R"({"request_id":"r3","model":"sales","op":"append","table":"orders","source":{"format":"parquet","path":"in/orders.parquet"}})",
    R"({"request_id":"r4","model":"sales","op":"upsert","table":"orders","rows":[{"id":2,"amount":4.0,"region":"us"}]})",
    R"({"request_id":"r5","model":"sales","op":"update","table":"orders","set":{"amount":{"call":"multiply","args":[{"field":"amount"},{"literal":1.1}]}},"where":{"call":"equal","args":[{"field":"region"},{"literal":"eu"}]}})",
    R"({"request_id":"r6","model":"sales","op":"delete","table":"orders","where":{"call":"less","args":[{"field":"amount"},{"literal":1}]}})",
    R"({"request_id":"r7","model":"sales","op":"invoke","function":"region_totals","args":{"min_amount":2}})",
    R"({"request_id":"r8","model":"sales","op":"query","sql":"SELECT region, sum(amount) FROM orders GROUP BY 1","page_rows":1000})",
    R"({"request_id":"r9","model":"sales","op":"snapshot"})",
    R"({"request_id":"r10","model":"sales","op":"attach","name":"ref","path":"ref/regions.duckdb"})",
    R"({"request_id":"r11","model":"sales","op":"drop_table","table":"orders"})",
    R"({"request_id":"r12","model":"sales","op":"alter_table","table":"orders","changes":[{"add_column":"note","type":"VARCHAR"},{"drop_column":"region"},{"rename_column":"amount","to":"total"},{"alter_column":"qty","type":"BIGINT"}]})",
};

Request Decode(std::string_view text) {
  auto request = DecodeRequest(text);
  EXPECT_TRUE(request.ok()) << request.status().ToString() << "\n" << text;
  return request.ok() ? *request : Request{};
}

// The error message for `text`, or "ok".
std::string Error(std::string_view text) {
  auto request = DecodeRequest(text);
  return request.ok() ? "ok" : request.status().message();
}

// The error for example `index` with `patch` merged into it (null values remove fields).
std::string PatchedError(int index, std::string_view patch) {
  json request = json::parse(kExamples[index]);
  request.merge_patch(json::parse(patch));
  return Error(request.dump());
}

::testing::AssertionResult Contains(const std::string& text, std::string_view fragment) {
  if (text.find(fragment) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << fragment << "\"";
}

TEST(CodecTest, DecodesCreateTable) {
  Request request = Decode(kExamples[0]);
  EXPECT_EQ(request.request_id, "r1");
  EXPECT_EQ(request.model, "sales");
  EXPECT_EQ(request.op, Op::kCreateTable);
  EXPECT_EQ(request.table, "orders");
  ASSERT_TRUE(request.schema.has_value());
  EXPECT_EQ(request.schema->name, "orders");
  EXPECT_EQ(request.schema->ColumnNames(), "id, amount, region");
  EXPECT_EQ(request.schema->columns[0].type.ToString(), "BIGINT");
  EXPECT_EQ(request.schema->primary_key, std::vector<std::string>{"id"});
  EXPECT_EQ(request.engine, "");  // The model's engine.
  EXPECT_EQ(request.payload_hash.size(), 64u);
}

TEST(CodecTest, DecodesAppendsAndUpsert) {
  Request rows = Decode(kExamples[1]);
  EXPECT_EQ(rows.op, Op::kAppend);
  EXPECT_EQ(rows.rows, json::parse(R"([[1,9.5,"eu"],[2,3.0,"us"]])"));
  EXPECT_FALSE(rows.source.has_value());
  EXPECT_TRUE(rows.rows_ipc.empty());
  Request source = Decode(kExamples[2]);
  ASSERT_TRUE(source.source.has_value());
  EXPECT_EQ(source.source->format, "parquet");
  EXPECT_EQ(source.source->path, "in/orders.parquet");
  EXPECT_TRUE(source.rows.is_null());
  Request upsert = Decode(kExamples[3]);
  EXPECT_EQ(upsert.op, Op::kUpsert);
  EXPECT_EQ(upsert.rows[0]["region"], "us");
}

TEST(CodecTest, DecodesStagedSourcesAndRefusesIdsThatCouldNameAPath) {
  const std::string id(kStagedIdLength, 'a');
  Request staged = Decode(R"({"request_id":"s","model":"sales","op":"append","table":"orders",)"
                          R"("source":{"format":"json","staged":")" +
                          id + R"("}})");
  ASSERT_TRUE(staged.source.has_value());
  EXPECT_EQ(staged.source->staged, id);
  EXPECT_EQ(staged.source->path, "");
  EXPECT_EQ(staged.source->format, "json");
  // Encoded and decoded again, it is the same request.
  EXPECT_EQ(Decode(EncodeRequest(staged)).source, staged.source);
  for (const std::string& bad : {std::string("../../etc/passwd"), std::string(31, 'a'),
                                 std::string(32, 'A'), std::string(33, 'a'), std::string()}) {
    EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"path":null,"staged":")" + bad + R"("}})"),
                         "staged upload id"))
        << bad;
  }
  EXPECT_TRUE(
      Contains(PatchedError(2, R"({"source":{"staged":")" + id + R"("}})"),
               R"(field "source" must be {"format": "parquet", "path": "in/orders.parquet"})"));
  EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"format":"xml"}})"),
                       R"(use "parquet", "csv", "arrow" or "json")"));
}

TEST(CodecTest, DecodesUpdateAndDelete) {
  Request update = Decode(kExamples[4]);
  EXPECT_EQ(update.op, Op::kUpdate);
  ASSERT_EQ(update.set.size(), 1u);
  EXPECT_EQ(update.set[0].first, "amount");
  EXPECT_EQ(update.set[0].second.ToString(), "multiply(amount, 1.1)");
  ASSERT_TRUE(update.where.has_value());
  EXPECT_EQ(update.where->ToString(), "equal(region, \"eu\")");
  Request del = Decode(kExamples[5]);
  EXPECT_EQ(del.op, Op::kDelete);
  ASSERT_TRUE(del.where.has_value());
  EXPECT_EQ(del.where->ToString(), "less(amount, 1)");
  Request all = Decode(R"({"request_id":"u","model":"m","op":"update","table":"t",
      "set":{"b":{"literal":1},"a":{"field":"b"}}})");
  EXPECT_FALSE(all.where.has_value());
  ASSERT_EQ(all.set.size(), 2u);
  EXPECT_EQ(all.set[0].first, "a");  // sorted by column
  EXPECT_EQ(all.set[1].first, "b");
}

TEST(CodecTest, DecodesInvokeQuerySnapshotAttach) {
  Request invoke = Decode(kExamples[6]);
  EXPECT_EQ(invoke.op, Op::kInvoke);
  EXPECT_EQ(invoke.function, "region_totals");
  EXPECT_EQ(invoke.args, json::parse(R"({"min_amount":2})"));
  Request query = Decode(kExamples[7]);
  EXPECT_EQ(query.op, Op::kQuery);
  EXPECT_EQ(query.sql, "SELECT region, sum(amount) FROM orders GROUP BY 1");
  EXPECT_EQ(query.page_rows, 1000);
  Request snapshot = Decode(kExamples[8]);
  EXPECT_EQ(snapshot.op, Op::kSnapshot);
  EXPECT_EQ(EncodeRequest(snapshot), R"({"model":"sales","op":"snapshot","request_id":"r9"})");
  Request attach = Decode(kExamples[9]);
  EXPECT_EQ(attach.op, Op::kAttach);
  EXPECT_EQ(attach.name, "ref");
  EXPECT_EQ(attach.path, "ref/regions.duckdb");
}

TEST(CodecTest, DecodesDropAndAlterTable) {
  Request drop = Decode(kExamples[10]);
  EXPECT_EQ(drop.op, Op::kDropTable);
  EXPECT_EQ(drop.table, "orders");
  EXPECT_TRUE(drop.changes.empty());
  Request alter = Decode(kExamples[11]);
  EXPECT_EQ(alter.op, Op::kAlterTable);
  EXPECT_EQ(alter.table, "orders");
  using Kind = ColumnChange::Kind;
  const std::vector<ColumnChange> expected = {
      {.kind = Kind::kAdd, .column = "note", .type = ColumnType::Of(ColumnType::Kind::kVarchar)},
      {.kind = Kind::kDrop, .column = "region"},
      {.kind = Kind::kRename, .column = "amount", .to = "total"},
      {.kind = Kind::kAlterType,
       .column = "qty",
       .type = ColumnType::Of(ColumnType::Kind::kBigint)},
  };
  EXPECT_EQ(alter.changes, expected);
  // Types are written as create_table takes them, in any case, and encoded canonically.
  Request lower = Decode(R"j({"request_id":"a","model":"m","op":"alter_table","table":"t",
      "changes":[{"type":"decimal(12, 2)","add_column":"price"},{"alter_column":"l","type":"LIST(BIGINT)"}]})j");
  EXPECT_EQ(lower.changes[0].type, ColumnType::Decimal(12, 2));
  EXPECT_TRUE(Contains(EncodeRequest(lower),
                       R"j("changes":[{"add_column":"price","type":"DECIMAL(12,2)"},)j"
                       R"({"alter_column":"l","type":"BIGINT[]"}])"));
  // Changes apply in order, so their order is part of the payload.
  Request swapped = Decode(R"j({"request_id":"a","model":"m","op":"alter_table","table":"t",
      "changes":[{"alter_column":"l","type":"LIST(BIGINT)"},{"type":"decimal(12, 2)","add_column":"price"}]})j");
  EXPECT_NE(swapped.payload_hash, lower.payload_hash);
}

TEST(CodecTest, RefusesBadAlterTableChanges) {
  const char* const forms = "write each change as {\"add_column\": \"note\"";
  for (const char* bad : {
           R"({"changes":[]})",
           R"({"changes":{"add_column":"a","type":"INTEGER"}})",
           R"({"changes":"add_column a"})",
       }) {
    EXPECT_TRUE(Contains(PatchedError(11, bad),
                         "field \"changes\" of alter_table orders must be "
                         "an array of 1 to 1000 changes"))
        << bad;
    EXPECT_TRUE(Contains(PatchedError(11, bad), forms)) << bad;
  }
  for (const char* bad : {
           R"([5])",
           R"([{}])",
           R"([{"add_column":"a"}])",                                    // no type
           R"([{"add_column":"a","type":"INTEGER","nullable":false}])",  // unknown key
           R"([{"drop_column":"a","type":"INTEGER"}])",
           R"([{"rename_column":"a"}])",
           R"([{"rename_column":"a","type":"INTEGER"}])",
           R"([{"alter_column":"a","to":"b"}])",
           R"([{"drop_column":"a","rename_column":"b","to":"c"}])",  // two verbs
           R"([{"drop_column":5}])",
           R"([{"rename_column":"a","to":7}])",
       }) {
    const std::string patch = std::string(R"({"changes":)") + bad + "}";
    EXPECT_TRUE(Contains(PatchedError(11, patch), "change 1 of table orders is ")) << bad;
    EXPECT_TRUE(Contains(PatchedError(11, patch), forms)) << bad;
  }
  EXPECT_TRUE(Contains(PatchedError(11, R"({"changes":[{"drop_column":"a"},{"drop":"b"}]})"),
                       "change 2 of table orders is {\"drop\":\"b\"}"));
  EXPECT_TRUE(Contains(PatchedError(11, R"({"changes":[{"add_column":"Note","type":"VARCHAR"}]})"),
                       "column name \"Note\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(11, R"({"changes":[{"rename_column":"a","to":"b c"}]})"),
                       "column name \"b c\" is invalid"));
  EXPECT_EQ(PatchedError(11, R"({"changes":[{"alter_column":"qty","type":"INT8"}]})"),
            "alter_column \"qty\" of table orders: unknown column type \"INT8\": use BOOLEAN, "
            "INTEGER, BIGINT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIMESTAMP, TIMESTAMPTZ, "
            "or a list of one of these written LIST(T) or T[]");
  EXPECT_TRUE(
      Contains(PatchedError(11, R"j({"changes":[{"add_column":"p","type":"DECIMAL(40,2)"}]})j"),
               "add_column \"p\" of table orders: column type \"DECIMAL(40,2)\" is "
               "invalid"));
  EXPECT_TRUE(
      Contains(PatchedError(11, R"({"changes":null})"), "op alter_table needs field \"changes\""));
  EXPECT_TRUE(
      Contains(PatchedError(11, R"({"table":null})"), "op alter_table needs field \"table\""));
  EXPECT_TRUE(
      Contains(PatchedError(10, R"({"table":null})"), "op drop_table needs field \"table\""));
  EXPECT_TRUE(
      Contains(PatchedError(10, R"({"table":"Orders"})"), "table name \"Orders\" is invalid"));
  EXPECT_EQ(PatchedError(10, R"({"changes":[{"drop_column":"a"}]})"),
            "field \"changes\" is not allowed for op drop_table: op drop_table takes table");
  EXPECT_TRUE(Contains(PatchedError(1, R"({"changes":[{"drop_column":"a"}]})"),
                       "field \"changes\" is not allowed for op append"));
  json many = json::parse(kExamples[11]);
  many["changes"] = json::array();
  for (int i = 0; i < 1001; ++i) many["changes"].push_back({{"drop_column", "c"}});
  EXPECT_TRUE(Contains(Error(many.dump()), "must be an array of 1 to 1000 changes"));
}

TEST(CodecTest, FillsDefaults) {
  Request invoke = Decode(R"({"request_id":"a","model":"m","op":"invoke","function":"f"})");
  EXPECT_EQ(invoke.args, json::object());
  Request query = Decode(R"({"request_id":"a","model":"m","op":"query","sql":"SELECT 1"})");
  EXPECT_EQ(query.page_rows, 1000);
  Request arrow = Decode(R"({"request_id":"a","model":"m","op":"create_table","table":"t",
      "schema":[{"name":"x","type":"INTEGER"}],"engine":"arrow"})");
  EXPECT_EQ(arrow.engine, "arrow");
  EXPECT_TRUE(arrow.schema->primary_key.empty());
}

TEST(CodecTest, OpNamesRoundTrip) {
  for (Op op : {Op::kCreateTable, Op::kAppend, Op::kUpsert, Op::kUpdate, Op::kDelete, Op::kInvoke,
                Op::kQuery, Op::kSnapshot, Op::kAttach, Op::kDropTable, Op::kAlterTable}) {
    auto parsed = ParseOp(OpName(op));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, op);
  }
  EXPECT_EQ(OpName(Op::kCreateTable), "create_table");
  EXPECT_EQ(ParseOp("insert").status().message(),
            "unknown op \"insert\": use one of create_table, append, upsert, update, delete, "
            "invoke, query, snapshot, attach, drop_table, alter_table");
}

TEST(CodecTest, EncodeDecodeRoundTripsEveryExample) {
  for (const char* example : kExamples) {
    Request request = Decode(example);
    const std::string encoded = EncodeRequest(request);
    Request again = Decode(encoded);
    EXPECT_EQ(again, request) << encoded;
    EXPECT_EQ(EncodeRequest(again), encoded);
    EXPECT_EQ(again.payload_hash, request.payload_hash);
  }
}

TEST(CodecTest, EncodingIsCanonical) {
  Request a = Decode(R"({"op":"create_table","table":"t","model":"m","request_id":"x",
      "schema":[{"type":"bigint","name":"id"}]})");
  EXPECT_EQ(EncodeRequest(a),
            R"({"model":"m","op":"create_table","primary_key":[],)"
            R"("request_id":"x","schema":[{"name":"id","type":"BIGINT"}],"table":"t"})");
}

TEST(CodecTest, RowsIpcTravelsAsBase64) {
  const std::string bytes("\x00\x01\xff\xfe payload", 12);
  const std::string text = R"({"request_id":"i","model":"m","op":"append","table":"t",
      "rows_ipc":")" + arrow::util::base64_encode(bytes) +
                           R"("})";
  Request request = Decode(text);
  EXPECT_EQ(request.rows_ipc, bytes);
  EXPECT_TRUE(Contains(EncodeRequest(request), arrow::util::base64_encode(bytes)));
  EXPECT_EQ(Decode(EncodeRequest(request)), request);
}

TEST(CodecTest, PayloadHashIgnoresIdAndFieldOrder) {
  Request a = Decode(kExamples[4]);
  json reordered = json::parse(kExamples[4]);
  reordered["request_id"] = "another-id";
  std::string text = reordered.dump();  // nlohmann sorts keys: a different field order
  Request b = Decode(text);
  EXPECT_NE(a.request_id, b.request_id);
  EXPECT_EQ(a.payload_hash, b.payload_hash);
  EXPECT_NE(EncodeRequest(a), EncodeRequest(b));
  EXPECT_EQ(a.payload_hash, PayloadHash(a));
  // Written defaults hash like omitted ones.
  Request implicit = Decode(R"({"request_id":"1","model":"m","op":"query","sql":"SELECT 1"})");
  Request explicit_page =
      Decode(R"({"request_id":"2","model":"m","op":"query","sql":"SELECT 1","page_rows":1000})");
  EXPECT_EQ(implicit.payload_hash, explicit_page.payload_hash);
}

TEST(CodecTest, PayloadHashDiffersForDifferentPayloads) {
  const std::string base = Decode(kExamples[1]).payload_hash;
  EXPECT_NE(Decode(R"({"request_id":"r2","model":"sales","op":"append","table":"orders",
      "rows":[[1,9.5,"eu"],[2,3.5,"us"]]})")
                .payload_hash,
            base);
  EXPECT_NE(Decode(R"({"request_id":"r2","model":"sales","op":"upsert","table":"orders",
      "rows":[[1,9.5,"eu"],[2,3.0,"us"]]})")
                .payload_hash,
            base);
  EXPECT_NE(Decode(R"({"request_id":"r2","model":"other","op":"append","table":"orders",
      "rows":[[1,9.5,"eu"],[2,3.0,"us"]]})")
                .payload_hash,
            base);
  std::set<std::string> hashes;
  for (const char* example : kExamples) hashes.insert(Decode(example).payload_hash);
  EXPECT_EQ(hashes.size(), std::size(kExamples));
  for (char c : base) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(c));
}

TEST(CodecTest, RefusesMalformedJsonSayingWhere) {
  EXPECT_TRUE(
      Contains(Error(R"({"request_id":"r1",)"),
               "request is not valid JSON: parse error at line 1, column 20: syntax error"));
  EXPECT_TRUE(Contains(Error("{\n\"a\": tru}"), "line 2, column"));
  EXPECT_TRUE(Contains(Error(""), "not valid JSON"));
  EXPECT_TRUE(Contains(Error("{\"a\":\"\xff\"}"), "not valid JSON"));
}

TEST(CodecTest, RefusesNonObjects) {
  EXPECT_TRUE(Contains(Error("[1,2]"), "request must be a JSON object"));
  EXPECT_TRUE(Contains(Error("\"snapshot\""), "got a string"));
  EXPECT_TRUE(Contains(Error("null"), "request must be a JSON object"));
}

TEST(CodecTest, RefusesDeepNestingWithoutCrashing) {
  std::string deep = R"({"request_id":"r","model":"m","op":"invoke","function":"f","args":{"a":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}";
  EXPECT_TRUE(Contains(Error(deep), "more than 256 levels deep"));
}

TEST(CodecTest, RefusesMissingOrInvalidEnvelope) {
  EXPECT_EQ(Error(R"({"model":"sales","op":"snapshot"})"),
            "request is missing request_id: every request needs a client-chosen id so it is "
            "applied exactly once");
  EXPECT_EQ(Error(R"({"request_id":"","model":"sales","op":"snapshot"})"),
            Error(R"({"model":"sales","op":"snapshot"})"));
  EXPECT_EQ(Error(R"({"request_id":null,"model":"sales","op":"snapshot"})"),
            Error(R"({"model":"sales","op":"snapshot"})"));
  EXPECT_TRUE(Contains(Error(R"({"request_id":"a b","model":"sales","op":"snapshot"})"),
                       "request_id \"a b\" is invalid"));
  EXPECT_TRUE(Contains(Error(R"({"request_id":7,"model":"sales","op":"snapshot"})"),
                       "field \"request_id\" must be a string, got 7"));
  EXPECT_TRUE(Contains(Error(R"({"request_id":"r","op":"snapshot"})"), "is missing model"));
  EXPECT_EQ(Error(R"({"request_id":"r","model":"Sales/2024","op":"snapshot"})"),
            "model name \"Sales/2024\" is invalid: use lowercase letters, digits and _ (start "
            "with a letter, at most 63 characters)");
  EXPECT_TRUE(Contains(Error(R"({"request_id":"r","model":"sales"})"),
                       "is missing op: use one of create_table, append"));
  EXPECT_TRUE(Contains(Error(R"({"request_id":"r","model":"sales","op":"inser"})"),
                       "unknown op \"inser\": use one of create_table, append, upsert"));
}

TEST(CodecTest, RefusesUnknownFieldsNamingThem) {
  EXPECT_TRUE(Contains(PatchedError(1, R"({"tabel":"orders"})"),
                       "unknown field \"tabel\" in request: op append takes table"));
  EXPECT_TRUE(Contains(PatchedError(8, R"({"x":1,"y":2})"), "unknown fields \"x\", \"y\""));
}

TEST(CodecTest, RefusesFieldsNotAllowedForTheOp) {
  EXPECT_EQ(PatchedError(5, R"({"rows":[[1]]})"),
            "field \"rows\" is not allowed for op delete: op delete takes table, where");
  EXPECT_TRUE(Contains(PatchedError(8, R"({"table":"orders"})"),
                       "field \"table\" is not allowed for op snapshot"));
  EXPECT_TRUE(Contains(PatchedError(7, R"({"where":{"literal":true}})"),
                       "field \"where\" is not allowed for op query: op query takes sql and "
                       "optionally page_rows"));
}

TEST(CodecTest, RefusesMissingRequiredFields) {
  EXPECT_TRUE(Contains(PatchedError(1, R"({"table":null})"), "op append needs field \"table\""));
  EXPECT_TRUE(
      Contains(PatchedError(0, R"({"schema":null})"), "op create_table needs field \"schema\""));
  EXPECT_TRUE(Contains(PatchedError(5, R"({"where":null})"),
                       "op delete needs field \"where\" (use {\"literal\": true} to delete "
                       "every row)"));
  EXPECT_TRUE(Contains(PatchedError(4, R"({"set":null})"), "op update needs field \"set\""));
  EXPECT_TRUE(
      Contains(PatchedError(6, R"({"function":null})"), "op invoke needs field \"function\""));
  EXPECT_TRUE(Contains(PatchedError(7, R"({"sql":null})"), "op query needs field \"sql\""));
  EXPECT_TRUE(Contains(PatchedError(9, R"({"path":null})"), "op attach needs field \"path\""));
  EXPECT_TRUE(Contains(PatchedError(9, R"({"name":null})"), "op attach needs field \"name\""));
}

TEST(CodecTest, RefusesBadRows) {
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows":[]})"), "must be a non-empty array of rows"));
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows":{"id":1}})"), "non-empty array of rows"));
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows":[1,2]})"),
                       "row 1 of \"rows\" is 1: each row must be an array of values or an "
                       "object by column name"));
  EXPECT_EQ(PatchedError(1, R"({"rows":[[1],[2],{"id":3}]})"),
            "\"rows\" mixes arrays and objects: row 1 is an array, row 3 is an object; use "
            "one form for all rows");
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows":[{"id":1},{"Amount":2}]})"),
                       "row 2: column name \"Amount\" is invalid"));
}

TEST(CodecTest, RefusesMoreOrLessThanOnePayload) {
  EXPECT_EQ(PatchedError(1, R"({"source":{"format":"csv","path":"a.csv"}})"),
            "op append takes exactly one of \"rows\", \"rows_ipc\" and \"source\", got "
            "\"rows\" and \"source\"");
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows_ipc":"AAAA"})"), "got \"rows\" and \"rows_ipc\""));
  EXPECT_TRUE(Contains(PatchedError(3, R"({"rows":null})"), "op upsert takes exactly one of"));
  EXPECT_TRUE(Contains(PatchedError(3, R"({"rows":null})"), "got none"));
}

TEST(CodecTest, RefusesInvalidBase64) {
  for (const char* bad : {"a$Vs", "aGVsbG8", "aGV=bG8=", "aGVs\nbG8="}) {
    json request = json::parse(kExamples[1]);
    request.erase("rows");
    request["rows_ipc"] = bad;
    EXPECT_TRUE(Contains(Error(request.dump()), "field \"rows_ipc\" is not valid base64")) << bad;
  }
  EXPECT_TRUE(Contains(PatchedError(1, R"({"rows":null,"rows_ipc":""})"), "\"rows_ipc\" is empty"));
  EXPECT_TRUE(
      Contains(PatchedError(1, R"({"rows":null,"rows_ipc":5})"), "must be a base64 string"));
}

TEST(CodecTest, RefusesPageRowsOutOfRange) {
  for (const char* bad : {"0", "-1", "1000001", "18446744073709551615", "1.5", "\"10\"", "true"}) {
    EXPECT_TRUE(Contains(PatchedError(7, std::string(R"({"page_rows":)") + bad + "}"),
                         "page_rows must be an integer from 1 to 1000000, got"))
        << bad;
  }
  for (int64_t good : {int64_t{1}, int64_t{1000000}}) {
    json request = json::parse(kExamples[7]);
    request["page_rows"] = good;
    EXPECT_EQ(Decode(request.dump()).page_rows, good);
  }
}

TEST(CodecTest, RefusesBadSources) {
  EXPECT_EQ(PatchedError(2, R"({"source":{"format":"xlsx"}})"),
            "source format \"xlsx\" is not supported: use \"parquet\", \"csv\", \"arrow\" or "
            "\"json\"");
  EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"path":null}})"),
                       "field \"source\" must be {\"format\""));
  EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"extra":1}})"), "field \"source\" must be"));
  EXPECT_TRUE(
      Contains(PatchedError(2, R"({"source":"in/orders.parquet"})"), "field \"source\" must be"));
  EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"path":"../secret.parquet"}})"),
                       "source path \"../secret.parquet\" contains \"..\""));
  EXPECT_TRUE(Contains(PatchedError(2, R"({"source":{"path":""}})"), "is empty"));
  for (const char* ok : {"in/orders..parquet", "/data/in/x.parquet", "s3://bucket/x.parquet"}) {
    json request = json::parse(kExamples[2]);
    request["source"]["path"] = ok;
    EXPECT_EQ(Error(request.dump()), "ok") << ok;
  }
}

TEST(CodecTest, RefusesInvalidNamesAnywhere) {
  EXPECT_TRUE(
      Contains(PatchedError(1, R"({"table":"Orders"})"), "table name \"Orders\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(0, R"({"table":"a.b"})"), "table name \"a.b\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(0, R"({"schema":[{"name":"Amount","type":"DOUBLE"}]})"),
                       "column name \"Amount\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(4, R"({"set":{"Amount":{"literal":1}}})"),
                       "column name \"Amount\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(6, R"({"function":"Region-Totals"})"),
                       "function name \"Region-Totals\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(9, R"({"name":"Ref"})"), "attachment name \"Ref\" is invalid"));
  EXPECT_TRUE(Contains(PatchedError(9, R"({"path":"../../etc/passwd"})"), "contains \"..\""));
  EXPECT_TRUE(
      Contains(PatchedError(1, R"({"table":5})"), "field \"table\" must be a string, got 5"));
}

TEST(CodecTest, RefusesInvalidExpressions) {
  EXPECT_TRUE(Contains(
      PatchedError(5, R"({"where":{"call":"lesser","args":[{"field":"a"},{"literal":1}]}})"),
      "\"where\": unknown function \"lesser\": use one of"));
  EXPECT_TRUE(Contains(PatchedError(4, R"({"set":{"amount":{"call":"multiply","args":[]}}})"),
                       "\"set\" of column \"amount\": multiply(): multiply takes 2 arguments"));
  EXPECT_TRUE(Contains(PatchedError(4, R"({"set":{"amount":5}})"),
                       "\"set\" of column \"amount\": expression 5 is malformed"));
  EXPECT_TRUE(
      Contains(PatchedError(4, R"({"where":{"field":"a","literal":1}})"), "\"where\": expression"));
}

TEST(CodecTest, RefusesOtherBadArguments) {
  EXPECT_TRUE(
      Contains(PatchedError(4, R"({"set":{"amount":null}})"), "must be a non-empty object"));
  EXPECT_TRUE(Contains(PatchedError(6, R"({"args":[1,2]})"),
                       "field \"args\" must be an object of named arguments"));
  EXPECT_TRUE(Contains(PatchedError(7, R"({"sql":"  "})"), "field \"sql\" is empty"));
  EXPECT_TRUE(Contains(PatchedError(7, R"({"sql":5})"), "field \"sql\" must be a string"));
  EXPECT_EQ(PatchedError(0, R"({"engine":"sqlite"})"),
            "engine \"sqlite\" is not supported: use \"duckdb\" (the default) or \"arrow\"");
  EXPECT_TRUE(Contains(PatchedError(0, R"({"primary_key":["nope"]})"),
                       "primary key column \"nope\" is not a column of table orders"));
}

TEST(CodecTest, NullFieldsCountAsAbsent) {
  Request request = Decode(R"({"request_id":"r","model":"m","op":"snapshot","table":null,
      "rows":null})");
  EXPECT_EQ(request.op, Op::kSnapshot);
  Request update = Decode(R"({"request_id":"r","model":"m","op":"update","table":"t",
      "set":{"a":{"literal":null}},"where":null})");
  EXPECT_FALSE(update.where.has_value());
  EXPECT_EQ(update.set[0].second, Expression::Literal(nullptr));
}

}  // namespace
}  // namespace teatree
