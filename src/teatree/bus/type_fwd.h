#pragma once

// nats.c handle types, declared exactly as nats.h does, so headers can name them
// without including nats.h. The reserved names are nats.c's own.
typedef struct __natsConnection natsConnection;  // NOLINT(bugprone-reserved-identifier)
typedef struct __jsCtx jsCtx;                    // NOLINT(bugprone-reserved-identifier)

namespace teatree {

class NatsConnection;
class NatsServer;

}  // namespace teatree
