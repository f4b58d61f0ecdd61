#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace arrow {
class DataType;
}  // namespace arrow

namespace teatree {

/// A column type of a Teatree table: the subset of DuckDB types that both engines store the
/// same way, with one Arrow type each (see ToArrow()). A value type: copy freely; LIST
/// elements are shared immutably between copies. Thread-safe for concurrent reads.
struct ColumnType {
  enum class Kind {
    kBoolean,
    kInteger,
    kBigint,
    kDouble,
    kDecimal,
    kVarchar,
    kBlob,
    kDate,
    kTimestamp,
    kTimestampTz,
    kList
  };

  Kind kind = Kind::kBoolean;
  /// DECIMAL only: 1..38 digits in all, `scale` of them after the point.
  int precision = 0;
  int scale = 0;
  /// LIST only: the element type (never null for a LIST).
  std::shared_ptr<const ColumnType> element;

  static ColumnType Of(Kind kind) { return ColumnType{kind}; }
  static ColumnType Decimal(int precision, int scale) {
    return ColumnType{Kind::kDecimal, precision, scale};
  }
  static ColumnType List(ColumnType element) {
    return ColumnType{Kind::kList, 0, 0, std::make_shared<const ColumnType>(std::move(element))};
  }

  /// DuckDB's spelling: "BIGINT", "DECIMAL(10,2)", "VARCHAR[]", "INTEGER[][]".
  std::string ToString() const;
  /// boolean, int32, int64, float64, decimal128(p,s), utf8, binary, date32, timestamp(us),
  /// timestamp(us, "UTC"), list(element).
  std::shared_ptr<arrow::DataType> ToArrow() const;
  bool operator==(const ColumnType& other) const;
  /// INTEGER, BIGINT, DOUBLE, DECIMAL.
  bool is_numeric() const;
  /// DATE, TIMESTAMP, TIMESTAMPTZ.
  bool is_temporal() const;
};

/// Parses a type as written in a create_table schema, case-insensitively: BOOLEAN, INTEGER,
/// BIGINT, DOUBLE, DECIMAL(p,s) (1 <= p <= 38, 0 <= s <= p; DECIMAL alone is DECIMAL(18,3)
/// and DECIMAL(p) is DECIMAL(p,0), as in DuckDB), VARCHAR, BLOB, DATE, TIMESTAMP, TIMESTAMPTZ,
/// and lists of these written LIST(T) or T[] (nested up to 8 deep). Thread-safe.
Result<ColumnType> ParseColumnType(std::string_view text);

/// The inverse of ColumnType::ToArrow(). Also accepts any time zone on a timestamp (the values
/// are UTC instants either way) and any name for a list's child field (DuckDB calls it "l").
/// Other Arrow types (int8, large_utf8, timestamp[ns], dictionaries, ...) are refused.
Result<ColumnType> ColumnTypeFromArrow(const arrow::DataType& type);

}  // namespace teatree
