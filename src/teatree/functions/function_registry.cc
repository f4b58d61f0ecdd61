#include "teatree/functions/function_registry.h"

#include <arrow/api.h>
#include <dlfcn.h>

#include <fstream>
#include <sstream>

#include "teatree/common/json_text.h"
#include "teatree/common/sql_quote.h"
#include "teatree/functions/native_builtins.h"
#include "teatree/functions/plugin.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

Status CheckArgumentType(const std::string& function, const FunctionParam& param,
                         const nlohmann::json& value) {
  if (value.is_null()) return Status::OK();
  using Kind = ColumnType::Kind;
  bool ok = false;
  switch (param.type.kind) {
    case Kind::kBoolean:
      ok = value.is_boolean();
      break;
    case Kind::kInteger:
    case Kind::kBigint:
      ok = value.is_number_integer();
      break;
    case Kind::kDouble:
    case Kind::kDecimal:
      ok = value.is_number() || (param.type.kind == Kind::kDecimal && value.is_string());
      break;
    case Kind::kList:
      ok = value.is_array();
      break;
    default:  // VARCHAR, BLOB and temporal types arrive as text.
      ok = value.is_string();
  }
  if (ok) return Status::OK();
  return Status::Invalid("argument ", param.name, " of ", function, " must be ",
                         param.type.ToString(), ", got ", DumpJson(value));
}

Result<FunctionParam> ParseParam(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object() || !json.contains("name") || !json["name"].is_string() ||
      !json.contains("type") || !json["type"].is_string()) {
    return Status::Invalid(where, ": each parameter needs a \"name\" and a \"type\"");
  }
  FunctionParam param;
  param.name = json["name"].get<std::string>();
  ARROW_RETURN_NOT_OK(ValidateName("parameter", param.name));
  ARROW_ASSIGN_OR_RAISE(param.type, ParseColumnType(json["type"].get<std::string>()));
  if (json.contains("default")) param.default_value = json["default"];
  return param;
}

Result<ModelFunction> ParseFunction(const nlohmann::json& json, const std::string& origin) {
  if (!json.is_object() || !json.contains("name") || !json["name"].is_string() ||
      !json.contains("sql") || !json["sql"].is_string()) {
    return Status::Invalid(origin, ": each function needs a \"name\" and its \"sql\"");
  }
  ModelFunction function;
  function.name = json["name"].get<std::string>();
  function.sql = json["sql"].get<std::string>();
  const std::string where = origin + ": function " + function.name;
  if (json.contains("description") && json["description"].is_string()) {
    function.description = json["description"].get<std::string>();
  }
  if (json.contains("params")) {
    if (!json["params"].is_array()) return Status::Invalid(where, ": params must be a list");
    for (const auto& param : json["params"]) {
      ARROW_ASSIGN_OR_RAISE(auto parsed, ParseParam(param, where));
      function.params.push_back(std::move(parsed));
    }
  }
  if (json.contains("write")) {
    const auto& write = json["write"];
    if (!write.is_object() || !write.contains("table") || !write["table"].is_string()) {
      return Status::Invalid(where, ": write needs a \"table\"");
    }
    std::string mode = write.contains("mode") && write["mode"].is_string()
                           ? write["mode"].get<std::string>()
                           : "replace";
    if (mode != "replace" && mode != "append") {
      return Status::Invalid(where, ": write mode \"", mode, "\" is not replace or append");
    }
    function.write = FunctionWrite{write["table"].get<std::string>(), mode == "replace"};
  }
  return function;
}

Result<std::string> TableArgument(const nlohmann::json& args,
                                  const std::vector<std::string>& tables) {
  const std::string table = args["table"].get<std::string>();
  if (std::find(tables.begin(), tables.end(), table) == tables.end()) {
    return Status::Invalid("table \"", table, "\" does not exist in this model");
  }
  return SqlIdentifier(table);
}

}  // namespace

