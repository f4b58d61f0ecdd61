#include "teatree/read/read_servers.h"

namespace teatree {

Result<std::unique_ptr<ReadServers>> ReadServers::Start(const ReadServingOptions& options,
                                                        ModelDirectory& models) {
  ARROW_ASSIGN_OR_RAISE(auto flight,
                        FlightReadServer::Start({options.listen, options.limits}, models));
  return std::unique_ptr<ReadServers>(new ReadServers(std::move(flight)));
}

}  // namespace teatree
