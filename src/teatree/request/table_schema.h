#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/column_type.h"

namespace arrow {
class Schema;
}  // namespace arrow

namespace teatree {

/// One column of a table.
struct ColumnSpec {
  std::string name;
  ColumnType type;

  bool operator==(const ColumnSpec& other) const = default;
};

/// The schema of a Teatree table: its columns in order and its primary key (possibly empty:
/// then upsert is not available). Build it with FromJson(), which validates it; a value type,
/// safe for concurrent reads.
struct TableSchema {
  std::string name;
  std::vector<ColumnSpec> columns;
  std::vector<std::string> primary_key;

  /// The column called `column`, or nullptr. The pointer lives as long as this schema.
  const ColumnSpec* FindColumn(std::string_view column) const;
  /// Whether `column` is part of the primary key.
  bool IsKey(std::string_view column) const;
  /// The Arrow schema of the table's data: one field per column, key columns non-nullable.
  std::shared_ptr<arrow::Schema> ToArrow() const;
  /// {"primary_key": [...], "schema": [{"name": ..., "type": ...}, ...]}, the form FromJson
  /// reads (the create_table request fields).
  nlohmann::json ToJson() const;
  /// "id, amount, region": the column names, for error messages.
  std::string ColumnNames() const;

  /// Validates and builds a schema: `table` a valid name; `schema` a non-empty array of
  /// {"name", "type"} objects with valid, unique column names and types ParseColumnType
  /// accepts; `primary_key` null (no key) or an array of distinct existing column names,
  /// none of them a LIST.
  static Result<TableSchema> FromJson(std::string_view table, const nlohmann::json& schema,
                                      const nlohmann::json& primary_key);

  bool operator==(const TableSchema& other) const = default;
};

}  // namespace teatree
