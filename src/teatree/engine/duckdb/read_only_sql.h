#pragma once

#include <string>

#include "teatree/common/status.h"

namespace teatree {

class DuckConnection;

/// The statement check of the read path: accepts exactly one SELECT that reads only the
/// model's tables (and the table functions range, generate_series and unnest), and refuses
/// with a message saying why everything else: writes, DDL, ATTACH, COPY, EXPORT, PRAGMA, SET,
/// INSTALL/LOAD, CALL, stacked statements, and every file, URL or SQL reader such as
/// read_csv('/etc/passwd'), FROM 'data.parquet' or query('…'). Parses with `connection`
/// (json_serialize_sql), binds nothing and runs nothing.
Status CheckReadOnlySql(DuckConnection& connection, const std::string& sql);

}  // namespace teatree
