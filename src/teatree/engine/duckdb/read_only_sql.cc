#include "teatree/engine/duckdb/read_only_sql.h"

#include <arrow/array.h>
#include <arrow/table.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <string_view>

#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree {
namespace {

// Table functions that compute rows without touching anything outside the query.
constexpr std::array<std::string_view, 3> kAllowedTableFunctions = {"range", "generate_series",
                                                                    "unnest"};

Status Refuse(const std::string& why) {
  return Status::Invalid("query refused: ", why,
                         ". The read path runs one SELECT on the model's tables; changes go "
                         "through the request queue (teatree submit)");
}

/// A table reference by plain name (a model table or a CTE); anything with a path or URL
/// character in it is DuckDB's replacement scan of a file.
bool IsPlainName(const std::string& name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), [](char c) {
    return c == '.' || c == '/' || c == '\\' || c == ':' || c == '*' || c == '?';
  });
}

/// node[key] if it is a string, else "" (keys such as "type" also hold objects in places).
std::string StringAt(const nlohmann::json& node, const char* key) {
  auto it = node.find(key);
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

/// Walks the parsed statement and refuses what reads outside the model.
Status CheckNode(const nlohmann::json& node) {
  if (node.is_array()) {
    for (const auto& child : node) ARROW_RETURN_NOT_OK(CheckNode(child));
    return Status::OK();
  }
  if (!node.is_object()) return Status::OK();
  const std::string type = StringAt(node, "type");
  if (type == "TABLE_FUNCTION") {
    auto function = node.find("function");
    const std::string name =
        function != node.end() ? StringAt(*function, "function_name") : std::string();
    if (std::find(kAllowedTableFunctions.begin(), kAllowedTableFunctions.end(), name) ==
        kAllowedTableFunctions.end()) {
      return Refuse("table function " + name +
                    "() is not allowed (only range, generate_series and unnest): files, URLs "
                    "and other databases cannot be read");
    }
  } else if (type == "BASE_TABLE") {
    const std::string name = StringAt(node, "table_name");
    if (!IsPlainName(name)) {
      return Refuse("'" + name + "' names a file or URL, which cannot be read");
    }
  }
  for (const auto& [key, child] : node.items()) ARROW_RETURN_NOT_OK(CheckNode(child));
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<ReadOnlyCheck>> ReadOnlyCheck::Make(DuckConnection& connection) {
  ARROW_ASSIGN_OR_RAISE(auto serialize,
                        connection.Prepare("SELECT json_serialize_sql($sql::VARCHAR)"));
  return std::unique_ptr<ReadOnlyCheck>(new ReadOnlyCheck(connection, std::move(serialize)));
}

ReadOnlyCheck::ReadOnlyCheck(DuckConnection& connection, std::unique_ptr<DuckStatement> serialize)
    : connection_(connection), serialize_(std::move(serialize)) {}

ReadOnlyCheck::~ReadOnlyCheck() = default;

Status ReadOnlyCheck::Check(const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto serialized, serialize_->Query({{"sql", sql}}));
  const auto& column = static_cast<const arrow::StringArray&>(*serialized->column(0)->chunk(0));
  const nlohmann::json tree = nlohmann::json::parse(column.GetView(0), nullptr, false);
  if (tree.is_discarded() || !tree.is_object()) {
    return Status::Invalid("cannot check the query: DuckDB's parse tree is not JSON");
  }
  if (tree.value("error", true)) {
    if (StringAt(tree, "error_type") == "parser") {
      return Status::Invalid("invalid SQL: ", StringAt(tree, "error_message"));
    }
    // Not a SELECT: say which statement, and whether several were sent.
    ARROW_ASSIGN_OR_RAISE(size_t statements, connection_.CountStatements(sql));
    if (statements != 1) {
      return Refuse(std::to_string(statements) + " statements were sent (stacked statements " +
                    "are refused)");
    }
    const auto begin = sql.find_first_not_of(" \t\r\n(");
    std::string verb = begin == std::string::npos ? sql : sql.substr(begin);
    verb = verb.substr(0, verb.find_first_of(" \t\r\n;("));
    return Refuse("only SELECT is allowed, not " + verb);
  }
  const auto& statements = tree["statements"];
  if (!statements.is_array() || statements.size() != 1) {
    return Refuse(std::to_string(statements.size()) +
                  " statements were sent (stacked statements are refused)");
  }
  return CheckNode(statements);
}

}  // namespace teatree
