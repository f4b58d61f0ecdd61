#include "teatree/request/column_change.h"

#include <algorithm>

#include "teatree/request/message_internal.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using Kind = ColumnChange::Kind;
using request_internal::Quoted;
using request_internal::Snippet;

/// Each kind of change: the key that names it and the one other key it takes, if any.
struct ChangeForm {
  Kind kind;
  std::string_view verb;
  std::string_view argument;  // "type", "to" or empty.
};

constexpr ChangeForm kForms[] = {
    {Kind::kAdd, "add_column", "type"},
    {Kind::kDrop, "drop_column", ""},
    {Kind::kRename, "rename_column", "to"},
    {Kind::kAlterType, "alter_column", "type"},
};

constexpr std::string_view kFormsText =
    "write each change as {\"add_column\": \"note\", \"type\": \"VARCHAR\"}, "
    "{\"drop_column\": \"note\"}, {\"rename_column\": \"qty\", \"to\": \"quantity\"} or "
    "{\"alter_column\": \"qty\", \"type\": \"BIGINT\"}";

Status BadChange(std::string_view table, size_t index, const nlohmann::json& entry) {
  return Status::Invalid("change ", index + 1, " of table ", table, " is ", Snippet(entry), ": ",
                         kFormsText);
}

const ChangeForm& FormOf(Kind kind) {
  for (const auto& form : kForms) {
    if (form.kind == kind) return form;
  }
  return kForms[0];
}

/// The form `entry` uses: exactly one verb key, its argument, and nothing else.
const ChangeForm* MatchForm(const nlohmann::json& entry) {
  if (!entry.is_object()) return nullptr;
  const ChangeForm* match = nullptr;
  for (const auto& form : kForms) {
    if (!entry.contains(form.verb)) continue;
    if (match != nullptr) return nullptr;
    match = &form;
  }
  if (match == nullptr) return nullptr;
  const size_t expected = match->argument.empty() ? 1 : 2;
  if (entry.size() != expected) return nullptr;
  if (!entry[match->verb].is_string()) return nullptr;
  if (!match->argument.empty() &&
      (!entry.contains(match->argument) || !entry[match->argument].is_string())) {
    return nullptr;
  }
  return match;
}

Result<ColumnChange> ChangeFromJson(std::string_view table, size_t index,
                                    const nlohmann::json& entry) {
  const ChangeForm* form = MatchForm(entry);
  if (form == nullptr) return BadChange(table, index, entry);
  ColumnChange change;
  change.kind = form->kind;
  change.column = entry[form->verb].get<std::string>();
  ARROW_RETURN_NOT_OK(ValidateName("column", change.column));
  if (form->argument == "to") {
    change.to = entry["to"].get<std::string>();
    ARROW_RETURN_NOT_OK(ValidateName("column", change.to));
  } else if (form->argument == "type") {
    auto type = ParseColumnType(entry["type"].get<std::string>());
    if (!type.ok()) {
      return type.status().WithMessage(form->verb, " ", Quoted(change.column), " of table ", table,
                                       ": ", type.status().message());
    }
    change.type = std::move(*type);
  }
  return change;
}

/// The integer digits a column of `type` (INTEGER, BIGINT or DECIMAL) may need.
int IntegerDigits(const ColumnType& type) {
  switch (type.kind) {
    case ColumnType::Kind::kInteger:
      return 10;  // 2147483647
    case ColumnType::Kind::kBigint:
      return 19;  // 9223372036854775807
    default:
      return type.precision - type.scale;
  }
}

std::string ColumnList(const TableSchema& schema) {
  return schema.columns.empty() ? std::string("none") : schema.ColumnNames();
}

Status UnknownColumn(const TableSchema& schema, const ColumnChange& change) {
  return Status::Invalid(FormOf(change.kind).verb, ": table ", schema.name, " has no column ",
                         Quoted(change.column), " (its columns: ", ColumnList(schema), ")");
}

Status ColumnExists(const TableSchema& schema, std::string_view verb, std::string_view name) {
  return Status::Invalid(verb, ": table ", schema.name, " already has a column ", Quoted(name),
                         ": choose another name, or drop that column first");
}

Status RefuseKey(const TableSchema& schema, const ColumnChange& change, std::string_view what) {
  return Status::Invalid(FormOf(change.kind).verb, ": ", Quoted(change.column),
                         " is part of the primary key of table ", schema.name, " and ", what,
                         "; create a new table to change the key");
}

Status DropColumn(const ColumnChange& change, TableSchema& schema) {
  if (schema.IsKey(change.column)) return RefuseKey(schema, change, "cannot be dropped");
  if (schema.columns.size() == 1) {
    return Status::Invalid("drop_column: ", Quoted(change.column), " is the last column of table ",
                           schema.name, "; use drop_table to drop the table");
  }
  std::erase_if(schema.columns, [&](const ColumnSpec& spec) { return spec.name == change.column; });
  return Status::OK();
}

Status RenameColumn(const ColumnChange& change, TableSchema& schema) {
  if (schema.FindColumn(change.to) != nullptr) {
    return ColumnExists(schema, "rename_column", change.to);
  }
  // The key follows its column: both engines keep the constraint under the new name.
  std::replace(schema.primary_key.begin(), schema.primary_key.end(), change.column, change.to);
  for (auto& column : schema.columns) {
    if (column.name == change.column) column.name = change.to;
  }
  return Status::OK();
}

