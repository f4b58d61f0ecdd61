#include "teatree/engine/duckdb/read_only_sql.h"

#include <arrow/array.h>
#include <arrow/scalar.h>
#include <arrow/table.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "teatree/common/json_text.h"
#include "teatree/engine/duckdb/duckdb_database.h"

namespace teatree {

struct ReadOnlyCheck::Scope {
  std::set<std::string> tables;    // The model's tables (and, while checking, CTEs).
  std::set<std::string> catalogs;  // The model's attachments.
};

namespace {

// Table functions that compute rows without touching anything outside the query.
constexpr std::array<std::string_view, 3> kAllowedTableFunctions = {"range", "generate_series",
                                                                    "unnest"};
// Scalar functions that would show the server's settings (paths among them) or environment.
constexpr std::array<std::string_view, 4> kRefusedFunctions = {"current_setting", "getenv",
                                                               "getvariable", "current_schemas"};
// DuckDB's parse tree of a statement at its expression depth limit (1,000) nests a few
// thousand JSON levels; deeper is no statement DuckDB would run.
constexpr int kMaxTreeDepth = 8192;

Status Refuse(const std::string& why) {
  return Status::Invalid("query refused: ", why,
                         ". The read path runs one SELECT on the model's tables; changes go "
                         "through the request queue (teatree submit)");
}

/// A name as DuckDB would print it in a message, shortened and made printable.
std::string Shown(std::string_view name) {
  constexpr size_t kMaxShown = 80;
  std::string shown = ValidUtf8(name.substr(0, kMaxShown));
  return "'" + shown + (name.size() > kMaxShown ? "...'" : "'");
}

/// node[key] if it is a string, else "" (keys such as "type" also hold objects in places).
std::string StringAt(const nlohmann::json& node, const char* key) {
  auto it = node.find(key);
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

using Scope = ReadOnlyCheck::Scope;

/// The names of the CTEs a query node defines (its "cte_map"), if any.
std::vector<std::string> CteNames(const nlohmann::json& node) {
  std::vector<std::string> names;
  auto map = node.find("cte_map");
  if (map == node.end() || !map->is_object()) return names;
  auto entries = map->find("map");
  if (entries == map->end() || !entries->is_array()) return names;
  for (const auto& entry : *entries) {
    if (entry.is_object()) names.push_back(StringAt(entry, "key"));
  }
  return names;
}

Status CheckTable(const nlohmann::json& node, const Scope& scope) {
  const std::string catalog = StringAt(node, "catalog_name");
  const std::string schema = StringAt(node, "schema_name");
  const std::string name = StringAt(node, "table_name");
  if (name.find_first_of("./\\:*?") != std::string::npos) {
    return Refuse(Shown(name) + " names a file or URL, which cannot be read");
  }
  if (catalog.empty() && (schema.empty() || schema == "main")) {
    if (scope.tables.contains(name)) return Status::OK();
  } else if (!catalog.empty() && scope.catalogs.contains(catalog) && schema != "pg_catalog" &&
             schema != "information_schema") {
    return Status::OK();  // A table of an attachment, a read-only file the model attached.
  } else if (catalog.empty() && scope.catalogs.contains(schema)) {
    return Status::OK();  // <attachment>.<table>: DuckDB reads the attachment's main schema.
  }
  std::string tables;
  for (const auto& table : scope.tables) tables += (tables.empty() ? "" : ", ") + table;
  return Refuse(
      "there is no table " +
      Shown((catalog.empty() ? "" : catalog + ".") + (schema.empty() ? "" : schema + ".") + name) +
      " in this model (its tables: " + (tables.empty() ? "none yet" : tables) + ")");
}

Status CheckChildren(const nlohmann::json& node, const Scope& scope);

/// Walks the parsed statement and refuses what reads outside the model.
Status CheckNode(const nlohmann::json& node, const Scope& scope) {
  if (node.is_array()) {
    for (const auto& child : node) ARROW_RETURN_NOT_OK(CheckNode(child, scope));
    return Status::OK();
  }
  if (!node.is_object()) return Status::OK();
  // A CTE's name means the CTE in the node that defines it and below, and nowhere else:
  // elsewhere the same name may be one of DuckDB's catalog views.
  if (auto ctes = CteNames(node); !ctes.empty()) {
    Scope inner = scope;
    inner.tables.insert(ctes.begin(), ctes.end());
    return CheckChildren(node, inner);
  }
  const std::string type = StringAt(node, "type");
  if (type == "TABLE_FUNCTION") {
    auto function = node.find("function");
    const std::string name =
        function != node.end() ? StringAt(*function, "function_name") : std::string();
    if (std::find(kAllowedTableFunctions.begin(), kAllowedTableFunctions.end(), name) ==
        kAllowedTableFunctions.end()) {
      return Refuse("table function " + ValidUtf8(name.substr(0, 80)) +
                    "() is not allowed (only range, generate_series and unnest): files, URLs "
                    "and other databases cannot be read");
    }
  } else if (type == "BASE_TABLE") {
    ARROW_RETURN_NOT_OK(CheckTable(node, scope));
  } else if (StringAt(node, "class") == "FUNCTION") {
    const std::string name = StringAt(node, "function_name");
    if (std::find(kRefusedFunctions.begin(), kRefusedFunctions.end(), name) !=
        kRefusedFunctions.end()) {
      return Refuse("function " + Shown(name) + " is not allowed: the server's settings are not " +
                    "readable");
    }
  }
  return CheckChildren(node, scope);
}

Status CheckChildren(const nlohmann::json& node, const Scope& scope) {
  for (const auto& [key, child] : node.items()) ARROW_RETURN_NOT_OK(CheckNode(child, scope));
  return Status::OK();
}

Result<std::vector<std::string>> StringsAt(const arrow::Table& table, int column) {
  std::vector<std::string> values;
  for (const auto& chunk : table.column(column)->chunks()) {
    const auto& strings = static_cast<const arrow::StringArray&>(*chunk);
    for (int64_t i = 0; i < strings.length(); ++i) values.emplace_back(strings.GetView(i));
  }
  return values;
}

}  // namespace

Result<std::unique_ptr<ReadOnlyCheck>> ReadOnlyCheck::Make(DuckConnection& connection,
                                                           Options options) {
  ARROW_ASSIGN_OR_RAISE(auto serialize,
                        connection.Prepare("SELECT json_serialize_sql($sql::VARCHAR)"));
  // The model's tables, and the catalogs it attached (every database but its own and DuckDB's).
  ARROW_ASSIGN_OR_RAISE(
      auto scope, connection.Prepare("SELECT name, false FROM _teatree_tables UNION ALL "
                                     "SELECT database_name, true FROM duckdb_databases() "
                                     "WHERE NOT internal AND database_name <> current_database()"));
  return std::unique_ptr<ReadOnlyCheck>(
      new ReadOnlyCheck(connection, std::move(serialize), std::move(scope), std::move(options)));
}

ReadOnlyCheck::ReadOnlyCheck(DuckConnection& connection, std::unique_ptr<DuckStatement> serialize,
                             std::unique_ptr<DuckStatement> scope, Options options)
    : connection_(connection),
      serialize_(std::move(serialize)),
      scope_(std::move(scope)),
      options_(std::move(options)) {}

bool ReadOnlyCheck::KnownHolds(int64_t version) const {
  if (!known_ || !options_.remember) return false;
  if (!options_.tables_dropped_at) return true;
  // A drop at a version after known_version_ may have removed a remembered table, and a
  // version before it may lack one created since.
  return version >= known_version_ && options_.tables_dropped_at->load() <= known_version_;
}

ReadOnlyCheck::~ReadOnlyCheck() = default;

Status ReadOnlyCheck::Check(const std::string& sql, int64_t version) {
  // DuckDB's C API takes statements as C strings: a NUL would end the statement it runs
  // before the end of the one checked here.
  if (sql.find('\0') != std::string::npos) return Refuse("the SQL contains a NUL character");
  ARROW_ASSIGN_OR_RAISE(auto serialized, serialize_->Query({{"sql", sql}}));
  const auto& column = static_cast<const arrow::StringArray&>(*serialized->column(0)->chunk(0));
  auto parsed = ParseJson(column.GetView(0), "DuckDB's parse tree",
                          {.max_bytes = size_t{1} << 30, .max_depth = kMaxTreeDepth});
  if (!parsed.ok()) return Refuse("the statement nests too deeply");
  const nlohmann::json& tree = *parsed;
  if (!tree.is_object()) return Status::Invalid("cannot check the query: no parse tree");
  if (tree.value("error", true)) {
    if (StringAt(tree, "error_type") == "parser") {
      return Status::Invalid("invalid SQL: ", ValidUtf8(StringAt(tree, "error_message")));
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
    return Refuse("only SELECT is allowed, not " + ValidUtf8(verb.substr(0, 40)));
  }
  const auto& statements = tree["statements"];
  if (!statements.is_array() || statements.size() != 1) {
    return Refuse(std::to_string(statements.size()) +
                  " statements were sent (stacked statements are refused)");
  }
  if (KnownHolds(version) && CheckNode(statements, *known_).ok()) return Status::OK();
  ARROW_RETURN_NOT_OK(ReadScope());
  known_version_ = version;
  return CheckNode(statements, *known_);
}

Status ReadOnlyCheck::ReadScope() {
  auto scope = std::make_unique<Scope>();
  ARROW_ASSIGN_OR_RAISE(auto names, scope_->Query());
  ARROW_ASSIGN_OR_RAISE(auto values, StringsAt(*names, 0));
  auto is_catalog = names->column(1);
  for (size_t i = 0; i < values.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto flag, is_catalog->GetScalar(static_cast<int64_t>(i)));
    auto& target =
        static_cast<const arrow::BooleanScalar&>(*flag).value ? scope->catalogs : scope->tables;
    target.insert(std::move(values[i]));
  }
  known_ = std::move(scope);
  return Status::OK();
}

}  // namespace teatree
