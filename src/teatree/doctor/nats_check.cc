// Doctor check for NATS: the pinned nats-server and nats.c, exercised through Teatree's own
// bus: the request stream, a model's pull consumer and the lease bucket.
#include <nats/nats.h>

#include <cstdio>

#include "teatree/bus/lease.h"
#include "teatree/bus/model_consumer.h"
#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_server.h"
#include "teatree/bus/request_queue.h"
#include "teatree/common/temp_dir.h"
#include "teatree/doctor/checks_internal.h"

namespace teatree {
namespace {

Status CheckMinimumVersion(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2 ||
      (major < 2 || (major == 2 && minor < 10))) {
    return Status::Invalid("nats-server ", version,
                           " is too old: Teatree needs >= 2.10 for sync_interval; run "
                           "scripts/bootstrap or set TEATREE_NATS_SERVER");
  }
  return Status::OK();
}

/// Submits one request twice with the same id (JetStream must drop the second), fetches it
/// with the model's pull consumer and acks it, then takes and releases the model's lease.
Status ExerciseBus(NatsConnection& connection) {
  ARROW_ASSIGN_OR_RAISE(auto queue, RequestQueue::Make(connection));
  ARROW_ASSIGN_OR_RAISE(auto first, queue->Submit("doctor", "doctor-1", "hello"));
  ARROW_ASSIGN_OR_RAISE(auto second, queue->Submit("doctor", "doctor-1", "hello"));
  if (first.duplicate || !second.duplicate) {
    return Status::Invalid("Nats-Msg-Id deduplication did not drop the repeated request");
  }
  ARROW_ASSIGN_OR_RAISE(auto consumer, ModelConsumer::Make(connection, "doctor"));
  ARROW_ASSIGN_OR_RAISE(auto deliveries, consumer->Fetch(10, std::chrono::seconds(5)));
  if (deliveries.size() != 1 || deliveries[0].body() != "hello") {
    return Status::Invalid("fetched ", deliveries.size(), " requests, expected the one submitted");
  }
  ARROW_RETURN_NOT_OK(deliveries[0].Ack());
  ARROW_ASSIGN_OR_RAISE(auto lease, Lease::Acquire(connection, "doctor", "teatree doctor"));
  return lease->Release();
}

}  // namespace

Result<CheckOutcome> CheckNats(const DoctorOptions& options) {
  NatsServerOptions server_options;
  server_options.binary = options.nats_server;
  const std::string binary = NatsServer::ResolveBinary(server_options);
  ARROW_ASSIGN_OR_RAISE(std::string server_version, NatsServer::BinaryVersion(binary));
  ARROW_RETURN_NOT_OK(CheckMinimumVersion(server_version));

  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-doctor-nats-"));
  server_options.store_dir = dir->path() / "jetstream";
  ARROW_ASSIGN_OR_RAISE(auto server, NatsServer::Start(server_options));
  {
    ARROW_ASSIGN_OR_RAISE(auto connection, NatsConnection::Connect({.url = server->url()}));
    ARROW_RETURN_NOT_OK(ExerciseBus(*connection));
  }
  ARROW_RETURN_NOT_OK(server->Stop());
  return CheckOutcome{"nats.c " + std::string(nats_GetVersion()) + ", server " + server_version,
                      "nats-server on " + server->url() +
                          ": request stream, submit with Nats-Msg-Id (duplicate dropped), "
                          "pull + ack, KV lease taken and released; stopped"};
}

}  // namespace teatree
