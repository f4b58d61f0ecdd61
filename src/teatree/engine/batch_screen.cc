#include "teatree/engine/batch_screen.h"

#include "teatree/request/expression.h"

namespace teatree {

Status CheckEngineChoice(const Request& request, std::string_view engine) {
  if (request.engine.empty() || request.engine == engine) return Status::OK();
  return Status::Invalid("model ", request.model, " uses the ", engine, " engine; engine \"",
                         request.engine,
                         "\" can only be chosen by the first create_table of a new model");
}

Status CheckUpdate(const TableSchema& table, const Request& request) {
  if (request.set.empty()) return Status::Invalid("update needs at least one column in set");
  for (const auto& [column, expression] : request.set) {
    if (table.FindColumn(column) == nullptr) {
      return Status::Invalid("update sets column \"", column, "\" which table ", table.name,
                             " does not have (its columns: ", table.ColumnNames(), ")");
    }
    if (table.IsKey(column)) {
      return Status::Invalid("update cannot change key column \"", column,
                             "\": delete the row and append it with the new key");
    }
    ARROW_RETURN_NOT_OK(CheckSetExpression(column, expression, table));
  }
  return Status::OK();
}

Status NoSuchTable(const Request& request, const std::vector<std::string>& tables) {
  std::string names;
  for (const auto& name : tables) names += (names.empty() ? "" : ", ") + name;
  return Status::Invalid(
      OpName(request.op), ": table ", request.table, " does not exist in model ", request.model,
      names.empty() ? std::string(" (it has no tables yet)") : " (its tables: " + names + ")");
}

Status CheckUpsertKey(const TableSchema& table) {
  if (!table.primary_key.empty()) return Status::OK();
  return Status::Invalid("upsert needs a primary key, and table ", table.name,
                         " has none: use append, or create the table with primary_key");
}

RequestOutcome Rejected(const Request& request, int64_t version, std::string error) {
  RequestOutcome outcome;
  outcome.request_id = request.request_id;
  outcome.op = request.op;
  outcome.status = "rejected";
  outcome.version = version;
  outcome.error = std::move(error);
  return outcome;
}

ScreenedBatch ScreenBatch(const std::vector<Request>& batch, const std::string& model,
                          int64_t version, const std::map<std::string, KnownRequest>& known,
                          std::vector<RequestOutcome>& outcomes) {
  ScreenedBatch screened;
  std::map<std::string, size_t> first_in_batch;
  outcomes.resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Request& request = batch[i];
    const std::string reused = "request_id " + request.request_id +
                               " was already used for a different request: give each request "
                               "its own id";
    if (request.model != model) {
      outcomes[i] =
          Rejected(request, version,
                   "request for model " + request.model + " reached the manager of model " + model);
    } else if (auto it = known.find(request.request_id); it != known.end()) {
      const bool same = it->second.payload_hash == request.payload_hash;
      outcomes[i] = same ? it->second.outcome : Rejected(request, version, reused);
      outcomes[i].duplicate = same;
    } else if (auto first = first_in_batch.find(request.request_id);
               first != first_in_batch.end()) {
      if (batch[first->second].payload_hash == request.payload_hash) {
        screened.repeats.emplace_back(i, first->second);
      } else {
        outcomes[i] = Rejected(request, version, reused);
      }
    } else {
      first_in_batch[request.request_id] = i;
      screened.fresh.push_back(i);
    }
  }
  return screened;
}

void FinishRepeats(const ScreenedBatch& screened, std::vector<RequestOutcome>& outcomes) {
  for (const auto& [index, first] : screened.repeats) {
    outcomes[index] = outcomes[first];
    outcomes[index].duplicate = true;
  }
}

}  // namespace teatree
