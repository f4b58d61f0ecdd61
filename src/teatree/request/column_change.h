#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/column_type.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// One change of an `alter_table` request, as its JSON says it:
///   {"add_column": "note", "type": "VARCHAR"}      a nullable column; existing rows read NULL
///   {"drop_column": "note"}
///   {"rename_column": "qty", "to": "quantity"}
///   {"alter_column": "qty", "type": "BIGINT"}      widening only (IsWidening)
/// Made only by ColumnChangesFromJson(), which checks the names and types: what is left to
/// check needs the table (AlterSchema). A value type, safe for concurrent reads.
struct ColumnChange {
  enum class Kind { kAdd, kDrop, kRename, kAlterType };

  Kind kind = Kind::kAdd;
  /// The column added, dropped, renamed or altered.
  std::string column;
  /// kRename: the new name.
  std::string to;
  /// kAdd, kAlterType: the column's (new) type.
  ColumnType type;

  /// The JSON form above, type in its canonical spelling (ColumnType::ToString()).
  nlohmann::json ToJson() const;

  bool operator==(const ColumnChange& other) const = default;
};

/// The most changes one alter_table may make.
inline constexpr size_t kMaxColumnChanges = 1000;

/// Reads the `changes` of an alter_table of `table`: a non-empty array of the forms
/// ColumnChange lists, each with valid names (ValidateName) and types (ParseColumnType), and
/// no other keys. Thread-safe.
Result<std::vector<ColumnChange>> ColumnChangesFromJson(std::string_view table,
                                                        const nlohmann::json& changes);

/// Whether a column of type `from` may become `to` in place: every value converts exactly, on
/// both engines, and reads the same afterwards. Allowed: INTEGER to BIGINT, to DOUBLE, or to
/// DECIMAL(p,s) with p - s >= 10; BIGINT to DECIMAL(p,s) with p - s >= 19; DECIMAL(p,s) to
/// DECIMAL(p2,s2) with s2 >= s and p2 - s2 >= p - s; a LIST to a LIST whose element type
/// widens. Nothing else: BIGINT or DECIMAL to DOUBLE may round, and a conversion to VARCHAR
/// would spell values differently on each engine.
bool IsWidening(const ColumnType& from, const ColumnType& to);

/// `schema` after `changes`, applied in order (a later change sees the earlier ones), or the
/// first refusal: an unknown column (naming the table's columns), adding or renaming to a name
/// the table has, dropping or changing the type of a key column, dropping the last column, a
/// type change that is not widening (naming both types). A key column may be renamed: the key
/// follows it. Thread-safe (pure function).
Result<TableSchema> AlterSchema(const TableSchema& schema,
                                const std::vector<ColumnChange>& changes);

/// For each column of AlterSchema(schema, changes), in order, the column of `schema` its values
/// come from (under its old name); empty for a column the changes add (or drop and add
/// again). `changes` must be valid for `schema` (AlterSchema succeeded). Thread-safe.
std::vector<std::string> ColumnOrigins(const TableSchema& schema,
                                       const std::vector<ColumnChange>& changes);

}  // namespace teatree
