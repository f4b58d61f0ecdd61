#include <arrow/compute/api.h>

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <unordered_set>

#include "teatree/common/steps.h"
#include "teatree/engine/arrow/table_changes_internal.h"
#include "teatree/engine/batch_screen.h"
#include "teatree/request/arrow_expression.h"

namespace teatree {

namespace cp = arrow::compute;

namespace {

/// The value ranges a file's statistics prove for its columns without NULLs.
std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> Ranges(const DataFile& file) {
  std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> ranges;
  for (const auto& [column, stats] : file.stats) {
    if (stats.nulls == 0) ranges[column] = {stats.min, stats.max};
  }
  return ranges;
}

/// True where each key column lies within the range it has in `rows`: a file whose
/// statistics rule this out shares no key with `rows`. Nothing when no key column has a range.
Result<std::optional<Expression>> KeyRange(const TableSchema& schema, const arrow::Table& rows) {
  std::vector<int> key_columns;
  for (const auto& key : schema.primary_key)
    key_columns.push_back(rows.schema()->GetFieldIndex(key));
  ARROW_ASSIGN_OR_RAISE(auto keys, rows.SelectColumns(key_columns));
  ARROW_ASSIGN_OR_RAISE(auto stats, ColumnStatsOf(*keys));
  std::vector<Expression> bounds;
  for (const auto& key : schema.primary_key) {
    auto it = stats.find(key);
    if (it == stats.end() || it->second.min.is_null() || it->second.max.is_null()) continue;
    bounds.push_back(Expression::Call(
        "greater_equal", {Expression::Field(key), Expression::Literal(it->second.min)}));
    bounds.push_back(Expression::Call(
        "less_equal", {Expression::Field(key), Expression::Literal(it->second.max)}));
  }
  if (bounds.empty()) return std::optional<Expression>();
  return Expression::Call("and", std::move(bounds));
}

/// Each row's key as one array: the key column itself, or, for a key of several columns,
/// their text joined by a unit separator.
Result<std::shared_ptr<arrow::Array>> KeysOf(const arrow::Table& rows, const TableSchema& schema) {
  std::vector<arrow::Datum> parts;
  for (const auto& key : schema.primary_key) {
    auto column = rows.GetColumnByName(key);
    if (column == nullptr) return Status::Invalid("key column ", key, " is missing");
    if (schema.primary_key.size() == 1) {
      if (column->num_chunks() == 1) return column->chunk(0);
      return arrow::Concatenate(column->chunks());
    }
    ARROW_ASSIGN_OR_RAISE(auto text, cp::Cast(column, arrow::utf8()));
    parts.push_back(std::move(text));
  }
  parts.emplace_back(std::make_shared<arrow::StringScalar>("\x1f"));
  ARROW_ASSIGN_OR_RAISE(auto joined, cp::CallFunction("binary_join_element_wise", parts));
  if (joined.is_array()) return joined.make_array();
  return arrow::Concatenate(joined.chunked_array()->chunks());
}

/// The key of `keys[i]` as a message shows it: "3", or "eu, 7" for a key of two columns.
std::string KeyText(const arrow::Array& keys, int64_t i) {
  auto scalar = keys.GetScalar(i);
  std::string text = scalar.ok() ? (*scalar)->ToString() : "?";
  for (size_t at; (at = text.find('\x1f')) != std::string::npos;) text.replace(at, 1, ", ");
  return text;
}

Status DuplicateKey(const arrow::Array& keys, int64_t i, const TableSchema& schema) {
  return Status::Invalid("duplicate key \"", KeyText(keys, i), "\" in table ", schema.name,
                         " (a row with this key exists: use upsert to replace it)");
}

/// Refuses keys that occur more than once.
Status RefuseRepeatedKeys(const arrow::Array& keys, const TableSchema& schema) {
  ARROW_ASSIGN_OR_RAISE(auto counts, cp::ValueCounts(keys));
  const auto& repeats = *std::static_pointer_cast<arrow::Int64Array>(counts->field(1));
  for (int64_t i = 0; i < repeats.length(); ++i) {
    if (repeats.Value(i) > 1) return DuplicateKey(*counts->field(0), i, schema);
  }
  return Status::OK();
}

Status RefuseNullKeys(const arrow::RecordBatch& rows, const TableSchema& schema) {
  for (const auto& key : schema.primary_key) {
    if (rows.GetColumnByName(key)->null_count() > 0) {
      return Status::Invalid("key column ", key, " of table ", schema.name,
                             " cannot be NULL: give every row a value for it");
    }
  }
  return Status::OK();
}

}  // namespace

/// Refuses rows whose key is NULL or repeats among them, among the rows appended earlier in
/// the batch (`pending`), or in `table`'s files, with Arrow compute hash lookups. Files whose
/// key statistics cannot hold the rows' keys are not read, so appending ever higher keys
/// reads no file.
Status CheckKeys(const ManifestStore& store, const TableManifest& table,
                 const std::vector<std::shared_ptr<arrow::RecordBatch>>& pending,
                 const std::shared_ptr<arrow::RecordBatch>& rows) {
  const TableSchema& schema = table.schema;
  if (schema.primary_key.empty() || rows->num_rows() == 0) return Status::OK();
  ARROW_RETURN_NOT_OK(RefuseNullKeys(*rows, schema));
  ARROW_ASSIGN_OR_RAISE(auto incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(auto keys, KeysOf(*incoming, schema));
  ARROW_RETURN_NOT_OK(RefuseRepeatedKeys(*keys, schema));
  ARROW_ASSIGN_OR_RAISE(const auto range, KeyRange(schema, *incoming));
  arrow::ArrayVector earlier;
  if (!pending.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto appended, arrow::Table::FromRecordBatches(pending));
    ARROW_ASSIGN_OR_RAISE(earlier.emplace_back(), KeysOf(*appended, schema));
  }
  for (const auto& file : table.files) {
    if (range) {
      auto may_match = MayMatch(*range, schema, Ranges(file));
      if (may_match.ok() && !*may_match) continue;
    }
    ARROW_ASSIGN_OR_RAISE(auto stored, store.ReadDataFile(file, schema.primary_key));
    ARROW_ASSIGN_OR_RAISE(earlier.emplace_back(), KeysOf(*stored, schema));
  }
  if (earlier.empty()) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(auto known, arrow::Concatenate(earlier));
  ARROW_ASSIGN_OR_RAISE(auto found, cp::IsIn(keys, cp::SetLookupOptions(known)));
  // array_as makes a new Array object: keep it, not a reference into a temporary.
  const auto hits = found.array_as<arrow::BooleanArray>();
  for (int64_t i = 0; i < hits->length(); ++i) {
    if (hits->Value(i)) return DuplicateKey(*keys, i, schema);
  }
  return Status::OK();
}

namespace {

/// The rows whose key does not occur again later among them: the last row of each key wins,
/// as if the rows were applied one after another.
Result<std::shared_ptr<arrow::RecordBatch>> LastRowPerKey(
    const std::shared_ptr<arrow::RecordBatch>& rows, const arrow::Array& keys) {
  ARROW_ASSIGN_OR_RAISE(auto distinct, cp::Unique(keys));
  if (distinct->length() == keys.length()) return rows;
  std::unordered_set<std::string> seen;
  std::vector<bool> keep(keys.length());
  for (int64_t i = keys.length() - 1; i >= 0; --i) keep[i] = seen.insert(KeyText(keys, i)).second;
  arrow::BooleanBuilder mask;
  ARROW_RETURN_NOT_OK(mask.AppendValues(keep));
  ARROW_ASSIGN_OR_RAISE(auto selection, mask.Finish());
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(rows, selection));
  return kept.record_batch();
}

}  // namespace

