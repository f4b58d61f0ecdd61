#include "teatree/read/read_ticket.h"

#include "teatree/common/json_text.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

Status BadTicket(const std::string& why) {
  return Status::Invalid(
      "invalid read ticket: ", why, R"(; write {"model":"m","sql":"SELECT …"} or )",
      R"({"model":"m","function":"f","args":{…}}, optionally with "at_version":N, )",
      R"("min_version":N and "wait_ms":MS)");
}

}  // namespace

Status ParseVersionWanted(const nlohmann::json& json, std::optional<VersionWanted>& wanted) {
  if (!json.contains("min_version")) {
    if (json.contains("wait_ms")) return Status::Invalid("\"wait_ms\" needs \"min_version\"");
    return Status::OK();
  }
  const auto& min_version = json["min_version"];
  if (!min_version.is_number_integer() || min_version.get<int64_t>() < 1) {
    return Status::Invalid("\"min_version\" must be a version number (1 or more)");
  }
  VersionWanted parsed{.min_version = min_version.get<int64_t>()};
  if (json.contains("wait_ms")) {
    const auto& wait = json["wait_ms"];
    if (!wait.is_number_integer() || wait.get<int64_t>() < 0 ||
        wait.get<int64_t>() > kMaxVersionWait.count()) {
      return Status::Invalid("\"wait_ms\" must be between 0 and ", kMaxVersionWait.count(),
                             " (milliseconds)");
    }
    parsed.wait = std::chrono::milliseconds(wait.get<int64_t>());
  }
  wanted = parsed;
  return Status::OK();
}

Result<ReadTicket> ReadTicket::Parse(std::string_view json) {
  auto text = ParseJson(json, "the ticket", {.max_bytes = kMaxTicketBytes, .max_depth = 64});
  if (!text.ok()) return BadTicket("it is not a JSON object: " + text.status().message());
  const nlohmann::json& parsed = *text;
  if (!parsed.is_object()) return BadTicket("it is not a JSON object");
  ReadTicket ticket;
  for (const auto& [key, value] : parsed.items()) {
    if (key == "model" || key == "sql" || key == "function") {
      if (!value.is_string()) return BadTicket("\"" + key + "\" must be a string");
      (key == "model" ? ticket.model : key == "sql" ? ticket.sql : ticket.function) = value;
    } else if (key == "args") {
      if (!value.is_object()) return BadTicket("\"args\" must be an object");
      ticket.args = value;
    } else if (key == "at_version") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1) {
        return BadTicket("\"at_version\" must be a version number (1 or more)");
      }
      ticket.at_version = value.get<int64_t>();
    } else if (key == "min_version" || key == "wait_ms") {
      continue;  // Read together below.
    } else {
      return BadTicket("unknown field \"" + key + "\"");
    }
  }
  if (Status wanted = ParseVersionWanted(parsed, ticket.min_version); !wanted.ok()) {
    return BadTicket(wanted.message());
  }
  if (ticket.model.empty()) return BadTicket("\"model\" is missing");
  ARROW_RETURN_NOT_OK(ValidateName("model", ticket.model));
  if (ticket.sql.empty() == ticket.function.empty()) {
    return BadTicket("give either \"sql\" or \"function\"");
  }
  return ticket;
}

std::string ReadTicket::ToJson() const {
  nlohmann::json json{{"model", model}};
  if (!sql.empty()) json["sql"] = sql;
  if (!function.empty()) {
    json["function"] = function;
    json["args"] = args;
  }
  if (at_version) json["at_version"] = *at_version;
  if (min_version) {
    json["min_version"] = min_version->min_version;
    json["wait_ms"] = min_version->wait.count();
  }
  return DumpJson(json);
}

}  // namespace teatree
