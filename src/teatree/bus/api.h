#pragma once

// The bus module: Teatree on NATS JetStream. A private nats-server, the connection, the
// durable request queue, a model's consumer with its deliveries, and the per-model lease.

#include "teatree/bus/delivery.h"         // IWYU pragma: export
#include "teatree/bus/lease.h"            // IWYU pragma: export
#include "teatree/bus/model_consumer.h"   // IWYU pragma: export
#include "teatree/bus/nats_connection.h"  // IWYU pragma: export
#include "teatree/bus/nats_server.h"      // IWYU pragma: export
#include "teatree/bus/request_queue.h"    // IWYU pragma: export
#include "teatree/bus/subjects.h"         // IWYU pragma: export