/// Writes the rows of `compaction.small` as one file.
Status Merge(ManifestStore& store, Compaction& compaction) {
  const auto start = StepRecorder::Clock::now();
  std::vector<std::shared_ptr<arrow::Table>> parts;
  for (const auto& file : compaction.small) {
    ARROW_ASSIGN_OR_RAISE(auto rows, store.ReadDataFile(file));
    parts.push_back(std::move(rows));
  }
  ARROW_ASSIGN_OR_RAISE(auto merged, arrow::ConcatenateTables(parts));
  ARROW_ASSIGN_OR_RAISE(compaction.merged, store.WriteDataFile(compaction.schema, *merged));
  compaction.ms =
      std::chrono::duration<double, std::milli>(StepRecorder::Clock::now() - start).count();
  return Status::OK();
}

/// Puts a finished merge into `table`: the merged file in place of the first small one, the
/// others dropped. False (and `table` unchanged) when a small file is no longer there (an
/// update or delete rewrote it meanwhile).
bool ApplyCompaction(const Compaction& compaction, TableManifest& table) {
  std::set<std::string> merged;
  for (const auto& file : compaction.small) merged.insert(file.path);
  size_t present = 0;
  for (const auto& file : table.files) present += merged.count(file.path);
  if (present != merged.size()) return false;
  std::vector<DataFile> files;
  bool placed = false;
  for (auto& file : table.files) {
    if (!merged.count(file.path)) {
      files.push_back(std::move(file));
    } else if (!placed) {
      files.push_back(compaction.merged);
      placed = true;
    }
  }
  table.files = std::move(files);
  return true;
}

