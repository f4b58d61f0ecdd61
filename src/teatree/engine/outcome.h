#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "teatree/common/steps.h"
#include "teatree/request/request.h"

namespace arrow {
class Table;
}  // namespace arrow

namespace teatree {

/// What happened to one request. `status` is "applied" or "rejected"; `duplicate` says the
/// id was seen before and this is its stored outcome, returned without applying anything.
struct RequestOutcome {
  std::string request_id;
  Op op = Op::kSnapshot;
  std::string status;
  bool duplicate = false;
  /// The model version that holds the request's effect (for reads: the version they saw).
  int64_t version = 0;
  /// Rows inserted, updated, deleted or returned.
  int64_t rows = 0;
  double duration_ms = 0;
  std::string error;
  /// The stages of applying it, in order (see Step); stored and notified with the outcome.
  std::vector<Step> steps;
  /// Result rows of a query or of a function that returns data; not stored, so a duplicate
  /// of such a request has none.
  std::shared_ptr<arrow::Table> result;

  bool applied() const { return status == "applied"; }
  /// {request_id, op, status, version, rows, duration_ms, error?, steps?: [{name, ms, rows}]}
  nlohmann::json ToJson() const;
  /// The stored form, from ToJson(); `result` is not stored.
  static RequestOutcome FromJson(const nlohmann::json& json);
};

/// The outcome of one group-committed batch.
struct BatchResult {
  /// The model version after the batch; unchanged when nothing in it changed data.
  int64_t version = 0;
  /// True when the batch created a new version.
  bool new_version = false;
  /// True when a `snapshot` request asked for the version to be published now.
  bool publish_requested = false;
  /// One per request, in request order.
  std::vector<RequestOutcome> outcomes;
};

}  // namespace teatree
