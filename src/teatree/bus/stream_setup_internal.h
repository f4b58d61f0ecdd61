#pragma once

#include <nats/nats.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "teatree/bus/nats_handles_internal.h"
#include "teatree/common/status.h"

namespace teatree::bus_internal {

/// What Teatree needs of one of its JetStream streams: one subject pattern each.
struct StreamSpec {
  std::string name;
  std::string subjects;
  jsRetentionPolicy retention = js_LimitsPolicy;
  std::chrono::nanoseconds duplicate_window = std::chrono::minutes(2);
  /// Largest message (headers + body) the stream stores.
  int32_t max_msg_size = -1;
  jsStorageType storage = js_FileStorage;
  /// Messages older than this are dropped; 0 keeps them (until acknowledged, for work
  /// queues).
  std::chrono::nanoseconds max_age{0};
  /// The stream's size bound in bytes (the oldest messages go first); -1: none.
  int64_t max_bytes = -1;
  /// The stream holds nothing that must outlive a change of storage (notifications): one
  /// found with another storage is deleted and made again instead of refused.
  bool recreate_on_storage_change = false;
  /// When the stream exists: bring its window, size and age to these (true), or use it as
  /// it is (false: clients, which must not undo what the server's operator chose).
  bool update_existing = true;
  /// Copies JetStream keeps (NatsConnection::stream_replicas()); an existing stream is scaled
  /// to it when `update_existing`.
  int replicas = 1;
};

/// A message to `subject` carrying `body` and `headers` (name, value); errors start with
/// `context`.
Result<MsgHandle> MakeMessage(const std::string& subject, std::string_view body,
                              const std::vector<std::pair<const char*, std::string>>& headers,
                              const std::string& context);

/// Publishes `msg` and waits for JetStream's ack, expecting `stream` to store it. On failure
/// `*error` holds JetStream's error code, if any.
natsStatus PublishToStream(jsCtx* js, natsMsg* msg, const std::string& stream, PubAckHandle* ack,
                           jsErrCode* error);

/// Creates the stream when absent. When it exists, updates the duplicate window, maximum
/// message size and age if they differ (the last process to call this wins), and refuses a
/// stream whose subjects, storage or retention differ, naming the setting and what to do.
/// Thread-safe; several processes may race to create it.
Status EnsureStream(jsCtx* js, const StreamSpec& spec);

/// The stream's info, with per-subject message counts for subjects matching
/// `subjects_filter` (empty: no subject details). A missing stream is an error that names
/// it.
Result<StreamInfoHandle> GetStreamInfo(jsCtx* js, const std::string& stream,
                                       const std::string& subjects_filter);

}  // namespace teatree::bus_internal
