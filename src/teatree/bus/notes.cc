#include "teatree/bus/notes.h"

#include <nats/nats.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/stream_setup_internal.h"
#include "teatree/bus/subjects.h"

namespace teatree {

Status EnsureNoteStream(NatsConnection& connection, const NoteStreamOptions& options) {
  return bus_internal::EnsureStream(connection.jetstream(),
                                    {.name = std::string(kNoteStream),
                                     .subjects = std::string(kNoteSubjects),
                                     .storage = js_FileStorage,
                                     .max_age = options.max_age,
                                     .max_bytes = options.max_bytes,
                                     .recreate_on_storage_change = true,
                                     .replicas = connection.stream_replicas()});
}

namespace {

/// How many notifications may wait for the stream's ack before Publish() waits too.
constexpr int kMaxPendingNotes = 65536;
/// How long Flush() waits for a notification's ack before publishing it again: a
/// nats-server killed after receiving it never answers, and nats.c would wait for that
/// answer forever.
constexpr std::chrono::milliseconds kResendAfter(2000);

/// A prefix of message ids no other Notifier uses: the stream drops a notification
/// published again within its duplicate window, by id.
std::string UniquePrefix() {
  std::random_device random;
  std::uniform_int_distribution<uint64_t> any;
  char prefix[24];
  std::snprintf(prefix, sizeof(prefix), "note-%016lx-", static_cast<unsigned long>(any(random)));
  return prefix;
}

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
  std::unique_ptr<Notifier> notifier(new Notifier(connection, options, reconnects, UniquePrefix()));
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
  const std::string context = "cannot publish a notification on " + subject;
  natsMsg* raw = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(
      natsMsg_Create(&raw, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
      context));
  bus_internal::MsgHandle msg(raw);
  const std::string id = id_prefix_ + std::to_string(++published_);
  ARROW_RETURN_NOT_OK(FromNats(natsMsgHeader_Set(raw, kMsgIdHeader, id.c_str()), context));
  natsMsg* taken = msg.release();
  const natsStatus status = js_PublishMsgAsync(js_, &taken, nullptr);
  natsMsg_Destroy(taken);  // nullptr once nats.c took it.
  return FromNats(status, context);
}

Status Notifier::Flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = std::max<int64_t>(1, std::min(left, kResendAfter).count());
    const natsStatus status = js_PublishAsyncComplete(js_, &options);
    if (status == NATS_OK) break;
    if (status != NATS_TIMEOUT || left <= kResendAfter) {
      return FromNats(status, "notifications were not all stored within " +
                                  std::to_string(timeout.count()) + " ms");
    }
    ARROW_RETURN_NOT_OK(ResendPending());
  }
  if (const int64_t failed = failed_.exchange(0); failed > 0) {
    return Status::IOError(failed, " notifications were not stored (is the stream ", kNoteStream,
                           " there?)");
  }
  return Status::OK();
}

Status Notifier::ResendPending() {
  natsMsgList pending{};
  const natsStatus listed = js_PublishAsyncGetPendingList(&pending, js_);
  if (listed == NATS_NOT_FOUND) return Status::OK();  // The acks came meanwhile.
  ARROW_RETURN_NOT_OK(FromNats(listed, "cannot list the notifications not yet stored"));
  natsStatus status = NATS_OK;
  for (int i = 0; i < pending.Count && status == NATS_OK; ++i) {
    status = js_PublishMsgAsync(js_, &pending.Msgs[i], nullptr);
  }
  natsMsgList_Destroy(&pending);  // Destroys the messages nats.c did not take back.
  return FromNats(status, "cannot publish the notifications not yet stored again");
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