/// The table a request names, in the version being built.
Result<TableManifest*> FindTable(Manifest& next, const Request& request) {
  auto it = next.tables.find(request.table);
  if (it == next.tables.end()) {
    return Status::Invalid("table ", request.table,
                           " does not exist: create it first with create_table");
  }
  return &it->second;
}

namespace {

/// `expression` evaluated over `rows` as an array (a constant one is repeated).
Result<std::shared_ptr<arrow::Array>> Evaluate(const cp::Expression& bound,
                                               const arrow::RecordBatch& rows) {
  ARROW_ASSIGN_OR_RAISE(auto value, cp::ExecuteScalarExpression(bound, cp::ExecBatch(rows)));
  if (value.is_array()) return value.make_array();
  return arrow::MakeArrayFromScalar(*value.scalar(), rows.num_rows());
}

/// A file's rows after a change, or null when the change leaves the file as it is.
using FileChange = std::function<Result<std::shared_ptr<arrow::RecordBatch>>(
    const std::shared_ptr<arrow::RecordBatch>& rows, int64_t* affected)>;

/// Copy-on-write over `table`'s files: a file whose statistics prove that `predicate`
/// (absent: every row) selects none of its rows is not even read; the others go through
/// `change`, and each one it changes is replaced by a new file of its rows (or dropped, when
/// none are left). Returns the rows `change` affected.
Result<int64_t> RewriteFiles(ManifestStore& store, const std::optional<Expression>& predicate,
                             TableManifest& table, const FileChange& change) {
  int64_t affected = 0;
  std::vector<DataFile> files;
  for (const auto& file : table.files) {
    bool may_match = true;
    if (predicate) {
      ARROW_ASSIGN_OR_RAISE(may_match, MayMatch(*predicate, table.schema, Ranges(file)));
    }
    std::shared_ptr<arrow::RecordBatch> changed;
    if (may_match) {
      ARROW_ASSIGN_OR_RAISE(auto rows, store.ReadDataFile(file));
      ARROW_ASSIGN_OR_RAISE(auto combined, rows->CombineChunksToBatch());
      ARROW_ASSIGN_OR_RAISE(changed, change(combined, &affected));
    }
    if (!changed) {
      files.push_back(file);
      continue;
    }
    if (changed->num_rows() == 0) continue;
    ARROW_ASSIGN_OR_RAISE(auto as_table, arrow::Table::FromRecordBatches({changed}));
    ARROW_ASSIGN_OR_RAISE(auto rewritten, store.WriteDataFile(table.schema, *as_table));
    files.push_back(std::move(rewritten));
  }
  table.files = std::move(files);
  return affected;
}

/// Where a predicate is TRUE (not FALSE, not NULL); every row without one.
Result<cp::Expression> Selected(const std::optional<Expression>& predicate,
                                const TableSchema& schema) {
  if (!predicate) return cp::literal(true);
  ARROW_ASSIGN_OR_RAISE(auto condition, ToArrowExpression(*predicate, schema));
  return cp::call("coalesce", {std::move(condition), cp::literal(false)});
}

}  // namespace

