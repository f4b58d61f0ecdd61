#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

class NatsConnection;

struct NoteStreamOptions {
  /// How long notifications stay replayable: a client waiting for an outcome, resuming a
  /// paged result or a watch, finds them for this long…
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 7);
  /// …unless the stream outgrows this many bytes: the oldest go first.
  int64_t max_bytes = int64_t{1} << 30;
};

/// Creates (or updates) the stream TEATREE_NOTE on teatree.note.>, on disk: an outcome told
/// before a crash of the server (or of serve with its nats-server) is still there for the
/// client that waits for it. A stream from an older Teatree kept in memory is replaced.
Status EnsureNoteStream(NatsConnection& connection, const NoteStreamOptions& options = {});

/// Publishes notifications into the stream without waiting for each (notifications are
/// never on the path that makes a request durable); Flush() waits until the stream has
/// stored all of them, so a manager acknowledges a request only once its outcome is kept.
/// After the connection was re-established it makes the stream again first; a notification
/// whose ack does not come (a nats-server killed before answering) is published again, and
/// the stream keeps one copy (each carries a Nats-Msg-Id). Thread-safe.
/// The connection must outlive it.
class Notifier {
 public:
  /// Makes the stream.
  static Result<std::unique_ptr<Notifier>> Make(NatsConnection& connection,
                                                const NoteStreamOptions& options = {});
  ~Notifier();

  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// `body` is JSON text.
  Status Publish(const std::string& subject, std::string_view body);
  /// Waits until every notification published so far is stored, or fails after `timeout`.
  Status Flush(std::chrono::milliseconds timeout);

 private:
  Notifier(NatsConnection& connection, NoteStreamOptions options, uint64_t reconnects,
           std::string id_prefix)
      : connection_(connection),
        options_(options),
        id_prefix_(std::move(id_prefix)),
        reconnects_(reconnects) {}
  static void OnPublishFailed(jsCtx* js, jsPubAckErr* failed, void* closure);
  /// Publishes again every notification whose ack has not come.
  Status ResendPending();

  NatsConnection& connection_;
  jsCtx* js_ = nullptr;  // Owned: its own context, so Flush() waits for notifications only.
  const NoteStreamOptions options_;
  const std::string id_prefix_;         // Of each notification's Nats-Msg-Id.
  std::atomic<uint64_t> published_{0};  // Notifications published: the rest of their ids.
  std::atomic<uint64_t> reconnects_;    // As of the last time the stream was made.
  std::atomic<int64_t> failed_{0};      // Notifications the stream refused since the last Flush().
};

/// One notification received.
struct Note {
  std::string subject;
  std::string body;
  /// Its sequence number in the stream, for a replayed one (what a client resumes after,
  /// e.g. the SSE event id); 0 for one received live.
  uint64_t sequence = 0;
};

/// Where a replay of the stream starts: after a sequence number a client saw last, at a
/// time, with the next new notification, or (all unset) with the oldest one kept.
struct ReplayFrom {
  uint64_t after_sequence = 0;
  std::optional<std::chrono::system_clock::time_point> since;
  bool only_new = false;
};

/// The newest notification the stream holds on `subject`, or nullopt when it has none.
Result<std::optional<Note>> LastNote(NatsConnection& connection, const std::string& subject);

/// Receives notifications of one subject (wildcards allowed). Use from one thread.
class NoteSubscription {
 public:
  /// From now on, as they are published (core NATS: `teatree watch`).
  static Result<std::unique_ptr<NoteSubscription>> Live(NatsConnection& connection,
                                                        const std::string& subject);
  /// Every notification the stream still holds for `subject`, oldest first, then new ones
  /// as they come (a JetStream ordered consumer): waiting for an outcome cannot miss it,
  /// whether it came before or after the call.
  static Result<std::unique_ptr<NoteSubscription>> Replay(NatsConnection& connection,
                                                          const std::string& subject,
                                                          const ReplayFrom& from = {});
  ~NoteSubscription();
  NoteSubscription(const NoteSubscription&) = delete;
  NoteSubscription& operator=(const NoteSubscription&) = delete;

  /// The next notification, or nullopt when none came within `timeout`.
  Result<std::optional<Note>> Next(std::chrono::milliseconds timeout);

 private:
  explicit NoteSubscription(natsSubscription* subscription) : subscription_(subscription) {}
  natsSubscription* subscription_;
};

}  // namespace teatree
