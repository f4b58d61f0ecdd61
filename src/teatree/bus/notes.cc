#include "teatree/bus/notes.h"

#include <nats/nats.h>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/stream_setup_internal.h"
#include "teatree/bus/subjects.h"

namespace teatree {

Status EnsureNoteStream(NatsConnection& connection, const NoteStreamOptions& options) {
  return bus_internal::EnsureStream(connection.jetstream(), {.name = std::string(kNoteStream),
                                                             .subjects = std::string(kNoteSubjects),
                                                             .storage = js_FileStorage,
                                                             .max_age = options.max_age,
                                                             .max_bytes = options.max_bytes,
                                                             .recreate_on_storage_change = true});
}

namespace {

/// How many notifications may wait for the stream's ack before Publish() waits too.
constexpr int kMaxPendingNotes = 65536;

}  // namespace

void Notifier::OnPublishFailed(jsCtx*, jsPubAckErr*, void* closure) {
  ++static_cast<Notifier*>(closure)->failed_;
}

Result<std::unique_ptr<Notifier>> Notifier::Make(NatsConnection& connection,
                                                 const NoteStreamOptions& options) {
  const uint64_t reconnects = connection.reconnects();
  ARROW_RETURN_NOT_OK(EnsureNoteStream(connection, options));
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = connection.request_timeout().count();
  js_options.PublishAsync.MaxPending = kMaxPendingNotes;
  std::unique_ptr<Notifier> notifier(new Notifier(connection, options, reconnects));
  js_options.PublishAsync.ErrHandler = OnPublishFailed;
  js_options.PublishAsync.ErrHandlerClosure = notifier.get();
  ARROW_RETURN_NOT_OK(
      FromNats(natsConnection_JetStream(&notifier->js_, connection.connection(), &js_options),
               "cannot open a JetStream context for notifications"));
  return notifier;
}

Notifier::~Notifier() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
}

Status Notifier::Publish(const std::string& subject, std::string_view body) {
  const uint64_t reconnects = connection_.reconnects();
  if (reconnects != reconnects_.exchange(reconnects)) {
    Status made = EnsureNoteStream(connection_, options_);
    if (!made.ok()) reconnects_ = 0;  // Try again next time.
  }
  return FromNats(
      js_PublishAsync(js_, subject.c_str(), body.data(), static_cast<int>(body.size()), nullptr),
      "cannot publish a notification on " + subject);
}

Status Notifier::Flush(std::chrono::milliseconds timeout) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = timeout.count();
  ARROW_RETURN_NOT_OK(FromNats(
      js_PublishAsyncComplete(js_, &options),
      "notifications were not all stored within " + std::to_string(timeout.count()) + " ms"));
  if (const int64_t failed = failed_.exchange(0); failed > 0) {
    return Status::IOError(failed, " notifications were not stored (is the stream ", kNoteStream,
                           " there?)");
  }
  return Status::OK();
}

Result<std::optional<Note>> LastNote(NatsConnection& connection, const std::string& subject) {
  natsMsg* raw = nullptr;
  jsErrCode error = jsErrCode(0);
  const std::string stream(kNoteStream);
  const natsStatus status =
      js_GetLastMsg(&raw, connection.jetstream(), stream.c_str(), subject.c_str(), nullptr, &error);
  if (status == NATS_NOT_FOUND || error == JSNoMessageFoundErr || error == JSStreamNotFoundErr) {
    return std::optional<Note>();
  }
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot read the last notification on " + subject, error));
  bus_internal::MsgHandle msg(raw);
  return std::optional<Note>(
      Note{natsMsg_GetSubject(raw),
           std::string(natsMsg_GetData(raw), static_cast<size_t>(natsMsg_GetDataLength(raw)))});
}

Result<std::unique_ptr<NoteSubscription>> NoteSubscription::Live(NatsConnection& connection,
                                                                 const std::string& subject) {
  natsSubscription* subscription = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(
      natsConnection_SubscribeSync(&subscription, connection.connection(), subject.c_str()),
      "cannot subscribe to " + subject));
  return std::unique_ptr<NoteSubscription>(new NoteSubscription(subscription));
}

Result<std::unique_ptr<NoteSubscription>> NoteSubscription::Replay(NatsConnection& connection,
                                                                   const std::string& subject,
                                                                   const ReplayFrom& from) {
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Ordered = true;
  options.Config.DeliverPolicy = js_DeliverAll;
  if (from.after_sequence > 0) {
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = from.after_sequence + 1;
  } else if (from.since) {
    options.Config.DeliverPolicy = js_DeliverByStartTime;
    options.Config.OptStartTime =
        std::chrono::duration_cast<std::chrono::nanoseconds>(from.since->time_since_epoch())
            .count();
  } else if (from.only_new) {
    options.Config.DeliverPolicy = js_DeliverNew;
  }
  const std::string stream(kNoteStream);
  options.Stream = stream.c_str();
  natsSubscription* subscription = nullptr;
  jsErrCode error = jsErrCode(0);
  ARROW_RETURN_NOT_OK(FromNats(js_SubscribeSync(&subscription, connection.jetstream(),
                                                subject.c_str(), nullptr, &options, &error),
                               "cannot replay notifications of " + subject + " (is the stream " +
                                   stream + " there? teatree serve makes it)",
                               error));
  return std::unique_ptr<NoteSubscription>(new NoteSubscription(subscription));
}

NoteSubscription::~NoteSubscription() {
  natsSubscription_Unsubscribe(subscription_);
  natsSubscription_Destroy(subscription_);
}

Result<std::optional<Note>> NoteSubscription::Next(std::chrono::milliseconds timeout) {
  natsMsg* raw = nullptr;
  const natsStatus status = natsSubscription_NextMsg(&raw, subscription_, timeout.count());
  if (status == NATS_TIMEOUT) return std::optional<Note>();
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot receive a notification"));
  bus_internal::MsgHandle msg(raw);
  Note note{natsMsg_GetSubject(raw),
            std::string(natsMsg_GetData(raw), static_cast<size_t>(natsMsg_GetDataLength(raw)))};
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, raw) == NATS_OK) {  // Only replayed ones have it.
    note.sequence = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
  }
  return std::optional<Note>(std::move(note));
}

}  // namespace teatree
