// libFuzzer target: Flight tickets (and HTTP query bodies), which arrive from any client.
// Whatever ReadTicket::Parse() accepts must serialise with ToJson() to a ticket that parses
// back to the same read: the read servers and clients forward tickets in that form.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "teatree/read/read_ticket.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "read_ticket_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto ticket = teatree::ReadTicket::Parse(input);
  if (!ticket.ok()) return 0;
  const std::string json = ticket->ToJson();
  auto again = teatree::ReadTicket::Parse(json);
  if (!again.ok())
    Fail("ToJson() of a ticket does not parse", json + ": " + again.status().ToString());
  // ToJson() writes args only with a function: a SQL read has none to forward.
  const bool same = again->model == ticket->model && again->sql == ticket->sql &&
                    again->function == ticket->function &&
                    again->at_version == ticket->at_version &&
                    (ticket->function.empty() || again->args == ticket->args);
  if (!same) Fail("a ticket changed across ToJson() and Parse()", json);
  if (again->ToJson() != json) Fail("ToJson() is not stable", json + " != " + again->ToJson());
  return 0;
}