Status AlterColumnType(const ColumnChange& change, TableSchema& schema) {
  if (schema.IsKey(change.column)) return RefuseKey(schema, change, "its type cannot change");
  ColumnSpec& column =
      *std::find_if(schema.columns.begin(), schema.columns.end(),
                    [&](const ColumnSpec& spec) { return spec.name == change.column; });
  if (column.type == change.type) {
    return Status::Invalid("alter_column: column ", Quoted(change.column), " of table ",
                           schema.name, " is ", change.type.ToString(), " already");
  }
  if (!IsWidening(column.type, change.type)) {
    return Status::Invalid(
        "alter_column: column ", Quoted(change.column), " of table ", schema.name,
        " cannot change from ", column.type.ToString(), " to ", change.type.ToString(),
        ": only widening changes that keep every value exactly are allowed (INTEGER to BIGINT, "
        "DOUBLE or DECIMAL(p,s) with p-s >= 10; BIGINT to DECIMAL(p,s) with p-s >= 19; DECIMAL "
        "to a DECIMAL with no fewer digits before and after the point; lists of these). "
        "Otherwise add a column of the new type, fill it with update, and drop this one");
  }
  column.type = change.type;
  return Status::OK();
}

/// Applies one change to `schema`, or says why it does not apply.
Status ApplyChange(const ColumnChange& change, TableSchema& schema) {
  const bool exists = schema.FindColumn(change.column) != nullptr;
  if (change.kind == Kind::kAdd) {
    if (exists) return ColumnExists(schema, "add_column", change.column);
    schema.columns.push_back({change.column, change.type});
    return Status::OK();
  }
  if (!exists) return UnknownColumn(schema, change);
  switch (change.kind) {
    case Kind::kDrop:
      return DropColumn(change, schema);
    case Kind::kRename:
      return RenameColumn(change, schema);
    case Kind::kAlterType:
      return AlterColumnType(change, schema);
    case Kind::kAdd:
      break;
  }
  return Status::OK();
}

}  // namespace

nlohmann::json ColumnChange::ToJson() const {
  const ChangeForm& form = FormOf(kind);
  nlohmann::json out = {{std::string(form.verb), column}};
  if (form.argument == "to") out["to"] = to;
  if (form.argument == "type") out["type"] = type.ToString();
  return out;
}

Result<std::vector<ColumnChange>> ColumnChangesFromJson(std::string_view table,
                                                        const nlohmann::json& changes) {
  if (!changes.is_array() || changes.empty() || changes.size() > kMaxColumnChanges) {
    return Status::Invalid("field \"changes\" of alter_table ", table, " must be an array of 1 to ",
                           kMaxColumnChanges, " changes, got ", Snippet(changes), "; ", kFormsText);
  }
  std::vector<ColumnChange> out;
  out.reserve(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(ColumnChange change, ChangeFromJson(table, i, changes[i]));
    out.push_back(std::move(change));
  }
  return out;
}

bool IsWidening(const ColumnType& from, const ColumnType& to) {
  using K = ColumnType::Kind;
  if (from.kind == K::kList || to.kind == K::kList) {
    return from.kind == K::kList && to.kind == K::kList && from.element && to.element &&
           IsWidening(*from.element, *to.element);
  }
  switch (from.kind) {
    case K::kInteger:
      if (to.kind == K::kBigint || to.kind == K::kDouble) return true;
      break;
    case K::kBigint:
      break;
    case K::kDecimal:
      if (to.kind == K::kDecimal && to.scale < from.scale) return false;
      break;
    default:
      return false;
  }
  return to.kind == K::kDecimal && IntegerDigits(to) >= IntegerDigits(from) && !(from == to);
}

Result<TableSchema> AlterSchema(const TableSchema& schema,
                                const std::vector<ColumnChange>& changes) {
  if (changes.empty()) {
    return Status::Invalid("alter_table of table ", schema.name, " needs at least one change");
  }
  TableSchema altered = schema;
  for (size_t i = 0; i < changes.size(); ++i) {
    Status applied = ApplyChange(changes[i], altered);
    if (!applied.ok()) {
      return applied.WithMessage("alter_table ", schema.name, ", change ", i + 1, " of ",
                                 changes.size(), ": ", applied.message(),
                                 changes.size() > 1 ? " (no change of this request was made)" : "");
    }
  }
  return altered;
}

std::vector<std::string> ColumnOrigins(const TableSchema& schema,
                                       const std::vector<ColumnChange>& changes) {
  struct Column {
    std::string name, origin;
  };
  std::vector<Column> columns;
  for (const auto& column : schema.columns) columns.push_back({column.name, column.name});
  for (const auto& change : changes) {
    auto named = [&](const Column& column) { return column.name == change.column; };
    switch (change.kind) {
      case Kind::kAdd:
        columns.push_back({change.column, ""});
        break;
      case Kind::kDrop:
        std::erase_if(columns, named);
        break;
      case Kind::kRename:
        for (auto& column : columns) {
          if (named(column)) column.name = change.to;
        }
        break;
      case Kind::kAlterType:
        break;
    }
  }
  std::vector<std::string> origins;
  origins.reserve(columns.size());
  for (auto& column : columns) origins.push_back(std::move(column.origin));
  return origins;
}

}  // namespace teatree
