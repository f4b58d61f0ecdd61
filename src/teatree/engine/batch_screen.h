#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/outcome.h"
#include "teatree/request/request.h"

namespace teatree {

/// A request an engine has answered before: what it was (its payload hash) and its outcome.
struct KnownRequest {
  std::string payload_hash;
  RequestOutcome outcome;
};

/// What is left of a batch to apply once the requests that need no applying are answered.
struct ScreenedBatch {
  /// Indexes of the requests to apply, in batch order.
  std::vector<size_t> fresh;
  /// (index, index of the same id's first occurrence in the batch): answered with that one's
  /// outcome once the batch is applied (FinishRepeats).
  std::vector<std::pair<size_t, size_t>> repeats;
};

/// Answers, in `outcomes` (one per request), the requests of a batch that are not applied:
/// those addressed to another model, ids already answered (their stored outcome, marked
/// duplicate, or a refusal when the id comes with another payload), and ids repeated within
/// the batch (later in FinishRepeats). Every engine screens its batches this way.
ScreenedBatch ScreenBatch(const std::vector<Request>& batch, const std::string& model,
                          int64_t version, const std::map<std::string, KnownRequest>& known,
                          std::vector<RequestOutcome>& outcomes);

/// Gives each repeat its first occurrence's outcome, marked duplicate.
void FinishRepeats(const ScreenedBatch& screened, std::vector<RequestOutcome>& outcomes);

/// Refuses a create_table that names an engine other than `engine`, the model's: the engine
/// is chosen by a new model's first batch.
Status CheckEngineChoice(const Request& request, std::string_view engine);

/// Refuses an update whose set names no column, a column `table` lacks, a key column, or
/// an expression of the wrong type.
Status CheckUpdate(const TableSchema& table, const Request& request);

/// The refusal of a request naming `request.table`, which the model (whose tables are
/// `tables`) does not have: it lists the tables there are.
Status NoSuchTable(const Request& request, const std::vector<std::string>& tables);

/// Refuses an upsert into a table without a primary key.
Status CheckUpsertKey(const TableSchema& table);

/// The outcome of a request refused with `error` at `version`.
RequestOutcome Rejected(const Request& request, int64_t version, std::string error);

}  // namespace teatree
