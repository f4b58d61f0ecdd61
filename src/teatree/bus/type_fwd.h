#pragma once

// nats.c handle types, declared exactly as nats.h does, so headers can name them
// without including nats.h. The reserved names are nats.c's own.
typedef struct __natsConnection natsConnection;      // NOLINT(bugprone-reserved-identifier)
typedef struct __jsCtx jsCtx;                        // NOLINT(bugprone-reserved-identifier)
typedef struct __natsMsg natsMsg;                    // NOLINT(bugprone-reserved-identifier)
typedef struct __natsSubscription natsSubscription;  // NOLINT(bugprone-reserved-identifier)
typedef struct __kvStore kvStore;                    // NOLINT(bugprone-reserved-identifier)
typedef struct jsPubAckErr jsPubAckErr;

namespace teatree {

class Delivery;
class Lease;
class ModelConsumer;
class NatsConnection;
class NatsServer;
class RequestQueue;

struct LeaseInfo;
struct LeaseOptions;
struct ModelConsumerOptions;
struct NatsClientOptions;
struct NatsServerOptions;
struct PublishAck;
struct RequestQueueOptions;

}  // namespace teatree