/// Upsert by key as copy-on-write: removes from `table`'s files the rows whose key `rows`
/// brings again (files whose key statistics rule that out are not read) and returns the rows
/// to add, the last one of each key.
Result<Upserted> UpsertRows(ManifestStore& store, TableManifest& table,
                            std::shared_ptr<arrow::RecordBatch> rows) {
  const TableSchema& schema = table.schema;
  ARROW_RETURN_NOT_OK(CheckUpsertKey(schema));
  ARROW_RETURN_NOT_OK(RefuseNullKeys(*rows, schema));
  ARROW_ASSIGN_OR_RAISE(auto incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(auto keys, KeysOf(*incoming, schema));
  ARROW_ASSIGN_OR_RAISE(rows, LastRowPerKey(rows, *keys));
  ARROW_ASSIGN_OR_RAISE(incoming, arrow::Table::FromRecordBatches({rows}));
  ARROW_ASSIGN_OR_RAISE(keys, KeysOf(*incoming, schema));
  ARROW_ASSIGN_OR_RAISE(auto range, KeyRange(schema, *incoming));
  const cp::SetLookupOptions lookup(keys);
  ARROW_ASSIGN_OR_RAISE(
      int64_t replaced,
      RewriteFiles(store, range, table,
                   [&](const std::shared_ptr<arrow::RecordBatch>& stored,
                       int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                     ARROW_ASSIGN_OR_RAISE(auto as_table,
                                           arrow::Table::FromRecordBatches({stored}));
                     ARROW_ASSIGN_OR_RAISE(auto stored_keys, KeysOf(*as_table, schema));
                     ARROW_ASSIGN_OR_RAISE(auto hits, cp::IsIn(stored_keys, lookup));
                     ARROW_ASSIGN_OR_RAISE(auto kept_mask, cp::Invert(hits));
                     ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(stored, kept_mask));
                     const auto remaining = kept.record_batch();
                     if (remaining->num_rows() == stored->num_rows()) return nullptr;
                     *affected += stored->num_rows() - remaining->num_rows();
                     return remaining;
                   }));
  return Upserted{std::move(rows), replaced};
}

