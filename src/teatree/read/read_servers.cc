#include "teatree/read/read_servers.h"

namespace teatree {

Result<std::unique_ptr<ReadServers>> ReadServers::Start(const ReadServingOptions& options,
                                                        ModelDirectory& models, HttpExtras extras) {
  ARROW_ASSIGN_OR_RAISE(auto flight,
                        FlightReadServer::Start({options.listen, options.limits}, models));
  std::unique_ptr<HttpReadServer> http;
  if (options.http_port >= 0) {
    HttpReadServer::Options http_options{.listen = options.listen,
                                         .limits = options.limits,
                                         .nats = extras.nats,
                                         .queue = extras.queue,
                                         .ready = std::move(extras.ready)};
    http_options.listen.port = options.http_port;
    ARROW_ASSIGN_OR_RAISE(http, HttpReadServer::Start(http_options, models));
  }
  return std::unique_ptr<ReadServers>(new ReadServers(std::move(flight), std::move(http)));
}

}  // namespace teatree
