#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/request/column_type.h"

namespace teatree {

/// A typed parameter of a function. A null `default_value` makes it required.
struct FunctionParam {  // NOLINT(bugprone-exception-escape): copies throw only on OOM.
  std::string name;
  ColumnType type;
  nlohmann::json default_value;
};

/// Where a function's result goes when it writes a table instead of returning rows.
struct FunctionWrite {
  std::string table;
  /// true: replace the table with the result; false: append the result to it.
  bool replace = true;
};

/// Builds a built-in's SQL from its (validated) arguments and the model's tables; identifier
/// arguments are checked against `tables` and quoted, values stay `$name` parameters.
using SqlBuilder = std::function<Result<std::string>(const nlohmann::json& args,
                                                     const std::vector<std::string>& tables)>;

/// A named SQL function: `sql` uses `$param` placeholders that are bound, never spliced into
/// the text. Either `sql` or `builder` is set.
struct SqlFunction {
  std::string name;
  std::string description;
  std::vector<FunctionParam> params;
  std::string sql;
  SqlBuilder builder;
  std::optional<FunctionWrite> write;
};

/// The functions `invoke` can call, by name: built-ins plus those registered at start or
/// loaded from a JSON file. Thread-safe for reads once set up; register before sharing.
class FunctionRegistry {
 public:
  /// A registry holding the built-ins (row_counts, table_stats, top_n).
  static FunctionRegistry WithBuiltins();

  /// Adds a function; refuses invalid names, invalid parameters and duplicates.
  Status Register(SqlFunction function);
  /// Loads {"functions": [{"name", "description", "params": [{"name","type","default"}],
  /// "sql", "write": {"table", "mode": "replace"|"append"}}, ...]}.
  Status LoadFile(const std::filesystem::path& path);
  Status LoadJson(const nlohmann::json& json, const std::string& origin);

  const SqlFunction* Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, SqlFunction> functions_;
};

/// Checks `args` (a JSON object) against the function's parameters: no unknown names, every
/// required one present, values of the declared types; fills in defaults. Returns the
/// complete argument object.
Result<nlohmann::json> BindArguments(const SqlFunction& function, const nlohmann::json& args);

}  // namespace teatree
