#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>

namespace teatree::bus_internal {

/// Owns a nats.c object and destroys it with its library function:
/// `Handle<jsStreamInfo, jsStreamInfo_Destroy> info(raw);`
template <typename T, void (*Destroy)(T*)>
struct HandleDeleter {
  void operator()(T* handle) const { Destroy(handle); }
};
template <typename T, void (*Destroy)(T*)>
using Handle = std::unique_ptr<T, HandleDeleter<T, Destroy>>;

using MsgHandle = Handle<natsMsg, natsMsg_Destroy>;
using PubAckHandle = Handle<jsPubAck, jsPubAck_Destroy>;
using StreamInfoHandle = Handle<jsStreamInfo, jsStreamInfo_Destroy>;
using ConsumerInfoHandle = Handle<jsConsumerInfo, jsConsumerInfo_Destroy>;
using KvEntryHandle = Handle<kvEntry, kvEntry_Destroy>;

/// nats.c's JetStream configs count durations in nanoseconds.
inline int64_t Nanos(std::chrono::nanoseconds duration) { return duration.count(); }

}  // namespace teatree::bus_internal
