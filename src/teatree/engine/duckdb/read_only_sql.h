#pragma once

#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

class DuckConnection;
class DuckStatement;

/// The statement check of the read path: accepts exactly one SELECT that reads only the
/// model's tables (and the table functions range, generate_series and unnest), and refuses
/// with a message saying why everything else: writes, DDL, ATTACH, COPY, EXPORT, PRAGMA, SET,
/// INSTALL/LOAD, CALL, stacked statements, and every file, URL or SQL reader such as
/// read_csv('/etc/passwd'), FROM 'data.parquet' or query('…'). Parses with DuckDB's own
/// parser (json_serialize_sql), binds nothing and runs nothing. Belongs to its connection:
/// one thread at a time, and must not outlive it.
class ReadOnlyCheck {
 public:
  static Result<std::unique_ptr<ReadOnlyCheck>> Make(DuckConnection& connection);
  ~ReadOnlyCheck();

  Status Check(const std::string& sql);

 private:
  ReadOnlyCheck(DuckConnection& connection, std::unique_ptr<DuckStatement> serialize);
  DuckConnection& connection_;
  std::unique_ptr<DuckStatement> serialize_;  // Prepared once: the check runs on every read.
};

}  // namespace teatree
