#include "teatree/bus/nats_connection.h"

#include <nats/nats.h>

#include "teatree/bus/nats_status_internal.h"

namespace teatree {
namespace {

struct OptionsDeleter {
  void operator()(natsOptions* options) const { natsOptions_Destroy(options); }
};

}  // namespace

Result<std::unique_ptr<NatsConnection>> NatsConnection::Connect(const NatsClientOptions& options) {
  const std::string context = "cannot connect to NATS at " + options.url;
  natsOptions* raw_options = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_Create(&raw_options), context));
  std::unique_ptr<natsOptions, OptionsDeleter> nats_options(raw_options);
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetURL(raw_options, options.url.c_str()), context));
  ARROW_RETURN_NOT_OK(FromNats(natsOptions_SetName(raw_options, options.name.c_str()), context));
  ARROW_RETURN_NOT_OK(
      FromNats(natsOptions_SetTimeout(raw_options, options.connect_timeout.count()), context));

  natsConnection* connection = nullptr;
  natsStatus status = natsConnection_Connect(&connection, raw_options);
  if (status != NATS_OK) {
    return FromNats(status, context + " (is the server running? check the URL and port)");
  }
  jsCtx* jetstream = nullptr;
  status = natsConnection_JetStream(&jetstream, connection, nullptr);
  if (status != NATS_OK) {
    natsConnection_Destroy(connection);
    return FromNats(status, "cannot open JetStream context on " + options.url);
  }
  return std::unique_ptr<NatsConnection>(new NatsConnection(connection, jetstream));
}

NatsConnection::~NatsConnection() {
  jsCtx_Destroy(jetstream_);
  natsConnection_Destroy(connection_);
}

}  // namespace teatree