FunctionRegistry FunctionRegistry::WithBuiltins() {
  FunctionRegistry registry;
  const ColumnType varchar{ColumnType::Kind::kVarchar};
  const ColumnType bigint{ColumnType::Kind::kBigint};
  const ColumnType boolean{ColumnType::Kind::kBoolean};
  (void)registry.Register(
      {.name = "row_counts",
       .description = "every table of the model with its row count",
       .builder = [](const nlohmann::json&,
                     const std::vector<std::string>& tables) -> Result<std::string> {
         if (tables.empty())
           return std::string(
               "SELECT NULL::VARCHAR AS \"table\", 0::BIGINT AS \"rows\" WHERE false");
         std::string sql;
         for (const auto& table : tables) {
           sql += (sql.empty() ? "" : " UNION ALL ") + std::string("SELECT ") +
                  SqlStringLiteral(table) + " AS \"table\", count(*)::BIGINT AS \"rows\" FROM " +
                  SqlIdentifier(table);
         }
         return sql + " ORDER BY 1";
       }});
  (void)registry.Register(
      {.name = "table_stats",
       .description = "per-column statistics of a table: type, min, max, distinct, nulls",
       .params = {{"table", varchar, nullptr}},
       .builder = [](const nlohmann::json& args,
                     const std::vector<std::string>& tables) -> Result<std::string> {
         ARROW_ASSIGN_OR_RAISE(auto table, TableArgument(args, tables));
         return "SELECT column_name, column_type, min, max, approx_unique, null_percentage, "
                "count FROM (SUMMARIZE " +
                table + ")";
       }});
  (void)registry.Register(
      {.name = "top_n",
       .description = "the n rows of a table with the largest (or smallest) value of a column",
       .params = {{"table", varchar, nullptr},
                  {"column", varchar, nullptr},
                  {"n", bigint, 10},
                  {"descending", boolean, true}},
       .builder = [](const nlohmann::json& args,
                     const std::vector<std::string>& tables) -> Result<std::string> {
         ARROW_ASSIGN_OR_RAISE(auto table, TableArgument(args, tables));
         const std::string column = args["column"].get<std::string>();
         ARROW_RETURN_NOT_OK(ValidateName("column", column));
         return "SELECT * FROM " + table + " ORDER BY " + SqlIdentifier(column) +
                (args["descending"].get<bool>() ? " DESC" : " ASC") + " LIMIT $n";
       }});
  for (auto& function : NativeBuiltins()) (void)registry.Register(std::move(function));
  return registry;
}

Status FunctionRegistry::Register(ModelFunction function) {
  ARROW_RETURN_NOT_OK(ValidateName("function", function.name));
  const int bodies = !function.sql.empty() + static_cast<bool>(function.builder) +
                     static_cast<bool>(function.native);
  if (bodies != 1) {
    return Status::Invalid("function ", function.name,
                           " needs exactly one of sql, a builder or a native body");
  }
  for (const auto& param : function.params) {
    ARROW_RETURN_NOT_OK(ValidateName("parameter", param.name));
    ARROW_RETURN_NOT_OK(CheckArgumentType(function.name, param, param.default_value));
  }
  if (function.write) ARROW_RETURN_NOT_OK(ValidateName("table", function.write->table));
  if (functions_.count(function.name) != 0) {
    return Status::Invalid("function ", function.name,
                           " is registered twice: give each function its own name");
  }
  std::string name = function.name;
  functions_.emplace(std::move(name), std::move(function));
  return Status::OK();
}

Status FunctionRegistry::LoadPlugin(const std::filesystem::path& library) {
  const std::string path = library.string();
  // Never closed: the registered functions run the library's code until the process ends.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return Status::IOError("cannot load plugin ", path, ": ", dlerror());
  auto* abi = reinterpret_cast<int (*)()>(dlsym(handle, kPluginAbiSymbol));
  auto* functions = reinterpret_cast<void (*)(std::vector<ModelFunction>*)>(
      dlsym(handle, kPluginFunctionsSymbol));
  if (abi == nullptr || functions == nullptr) {
    return Status::Invalid(path, " is not a Teatree plugin: it does not define ", kPluginAbiSymbol,
                           " and ", kPluginFunctionsSymbol,
                           " (define them with TEATREE_PLUGIN from teatree/functions/plugin.h)");
  }
  if (abi() != kPluginAbiVersion) {
    return Status::Invalid("plugin ", path, " was built for plugin ABI version ", abi(),
                           "; this server speaks version ", kPluginAbiVersion,
                           ": rebuild it against this server's headers");
  }
  std::vector<ModelFunction> defined;
  functions(&defined);
  for (auto& function : defined) {
    Status registered = Register(std::move(function));
    if (!registered.ok()) {
      return registered.WithMessage("plugin ", path, ": ", registered.message());
    }
  }
  return Status::OK();
}

