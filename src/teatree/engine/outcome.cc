#include "teatree/engine/outcome.h"

namespace teatree {

nlohmann::json RequestOutcome::ToJson() const {
  nlohmann::json json = {{"request_id", request_id},
                         {"op", std::string(OpName(op))},
                         {"status", status},
                         {"version", version},
                         {"rows", rows},
                         {"duration_ms", duration_ms}};
  if (!error.empty()) json["error"] = error;
  if (duplicate) json["duplicate"] = true;
  return json;
}

RequestOutcome RequestOutcome::FromJson(const nlohmann::json& json) {
  RequestOutcome outcome;
  outcome.request_id = json.value("request_id", "");
  outcome.op = ParseOp(json.value("op", "snapshot")).ValueOr(Op::kSnapshot);
  outcome.status = json.value("status", "");
  outcome.version = json.value("version", int64_t{0});
  outcome.rows = json.value("rows", int64_t{0});
  outcome.duration_ms = json.value("duration_ms", 0.0);
  outcome.error = json.value("error", "");
  return outcome;
}

}  // namespace teatree
