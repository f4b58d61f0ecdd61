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
  if (!steps.empty()) {
    json["steps"] = nlohmann::json::array();
    for (const auto& step : steps) json["steps"].push_back(step.ToJson());
  }
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
  if (json.contains("steps") && json["steps"].is_array()) {
    for (const auto& step : json["steps"]) outcome.steps.push_back(Step::FromJson(step));
  }
  return outcome;
}

}  // namespace teatree
