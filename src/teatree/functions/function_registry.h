#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/functions/function_context.h"
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

/// A native function's body: computes its result from the model's tables with Arrow compute
/// and Acero, recording its steps in the context.
using NativeBody = std::function<Result<std::shared_ptr<arrow::Table>>(FunctionContext&)>;

/// A named function `invoke` calls (and reads, unless it writes): exactly one of
///  - `sql`, with `$param` placeholders that are bound, never spliced into the text;
///  - `builder`, which makes that SQL from the arguments;
///  - `native`, C++ over Arrow datasets, run by either engine.
/// With `write`, its result goes into a table instead of back to the caller.
struct ModelFunction {
  std::string name;
  std::string description;
  std::vector<FunctionParam> params;
  std::string sql;
  SqlBuilder builder;
  NativeBody native;
  std::optional<FunctionWrite> write;
};

/// The functions `invoke` can call, by name: built-ins plus those registered at start,
/// loaded from a JSON file or from plugins. Thread-safe for reads once set up; register
/// before sharing.
class FunctionRegistry {
 public:
  /// A registry holding the built-ins: SQL (row_counts, table_stats, top_n) and native
  /// (scan, rollup, rolling, enrich; see native_builtins.h).
  static FunctionRegistry WithBuiltins();

  /// Adds a function; refuses invalid names, invalid parameters and duplicates.
  Status Register(ModelFunction function);
  /// Loads a plugin (see plugin.h) and registers its functions; refuses a library that is no
  /// Teatree plugin or was built for another ABI version.
  Status LoadPlugin(const std::filesystem::path& library);
  /// Loads {"functions": [{"name", "description", "params": [{"name","type","default"}],
  /// "sql", "write": {"table", "mode": "replace"|"append"}}, ...]}.
  Status LoadFile(const std::filesystem::path& path);
  Status LoadJson(const nlohmann::json& json, const std::string& origin);

  const ModelFunction* Find(const std::string& name) const;
  /// The function `name`, or an error naming the registered ones.
  Result<const ModelFunction*> Lookup(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, ModelFunction> functions_;
};

/// Runs `function`'s native body in `context`. Its result reads as a query's: every column
/// may be NULL, whatever the body passed through from key columns.
Result<std::shared_ptr<arrow::Table>> RunNativeFunction(const ModelFunction& function,
                                                        FunctionContext& context);

/// Checks `args` (a JSON object) against the function's parameters: no unknown names, every
/// required one present, values of the declared types (a JSON object or array given for a
/// VARCHAR is taken as its JSON text); fills in defaults. Returns the complete argument
/// object.
Result<nlohmann::json> BindArguments(const ModelFunction& function, const nlohmann::json& args);

}  // namespace teatree
