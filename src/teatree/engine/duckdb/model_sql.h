#pragma once

#include <string>

#include "teatree/request/column_change.h"
#include "teatree/request/table_schema.h"

namespace teatree {

/// The SQL of a Teatree DuckDB file's bookkeeping tables (`_teatree_version` at 0,
/// `_teatree_requests`, `_teatree_tables`, `_teatree_attachments`), created if missing. Any
/// DuckDB file Teatree writes has them, whichever engine it comes from.
extern const char* const kBookkeepingSql;

/// CREATE TABLE for a model table: its columns with their DuckDB types, key columns NOT NULL,
/// and its PRIMARY KEY.
std::string CreateTableSql(const TableSchema& schema);

/// The ALTER TABLE statement that makes `change` to table `table`.
std::string AlterColumnSql(const std::string& table, const ColumnChange& change);

}  // namespace teatree
