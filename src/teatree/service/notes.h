#pragma once

// The notifications a manager publishes, as JSON text, and their reading on the client side.
//
//   teatree.note.<model>               {"type":"outcome", ...} for every request,
//                                      {"type":"version_published", "model", "version"}
//   teatree.note.<model>.<request_id>  {"type":"page", ...} result pages of a query or of a
//                                      function that returns rows, then the outcome again
//                                      (the final message of that subject)

#include <arrow/type_fwd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "teatree/common/status.h"
#include "teatree/engine/outcome.h"

namespace teatree {

/// Rows per result page when a request does not say (query's page_rows).
inline constexpr int64_t kDefaultPageRows = 10'000;

/// {"type":"outcome","model",request_id, op, status, version, rows, duration_ms, error?,
/// duplicate?, pages?}
std::string OutcomeNote(const std::string& model, const RequestOutcome& outcome, int64_t pages);
/// The outcome of a message that is not a valid request: op as the message gave it (may be
/// empty), status "rejected".
std::string RejectedNote(const std::string& model, const std::string& request_id,
                         const std::string& op, const std::string& error);
/// {"type":"version_published","model","version"}
std::string VersionNote(const std::string& model, int64_t version);

/// A result cut into pages of at most `page_rows` rows: {"type":"page","model","request_id",
/// "page" (from 1),"rows","final","format":"arrow_ipc_base64","data"}, each page a complete
/// Arrow IPC stream (schema and one batch). An empty result is one empty final page.
Result<std::vector<std::string>> ResultPages(const std::string& model,
                                             const std::string& request_id,
                                             const arrow::Table& result, int64_t page_rows);

/// Reassembles pages (in any order, each once) into the table they came from.
Result<std::shared_ptr<arrow::Table>> AssemblePages(const std::vector<nlohmann::json>& pages);

}  // namespace teatree