Status FunctionRegistry::LoadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read functions file ", path.string());
  std::stringstream text;
  text << in.rdbuf();
  auto json = ParseJson(text.str(), "functions file " + path.string());
  if (!json.ok()) return json.status();
  return LoadJson(*json, path.string());
}

Status FunctionRegistry::LoadJson(const nlohmann::json& json, const std::string& origin) {
  if (!json.is_object() || !json.contains("functions") || !json["functions"].is_array()) {
    return Status::Invalid(origin, ": expected {\"functions\": [...]}");
  }
  for (const auto& entry : json["functions"]) {
    ARROW_ASSIGN_OR_RAISE(auto function, ParseFunction(entry, origin));
    ARROW_RETURN_NOT_OK(Register(std::move(function)));
  }
  return Status::OK();
}

const ModelFunction* FunctionRegistry::Find(const std::string& name) const {
  auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : &it->second;
}

Result<const ModelFunction*> FunctionRegistry::Lookup(const std::string& name) const {
  if (const ModelFunction* function = Find(name)) return function;
  std::string names;
  for (const auto& known : Names()) names += (names.empty() ? "" : ", ") + known;
  return Status::Invalid("function ", name, " is not registered (known: ", names, ")");
}

std::vector<std::string> FunctionRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, function] : functions_) names.push_back(name);
  return names;
}

Result<std::shared_ptr<arrow::Table>> RunNativeFunction(const ModelFunction& function,
                                                        FunctionContext& context) {
  ARROW_ASSIGN_OR_RAISE(auto result, function.native(context));
  arrow::FieldVector fields;
  for (const auto& field : result->schema()->fields()) fields.push_back(field->WithNullable(true));
  return arrow::Table::Make(arrow::schema(fields, result->schema()->metadata()), result->columns(),
                            result->num_rows());
}

Result<nlohmann::json> BindArguments(const ModelFunction& function, const nlohmann::json& args) {
  if (!args.is_null() && !args.is_object()) {
    return Status::Invalid("args of ", function.name, " must be an object of name: value");
  }
  nlohmann::json bound = nlohmann::json::object();
  if (args.is_object()) {
    for (const auto& item : args.items()) {
      const std::string& name = item.key();
      const nlohmann::json& value = item.value();
      auto it = std::find_if(function.params.begin(), function.params.end(),
                             [&](const FunctionParam& p) { return p.name == name; });
      if (it == function.params.end()) {
        std::string known;
        for (const auto& p : function.params) known += (known.empty() ? "" : ", ") + p.name;
        return Status::Invalid(function.name, " has no parameter \"", name,
                               "\" (it takes: ", known.empty() ? "none" : known, ")");
      }
      if (it->type.kind == ColumnType::Kind::kVarchar && (value.is_object() || value.is_array())) {
        bound[name] = DumpJson(value);  // Its JSON text (e.g. scan's `where` expression).
        continue;
      }
      ARROW_RETURN_NOT_OK(CheckArgumentType(function.name, *it, value));
      bound[name] = value;
    }
  }
  for (const auto& param : function.params) {
    if (bound.contains(param.name)) continue;
    if (param.default_value.is_null()) {
      return Status::Invalid(function.name, " needs argument \"", param.name, "\" (",
                             param.type.ToString(), ")");
    }
    bound[param.name] = param.default_value;
  }
  return bound;
}

}  // namespace teatree
