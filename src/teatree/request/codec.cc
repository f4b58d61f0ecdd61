#include "teatree/request/codec.h"

#include <arrow/util/base64.h>

#include <algorithm>

#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/request/message_internal.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using nlohmann::json;
using request_internal::JsonKind;
using request_internal::Quoted;
using request_internal::Snippet;

constexpr std::string_view kEnvelopeFields[] = {"request_id", "model", "op"};

struct OpFields {
  Op op;
  std::vector<std::string_view> required;
  std::vector<std::string_view> optional;
};

const std::vector<OpFields>& AllOpFields() {
  static const std::vector<OpFields> fields = {
      {Op::kCreateTable, {"table", "schema"}, {"primary_key", "engine"}},
      {Op::kAppend, {"table"}, {"rows", "rows_ipc", "source"}},
      {Op::kUpsert, {"table"}, {"rows", "rows_ipc", "source"}},
      {Op::kUpdate, {"table", "set"}, {"where"}},
      {Op::kDelete, {"table", "where"}, {}},
      {Op::kInvoke, {"function"}, {"args"}},
      {Op::kQuery, {"sql"}, {"page_rows"}},
      {Op::kSnapshot, {}, {}},
      {Op::kAttach, {"name", "path"}, {}},
      {Op::kDropTable, {"table"}, {}},
      {Op::kAlterTable, {"table", "changes"}, {}},
  };
  return fields;
}

const OpFields& FieldsOf(Op op) {
  for (const auto& fields : AllOpFields()) {
    if (fields.op == op) return fields;
  }
  return AllOpFields().front();
}

bool Contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsEnvelopeField(std::string_view key) {
  return std::find(std::begin(kEnvelopeFields), std::end(kEnvelopeFields), key) !=
         std::end(kEnvelopeFields);
}

bool IsKnownField(std::string_view key) {
  if (IsEnvelopeField(key)) return true;
  for (const auto& fields : AllOpFields()) {
    if (Contains(fields.required, key) || Contains(fields.optional, key)) return true;
  }
  return false;
}

// "op update takes table, set and optionally where".
std::string DescribeOp(const OpFields& fields) {
  std::vector<std::string> required(fields.required.begin(), fields.required.end());
  std::vector<std::string> optional(fields.optional.begin(), fields.optional.end());
  std::string text = "op " + std::string(OpName(fields.op)) + " takes ";
  if (required.empty() && optional.empty()) return text + "no fields besides request_id, model, op";
  text += request_internal::Join(required);
  if (!optional.empty()) {
    text += std::string(required.empty() ? "" : " and ") + "optionally " +
            request_internal::Join(optional);
  }
  return text;
}

// ---------------------------------------------------------------------------------------
// Parsing the text.

Result<json> ParseObject(std::string_view text) {
  ARROW_ASSIGN_OR_RAISE(
      json parsed, ParseJson(text, "request",
                             {.max_bytes = kMaxRequestBytes, .max_depth = kMaxRequestJsonDepth}));
  if (!parsed.is_object()) {
    return Status::Invalid(
        "request must be a JSON object like {\"request_id\": \"r1\", "
        "\"model\": \"sales\", \"op\": \"snapshot\"}, got ",
        JsonKind(parsed), ": ", Snippet(parsed));
  }
  // A null field is an absent one: clients often serialize unset optionals as null.
  for (auto it = parsed.begin(); it != parsed.end();) {
    it = it->is_null() ? parsed.erase(it) : std::next(it);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------
// Fields.

const json* Find(const json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

Result<std::string> StringField(const json& request, std::string_view key) {
  const json* value = Find(request, key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) {
    return Status::Invalid("field ", Quoted(key), " must be a string, got ", Snippet(*value));
  }
  return value->get<std::string>();
}

Result<std::string> NameField(const json& request, std::string_view key, std::string_view kind) {
  ARROW_ASSIGN_OR_RAISE(std::string name, StringField(request, key));
  ARROW_RETURN_NOT_OK(ValidateName(kind, name));
  return name;
}

Status CheckFields(const json& request, Op op) {
  const OpFields& fields = FieldsOf(op);
  std::vector<std::string> unknown;
  for (const auto& item : request.items()) {
    if (!IsKnownField(item.key())) unknown.push_back(Quoted(item.key()));
  }
  if (!unknown.empty()) {
    return Status::Invalid("unknown field", unknown.size() > 1 ? "s " : " ",
                           request_internal::Join(unknown), " in request: ", DescribeOp(fields));
  }
  for (const auto& item : request.items()) {
    const std::string& key = item.key();
    if (!IsEnvelopeField(key) && !Contains(fields.required, key) &&
        !Contains(fields.optional, key)) {
      return Status::Invalid("field ", Quoted(key), " is not allowed for op ", OpName(op), ": ",
                             DescribeOp(fields));
    }
  }
  for (const auto& key : fields.required) {
    if (!request.contains(key)) {
      return Status::Invalid("op ", OpName(op), " needs field ", Quoted(key),
                             op == Op::kDelete && key == "where"
                                 ? " (use {\"literal\": true} to delete every row)"
                                 : "",
                             ": ", DescribeOp(fields));
    }
  }
  return Status::OK();
}

// Refuses "..", NUL and control characters in a path, so a path cannot climb out of the
// directory the engine resolves it against. Where that directory is, is the engine's call.
Status ValidatePath(std::string_view field, std::string_view path) {
  if (path.empty()) return Status::Invalid("field ", Quoted(field), " is empty: give a file path");
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return Status::Invalid(field, " ", Quoted(path), " contains a control character");
    }
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") {
      return Status::Invalid(field, " ", Quoted(path),
                             " contains \"..\": paths may not leave their directory");
    }
    start = end + 1;
  }
  return Status::OK();
}

