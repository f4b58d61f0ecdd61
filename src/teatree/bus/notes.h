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
  /// How long notifications stay replayable: a client waiting for an outcome, or resuming
  /// a paged result, finds them for this long.
  std::chrono::milliseconds max_age = std::chrono::hours(1);
};

/// Creates (or updates) the stream TEATREE_NOTE on teatree.note.>: in memory, since a
/// notification that is lost with a server restart can be asked for again (the outcome is
/// in the model's request table), and kept for options.max_age.
Status EnsureNoteStream(NatsConnection& connection, const NoteStreamOptions& options = {});

/// Publishes notifications without waiting for the server: notifications are never on the
/// path that makes a request durable. After the connection was re-established it makes the
/// stream again first, since a restarted server has lost it. Thread-safe. The connection must
/// outlive it.
class Notifier {
 public:
  /// Makes the stream.
  static Result<std::unique_ptr<Notifier>> Make(NatsConnection& connection,
                                                const NoteStreamOptions& options = {});
  /// `body` is JSON text.
  Status Publish(const std::string& subject, std::string_view body);

 private:
  Notifier(NatsConnection& connection, NoteStreamOptions options, uint64_t reconnects)
      : connection_(connection), options_(options), reconnects_(reconnects) {}

  NatsConnection& connection_;
  const NoteStreamOptions options_;
  std::atomic<uint64_t> reconnects_;  // As of the last time the stream was made.
};

/// One notification received.
struct Note {
  std::string subject;
  std::string body;
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
                                                          const std::string& subject);
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
