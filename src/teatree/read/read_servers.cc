#include "teatree/read/read_servers.h"

namespace teatree {

Result<std::unique_ptr<ReadServers>> ReadServers::Start(const ReadServingOptions& options,
                                                        ModelDirectory& models, HttpExtras extras) {
  auto servers = std::unique_ptr<ReadServers>(new ReadServers());
  // Managers serve TLS with the same certificate as the server that started them.
  servers->live_ = std::make_unique<LiveForwarder>(models, options.listen.tls_cert);
  ARROW_ASSIGN_OR_RAISE(servers->flight_, FlightReadServer::Start({.listen = options.listen,
                                                                   .limits = options.limits,
                                                                   .live = servers->live_.get(),
                                                                   .nats = extras.nats,
                                                                   .uploads = extras.uploads},
                                                                  models));
  if (options.http_port >= 0) {
    HttpReadServer::Options http_options{.listen = options.listen,
                                         .limits = options.limits,
                                         .nats = extras.nats,
                                         .queue = extras.queue,
                                         .registry = extras.registry,
                                         .ready = std::move(extras.ready),
                                         .live = servers->live_.get(),
                                         .http = options.http,
                                         .uploads = extras.uploads};
    http_options.listen.port = options.http_port;
    ARROW_ASSIGN_OR_RAISE(servers->http_, HttpReadServer::Start(http_options, models));
  }
  return servers;
}

}  // namespace teatree
