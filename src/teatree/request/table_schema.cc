#include "teatree/request/table_schema.h"

#include <arrow/api.h>

#include <algorithm>

#include "teatree/request/message_internal.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using request_internal::Quoted;
using request_internal::Snippet;

Result<ColumnSpec> ColumnFromJson(std::string_view table, size_t index,
                                  const nlohmann::json& entry) {
  const auto name = entry.is_object() ? entry.find("name") : entry.end();
  const auto type = entry.is_object() ? entry.find("type") : entry.end();
  if (!entry.is_object() || entry.size() != 2 || name == entry.end() || type == entry.end() ||
      !name->is_string() || !type->is_string()) {
    return Status::Invalid("schema entry ", index + 1, " of table ", table, " is ", Snippet(entry),
                           ": write each column as {\"name\": \"amount\", \"type\": \"DOUBLE\"}");
  }
  ColumnSpec column;
  column.name = name->get<std::string>();
  ARROW_RETURN_NOT_OK(ValidateName("column", column.name));
  auto parsed = ParseColumnType(type->get<std::string>());
  if (!parsed.ok()) {
    return parsed.status().WithMessage("column ", Quoted(column.name), " of table ", table, ": ",
                                       parsed.status().message());
  }
  column.type = std::move(*parsed);
  return column;
}

Status KeyFromJson(const nlohmann::json& primary_key, TableSchema* schema) {
  if (primary_key.is_null()) return Status::OK();
  if (!primary_key.is_array()) {
    return Status::Invalid("primary_key of table ", schema->name, " must be an array of column ",
                           "names, got ", Snippet(primary_key));
  }
  for (const auto& entry : primary_key) {
    if (!entry.is_string()) {
      return Status::Invalid("primary_key of table ", schema->name,
                             " must be an array of column names, got ", Snippet(entry));
    }
    const std::string key = entry.get<std::string>();
    const ColumnSpec* column = schema->FindColumn(key);
    if (column == nullptr) {
      return Status::Invalid("primary key column ", Quoted(key), " is not a column of table ",
                             schema->name, " (columns: ", schema->ColumnNames(), ")");
    }
    if (schema->IsKey(key)) {
      return Status::Invalid("primary key column ", Quoted(key), " of table ", schema->name,
                             " is listed twice");
    }
    if (column->type.kind == ColumnType::Kind::kList) {
      return Status::Invalid("primary key column ", Quoted(key), " of table ", schema->name, " is ",
                             column->type.ToString(),
                             ": a LIST cannot be part of a key; choose scalar columns");
    }
    schema->primary_key.push_back(key);
  }
  return Status::OK();
}

}  // namespace

const ColumnSpec* TableSchema::FindColumn(std::string_view column) const {
  for (const auto& spec : columns) {
    if (spec.name == column) return &spec;
  }
  return nullptr;
}

bool TableSchema::IsKey(std::string_view column) const {
  return std::find(primary_key.begin(), primary_key.end(), column) != primary_key.end();
}

std::shared_ptr<arrow::Schema> TableSchema::ToArrow() const {
  arrow::FieldVector fields;
  fields.reserve(columns.size());
  for (const auto& column : columns) {
    fields.push_back(arrow::field(column.name, column.type.ToArrow(), !IsKey(column.name)));
  }
  return arrow::schema(std::move(fields));
}

nlohmann::json TableSchema::ToJson() const {
  nlohmann::json schema = nlohmann::json::array();
  for (const auto& column : columns) {
    schema.push_back({{"name", column.name}, {"type", column.type.ToString()}});
  }
  return {{"schema", std::move(schema)}, {"primary_key", primary_key}};
}

std::string TableSchema::ColumnNames() const {
  std::vector<std::string> names;
  for (const auto& column : columns) names.push_back(column.name);
  return request_internal::Join(names);
}

Result<TableSchema> TableSchema::FromJson(std::string_view table, const nlohmann::json& schema,
                                          const nlohmann::json& primary_key) {
  ARROW_RETURN_NOT_OK(ValidateName("table", table));
  TableSchema result;
  result.name = std::string(table);
  if (!schema.is_array() || schema.empty()) {
    return Status::Invalid("schema of table ", table,
                           " must be a non-empty array of columns like [{\"name\": \"id\", "
                           "\"type\": \"BIGINT\"}], got ",
                           Snippet(schema));
  }
  for (size_t i = 0; i < schema.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(ColumnSpec column, ColumnFromJson(table, i, schema[i]));
    if (result.FindColumn(column.name) != nullptr) {
      return Status::Invalid("column ", Quoted(column.name), " appears twice in table ", table,
                             ": column names must be unique");
    }
    result.columns.push_back(std::move(column));
  }
  ARROW_RETURN_NOT_OK(KeyFromJson(primary_key, &result));
  return result;
}

}  // namespace teatree