Result<std::optional<Expression>> ExpressionField(const json& request, std::string_view key,
                                                  std::string_view context) {
  const json* value = Find(request, key);
  if (value == nullptr) return std::optional<Expression>();
  auto expression = ParseExpression(*value);
  if (!expression.ok()) {
    return expression.status().WithMessage(context, ": ", expression.status().message());
  }
  return std::optional<Expression>(std::move(*expression));
}

// ---------------------------------------------------------------------------------------
// Per-op arguments.

Status DecodeCreateTable(const json& request, Request* out) {
  const json* key = Find(request, "primary_key");
  ARROW_ASSIGN_OR_RAISE(
      TableSchema schema,
      TableSchema::FromJson(out->table, *Find(request, "schema"), key ? *key : json()));
  out->schema = std::move(schema);
  ARROW_ASSIGN_OR_RAISE(out->engine, StringField(request, "engine"));
  if (!out->engine.empty() && out->engine != "duckdb" && out->engine != "arrow") {
    return Status::Invalid("engine ", Quoted(out->engine),
                           " is not supported: use \"duckdb\" (the default) or \"arrow\"");
  }
  return Status::OK();
}

Status CheckRows(const json& rows) {
  if (!rows.is_array() || rows.empty()) {
    return Status::Invalid(
        "field \"rows\" must be a non-empty array of rows, each an array of "
        "values in column order or an object by column name, got ",
        Snippet(rows));
  }
  const bool arrays = rows[0].is_array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& row = rows[i];
    if (!row.is_array() && !row.is_object()) {
      return Status::Invalid("row ", i + 1, " of \"rows\" is ", Snippet(row),
                             ": each row must be an array of values or an object by column name");
    }
    if (row.is_array() != arrays) {
      return Status::Invalid("\"rows\" mixes arrays and objects: row 1 is ", JsonKind(rows[0]),
                             ", row ", i + 1, " is ", JsonKind(row), "; use one form for all rows");
    }
    for (const auto& item : row.items()) {
      if (arrays) break;
      Status valid = ValidateName("column", item.key());
      if (!valid.ok()) return valid.WithMessage("row ", i + 1, ": ", valid.message());
    }
  }
  return Status::OK();
}

Status DecodeSource(const json& source, Request* out) {
  const json* format = source.is_object() ? Find(source, "format") : nullptr;
  const json* path = source.is_object() ? Find(source, "path") : nullptr;
  const json* staged = source.is_object() ? Find(source, "staged") : nullptr;
  const json* where = path != nullptr ? path : staged;
  if (format == nullptr || where == nullptr || (path != nullptr && staged != nullptr) ||
      source.size() != 2 || !format->is_string() || !where->is_string()) {
    return Status::Invalid(
        "field \"source\" must be {\"format\": \"parquet\", \"path\": "
        "\"in/orders.parquet\"} (a file in the server's input directory) or {\"format\": "
        "\"parquet\", \"staged\": \"<id>\"} (an upload), got ",
        Snippet(source));
  }
  SourceRef ref{.format = format->get<std::string>()};
  if (ref.format != "parquet" && ref.format != "csv" && ref.format != "arrow" &&
      ref.format != "json") {
    return Status::Invalid("source format ", Quoted(ref.format),
                           " is not supported: use \"parquet\", \"csv\", \"arrow\" or \"json\"");
  }
  if (path != nullptr) {
    ref.path = path->get<std::string>();
    ARROW_RETURN_NOT_OK(ValidatePath("source path", ref.path));
  } else {
    ref.staged = staged->get<std::string>();
    ARROW_RETURN_NOT_OK(ValidateStagedId(ref.staged));
  }
  out->source = std::move(ref);
  return Status::OK();
}