/// Deletes the rows `predicate` selects; returns how many.
Result<int64_t> DeleteWhere(ManifestStore& store, const Expression& predicate,
                            TableManifest& table) {
  ARROW_ASSIGN_OR_RAISE(auto selected, Selected(predicate, table.schema));
  ARROW_ASSIGN_OR_RAISE(auto keep,
                        cp::call("invert", {std::move(selected)}).Bind(*table.schema.ToArrow()));
  return RewriteFiles(store, predicate, table,
                      [&](const std::shared_ptr<arrow::RecordBatch>& rows,
                          int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                        ARROW_ASSIGN_OR_RAISE(auto mask, Evaluate(keep, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(rows, mask));
                        const auto remaining = kept.record_batch();
                        if (remaining->num_rows() == rows->num_rows()) return nullptr;
                        *affected += rows->num_rows() - remaining->num_rows();
                        return remaining;
                      });
}

namespace {

/// The rows of `schema` after `request`'s set, where `selected` is true: one struct of the
/// columns, each set column chosen per row between its new and its old value.
Result<cp::Expression> UpdatedRow(const Request& request, const TableSchema& schema,
                                  const cp::Expression& selected) {
  std::vector<cp::Expression> columns;
  std::vector<std::string> names;
  for (const auto& column : schema.columns) {
    cp::Expression value = cp::field_ref(column.name);
    for (const auto& [name, expression] : request.set) {
      if (name != column.name) continue;
      ARROW_ASSIGN_OR_RAISE(auto assigned, ToArrowValue(expression, column.type, schema));
      value = cp::call("if_else", {selected, std::move(assigned), std::move(value)});
    }
    columns.push_back(std::move(value));
    names.push_back(column.name);
  }
  return cp::call("make_struct", std::move(columns), cp::MakeStructOptions(names));
}

}  // namespace

/// Updates the rows `request.where` selects; returns how many.
Result<int64_t> UpdateWhere(ManifestStore& store, const Request& request, TableManifest& table) {
  const auto schema = table.schema.ToArrow();
  ARROW_ASSIGN_OR_RAISE(auto selected, Selected(request.where, table.schema));
  ARROW_ASSIGN_OR_RAISE(auto updated_row, UpdatedRow(request, table.schema, selected));
  ARROW_ASSIGN_OR_RAISE(auto hit, selected.Bind(*schema));
  ARROW_ASSIGN_OR_RAISE(auto row, updated_row.Bind(*schema));
  return RewriteFiles(store, request.where, table,
                      [&](const std::shared_ptr<arrow::RecordBatch>& rows,
                          int64_t* affected) -> Result<std::shared_ptr<arrow::RecordBatch>> {
                        ARROW_ASSIGN_OR_RAISE(auto hits, Evaluate(hit, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto sum, cp::Sum(hits));
                        const auto& matched = sum.scalar_as<arrow::UInt64Scalar>();
                        if (!matched.is_valid || matched.value == 0) return nullptr;
                        *affected += static_cast<int64_t>(matched.value);
                        ARROW_ASSIGN_OR_RAISE(auto structs, Evaluate(row, *rows));
                        ARROW_ASSIGN_OR_RAISE(auto next,
                                              arrow::RecordBatch::FromStructArray(structs));
                        return next->ReplaceSchema(schema);
                      });
}

namespace {

/// A stored file's rows in the altered schema `target`.
Result<std::shared_ptr<arrow::Table>> AlterRows(const arrow::Table& stored,
                                                const std::vector<std::string>& origins,
                                                const std::shared_ptr<arrow::Schema>& target) {
  ARROW_ASSIGN_OR_RAISE(auto rows, stored.CombineChunksToBatch());
  arrow::ArrayVector columns;
  for (int i = 0; i < target->num_fields(); ++i) {
    const auto& type = target->field(i)->type();
    if (origins[i].empty()) {
      ARROW_ASSIGN_OR_RAISE(columns.emplace_back(), arrow::MakeArrayOfNull(type, rows->num_rows()));
      continue;
    }
    auto column = rows->GetColumnByName(origins[i]);
    if (column == nullptr) return Status::IOError("a data file lacks column ", origins[i]);
    if (column->type()->Equals(type)) {
      columns.push_back(std::move(column));
      continue;
    }
    // Safe casts: a value that would not convert exactly fails the request.
    ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(*column, type));
    columns.push_back(std::move(cast));
  }
  return arrow::Table::Make(target, columns, rows->num_rows());
}

}  // namespace

Result<TableManifest> AlterTableFiles(ManifestStore& store, const TableManifest& table,
                                      const TableSchema& altered,
                                      const std::vector<ColumnChange>& changes) {
  const std::vector<std::string> origins = ColumnOrigins(table.schema, changes);
  const auto target = altered.ToArrow();
  TableManifest result{.schema = altered};
  for (const auto& file : table.files) {
    ARROW_ASSIGN_OR_RAISE(auto stored, store.ReadDataFile(file));
    ARROW_ASSIGN_OR_RAISE(auto rows, AlterRows(*stored, origins, target));
    ARROW_ASSIGN_OR_RAISE(result.files.emplace_back(), store.WriteDataFile(altered, *rows));
  }
  return result;
}

/// `rows` with `schema`: each column, by position, cast to its type (safely).
Result<std::shared_ptr<arrow::RecordBatch>> ConformTo(
    const arrow::Table& rows, const std::shared_ptr<arrow::Schema>& target) {
  const arrow::Schema& schema = *target;
  ARROW_ASSIGN_OR_RAISE(auto combined, rows.CombineChunksToBatch());
  arrow::ArrayVector columns;
  for (int i = 0; i < schema.num_fields(); ++i) {
    const auto& type = schema.field(i)->type();
    if (combined->column(i)->type()->Equals(type)) {
      columns.push_back(combined->column(i));
      continue;
    }
    auto cast = cp::Cast(*combined->column(i), type);
    if (!cast.ok()) {
      return Status::Invalid("column ", schema.field(i)->name(), " cannot take the function's ",
                             combined->column(i)->type()->ToString(),
                             " values: ", cast.status().message());
    }
    columns.push_back(*cast);
  }
  return arrow::RecordBatch::Make(target, combined->num_rows(), columns);
}

}  // namespace teatree