Status DecodeRowsIpc(const json& value, Request* out) {
  if (!value.is_string()) {
    return Status::Invalid(
        "field \"rows_ipc\" must be a base64 string of an Arrow IPC stream, "
        "got ",
        Snippet(value));
  }
  auto bytes = arrow::util::base64_decode(value.get<std::string>());
  if (!bytes.ok()) {
    return Status::Invalid("field \"rows_ipc\" is not valid base64 (", bytes.status().message(),
                           "): encode the Arrow IPC stream bytes "
                           "with standard base64 and padding");
  }
  if (bytes->empty())
    return Status::Invalid("field \"rows_ipc\" is empty: send an Arrow IPC stream");
  out->rows_ipc = std::move(*bytes);
  return Status::OK();
}

Status DecodeRowPayload(const json& request, Request* out) {
  std::vector<std::string> given;
  for (std::string_view key : {"rows", "rows_ipc", "source"}) {
    if (request.contains(key)) given.push_back(Quoted(key));
  }
  if (given.size() != 1) {
    return Status::Invalid("op ", OpName(out->op), " takes exactly one of \"rows\", \"rows_ipc\" ",
                           "and \"source\", got ",
                           given.empty() ? "none" : request_internal::Join(given, " and "));
  }
  if (const json* rows = Find(request, "rows")) {
    ARROW_RETURN_NOT_OK(CheckRows(*rows));
    out->rows = *rows;
  }
  if (const json* ipc = Find(request, "rows_ipc")) {
    ARROW_RETURN_NOT_OK(DecodeRowsIpc(*ipc, out));
  }
  if (const json* source = Find(request, "source")) {
    ARROW_RETURN_NOT_OK(DecodeSource(*source, out));
  }
  return Status::OK();
}

Status DecodeUpdate(const json& request, Request* out) {
  const json& set = *Find(request, "set");
  if (!set.is_object() || set.empty()) {
    return Status::Invalid(
        "field \"set\" must be a non-empty object of column: expression, e.g. "
        "{\"amount\": {\"literal\": 0}}, got ",
        Snippet(set));
  }
  for (const auto& item : set.items()) {
    ARROW_RETURN_NOT_OK(ValidateName("column", item.key()));
    auto value = ParseExpression(item.value());
    if (!value.ok()) {
      return value.status().WithMessage("\"set\" of column ", Quoted(item.key()), ": ",
                                        value.status().message());
    }
    out->set.emplace_back(item.key(), std::move(*value));
  }
  std::sort(out->set.begin(), out->set.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  ARROW_ASSIGN_OR_RAISE(out->where, ExpressionField(request, "where", "\"where\""));
  return Status::OK();
}

Status DecodeInvoke(const json& request, Request* out) {
  ARROW_ASSIGN_OR_RAISE(out->function, NameField(request, "function", "function"));
  const json* args = Find(request, "args");
  out->args = args ? *args : json::object();
  if (!out->args.is_object()) {
    return Status::Invalid(
        "field \"args\" must be an object of named arguments, e.g. "
        "{\"min_amount\": 2}, got ",
        Snippet(out->args));
  }
  return Status::OK();
}

Status DecodeQuery(const json& request, Request* out) {
  ARROW_ASSIGN_OR_RAISE(out->sql, StringField(request, "sql"));
  if (out->sql.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Invalid("field \"sql\" is empty: give the query to run");
  }
  if (const json* page_rows = Find(request, "page_rows")) {
    // Unsigned first: a huge unsigned value would wrap to a negative int64_t.
    const bool in_range = page_rows->is_number_unsigned()
                              ? page_rows->get<uint64_t>() >= 1 &&
                                    page_rows->get<uint64_t>() <= uint64_t{kMaxPageRows}
                              : page_rows->is_number_integer() && page_rows->get<int64_t>() >= 1 &&
                                    page_rows->get<int64_t>() <= kMaxPageRows;
    if (!in_range) {
      return Status::Invalid("page_rows must be an integer from 1 to ", kMaxPageRows, ", got ",
                             Snippet(*page_rows));
    }
    out->page_rows = page_rows->get<int64_t>();
  }
  return Status::OK();
}

Status DecodeArguments(const json& request, Request* out) {
  if (request.contains("table")) {
    ARROW_ASSIGN_OR_RAISE(out->table, NameField(request, "table", "table"));
  }
  switch (out->op) {
    case Op::kCreateTable:
      return DecodeCreateTable(request, out);
    case Op::kAppend:
    case Op::kUpsert:
      return DecodeRowPayload(request, out);
    case Op::kUpdate:
      return DecodeUpdate(request, out);
    case Op::kDelete: {
      ARROW_ASSIGN_OR_RAISE(out->where, ExpressionField(request, "where", "\"where\""));
      return Status::OK();
    }
    case Op::kInvoke:
      return DecodeInvoke(request, out);
    case Op::kQuery:
      return DecodeQuery(request, out);
    case Op::kSnapshot:
      return Status::OK();
    case Op::kAttach: {
      ARROW_ASSIGN_OR_RAISE(out->name, NameField(request, "name", "attachment"));
      ARROW_ASSIGN_OR_RAISE(out->path, StringField(request, "path"));
      return ValidatePath("attach path", out->path);
    }
    case Op::kDropTable:
      return Status::OK();
    case Op::kAlterTable: {
      ARROW_ASSIGN_OR_RAISE(out->changes,
                            ColumnChangesFromJson(out->table, *Find(request, "changes")));
      return Status::OK();
    }
  }
  return Status::OK();
}

Status DecodeEnvelope(const json& request, Request* out) {
  ARROW_ASSIGN_OR_RAISE(out->request_id, StringField(request, "request_id"));
  ARROW_RETURN_NOT_OK(ValidateRequestId(out->request_id));
  if (!request.contains("model")) {
    return Status::Invalid("request ", out->request_id,
                           " is missing model: name the model it is for, e.g. \"model\": "
                           "\"sales\"");
  }
  ARROW_ASSIGN_OR_RAISE(out->model, NameField(request, "model", "model"));
  ARROW_ASSIGN_OR_RAISE(std::string op, StringField(request, "op"));
  if (op.empty()) {
    std::vector<std::string> ops;
    for (const auto& fields : AllOpFields()) ops.emplace_back(OpName(fields.op));
    return Status::Invalid("request ", out->request_id, " is missing op: use one of ",
                           request_internal::Join(ops));
  }
  ARROW_ASSIGN_OR_RAISE(out->op, ParseOp(op));
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Encoding.

json CanonicalJson(const Request& request, bool with_id) {
  json out = {{"model", request.model}, {"op", OpName(request.op)}};
  if (with_id) out["request_id"] = request.request_id;
  if (!request.table.empty()) out["table"] = request.table;
  if (request.schema) {
    json schema = request.schema->ToJson();
    out["schema"] = std::move(schema["schema"]);
    out["primary_key"] = std::move(schema["primary_key"]);
  }
  if (!request.engine.empty()) out["engine"] = request.engine;
  if (!request.rows.is_null()) out["rows"] = request.rows;
  if (!request.rows_ipc.empty()) out["rows_ipc"] = arrow::util::base64_encode(request.rows_ipc);
  if (request.source) {
    out["source"] = {{"format", request.source->format}};
    if (request.source->staged.empty()) {
      out["source"]["path"] = request.source->path;
    } else {
      out["source"]["staged"] = request.source->staged;
    }
  }
  if (!request.set.empty()) {
    json& set = out["set"] = json::object();
    for (const auto& [column, value] : request.set) set[column] = value.ToJson();
  }
  if (request.where) out["where"] = request.where->ToJson();
  if (!request.changes.empty()) {
    json& changes = out["changes"] = json::array();
    for (const auto& change : request.changes) changes.push_back(change.ToJson());
  }
  if (request.op == Op::kInvoke) {
    out["function"] = request.function;
    out["args"] = request.args.is_null() ? json::object() : request.args;
  }
  if (request.op == Op::kQuery) {
    out["sql"] = request.sql;
    out["page_rows"] = request.page_rows;
  }
  if (request.op == Op::kAttach) {
    out["name"] = request.name;
    out["path"] = request.path;
  }
  return out;
}

}  // namespace

Result<Request> DecodeRequest(std::string_view json_text) {
  ARROW_ASSIGN_OR_RAISE(json request, ParseObject(json_text));
  Request out;
  ARROW_RETURN_NOT_OK(DecodeEnvelope(request, &out));
  ARROW_RETURN_NOT_OK(CheckFields(request, out.op));
  ARROW_RETURN_NOT_OK(DecodeArguments(request, &out));
  out.payload_hash = PayloadHash(out);
  return out;
}

std::string EncodeRequest(const Request& request) {
  return DumpJson(CanonicalJson(request, /*with_id=*/true));
}

std::string PayloadHash(const Request& request) {
  // Arrow IPC rows are hashed as the bytes they are, not as the base64 text the canonical
  // JSON would carry: a 10,000-row payload is hashed once, not encoded again first.
  json canonical = CanonicalJson(request, /*with_id=*/false);
  canonical.erase("rows_ipc");
  return Sha256Hex({DumpJson(canonical), std::string_view("\0", 1), request.rows_ipc});
}

}  // namespace teatree
