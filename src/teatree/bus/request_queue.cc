#include "teatree/bus/request_queue.h"

#include <nats/nats.h>

#include <algorithm>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/stream_setup_internal.h"
#include "teatree/bus/subjects.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using bus_internal::PubAckHandle;

// NATS servers accept at most 64 MiB per message.
constexpr int64_t kLargestBody = (64 << 20) - kHeaderAllowance;

Status ValidateOptions(const RequestQueueOptions& options) {
  if (options.max_body_bytes <= 0 || options.max_body_bytes > kLargestBody) {
    return Status::Invalid("request queue max_body_bytes ", options.max_body_bytes,
                           " is out of range: use 1 to ", kLargestBody, " bytes");
  }
  if (options.duplicate_window < std::chrono::milliseconds(100)) {
    return Status::Invalid("request queue duplicate_window ", options.duplicate_window.count(),
                           " ms is too short: use at least 100 ms (default 2 min)");
  }
  return Status::OK();
}

Status CheckServerPayload(NatsConnection& connection, const RequestQueueOptions& options) {
  const int64_t needed = options.max_body_bytes + kHeaderAllowance;
  const int64_t server = natsConnection_GetMaxPayload(connection.connection());
  if (server >= needed) return Status::OK();
  return Status::Invalid("the NATS server accepts messages of at most ", server,
                         " bytes (its max_payload) but requests may have bodies of ",
                         options.max_body_bytes, " bytes: set max_payload: ", needed,
                         " in the server's config, or lower the request size limit");
}

Status PublishError(natsStatus status, jsErrCode error, const std::string& model,
                    const std::string& request_id, std::chrono::milliseconds timeout) {
  const std::string what = "request " + request_id + " for model " + model;
  if (status == NATS_TIMEOUT) {
    return Status::IOError("JetStream did not acknowledge ", what, " within ", timeout.count(),
                           " ms: it may or may not be stored; submit it again with the same "
                           "request_id (duplicates are dropped)");
  }
  if (status == NATS_NO_RESPONDERS) {
    return Status::IOError("no JetStream stream takes ", RequestSubject(model),
                           ": is JetStream enabled on the server, and was the stream ",
                           kRequestStream, " deleted? Restart the client to recreate it");
  }
  return FromNats(status, "cannot submit " + what, error);
}

}  // namespace

Result<std::unique_ptr<RequestQueue>> RequestQueue::Make(NatsConnection& connection,
                                                         const RequestQueueOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateOptions(options));
  ARROW_RETURN_NOT_OK(CheckServerPayload(connection, options));
  ARROW_RETURN_NOT_OK(bus_internal::EnsureStream(
      connection.jetstream(),
      {.name = std::string(kRequestStream),
       .subjects = std::string(kRequestSubjects),
       .retention = js_WorkQueuePolicy,
       .duplicate_window = options.duplicate_window,
       .max_msg_size = static_cast<int32_t>(options.max_body_bytes + kHeaderAllowance),
       .update_existing = options.configure,
       .replicas = connection.stream_replicas()}));
  return std::unique_ptr<RequestQueue>(new RequestQueue(connection, options));
}

Result<PublishAck> RequestQueue::Submit(const std::string& model, const std::string& request_id,
                                        std::string_view body) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  ARROW_RETURN_NOT_OK(ValidateRequestId(request_id));
  if (static_cast<int64_t>(body.size()) > options_.max_body_bytes) {
    return Status::Invalid("request ", request_id, " for model ", model, " is ", body.size(),
                           " bytes, over the limit of ", options_.max_body_bytes,
                           " bytes (the queue's message size): upload large rows first "
                           "(`teatree submit --upload FILE`; Teatree's clients do it by "
                           "themselves) and name the upload in \"source\"");
  }
  ARROW_ASSIGN_OR_RAISE(
      auto msg, bus_internal::MakeMessage(RequestSubject(model), body,
                                          {{kMsgIdHeader, MessageId(model, request_id)}},
                                          "cannot build the message for request " + request_id));
  PubAckHandle ack;
  jsErrCode error = jsErrCode(0);
  const natsStatus status = bus_internal::PublishToStream(
      connection_.jetstream(), msg.get(), std::string(kRequestStream), &ack, &error);
  if (status != NATS_OK) {
    return PublishError(status, error, model, request_id, connection_.request_timeout());
  }
  return PublishAck{.sequence = ack->Sequence, .duplicate = ack->Duplicate};
}

Status RequestQueue::Purge(const std::string& model, uint64_t before) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  const std::string subject = RequestSubject(model);
  jsOptions options;
  jsOptions_Init(&options);
  options.Stream.Purge.Subject = subject.c_str();
  options.Stream.Purge.Sequence = before;
  jsErrCode error = jsErrCode(0);
  const natsStatus status = js_PurgeStream(connection_.jetstream(),
                                           std::string(kRequestStream).c_str(), &options, &error);
  return FromNats(status, "cannot remove the queued requests of model " + model, error);
}

Result<uint64_t> RequestQueue::LastSequence() {
  ARROW_ASSIGN_OR_RAISE(auto info, bus_internal::GetStreamInfo(connection_.jetstream(),
                                                               std::string(kRequestStream), ""));
  return info->State.LastSeq;
}

Result<uint64_t> RequestQueue::Backlog(const std::string& model) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  const std::string subject = RequestSubject(model);
  ARROW_ASSIGN_OR_RAISE(
      auto info,
      bus_internal::GetStreamInfo(connection_.jetstream(), std::string(kRequestStream), subject));
  const jsStreamStateSubjects* subjects = info->State.Subjects;
  for (int i = 0; subjects != nullptr && i < subjects->Count; ++i) {
    if (subject == subjects->List[i].Subject) return subjects->List[i].Msgs;
  }
  return 0;
}

Result<std::vector<std::string>> RequestQueue::ModelsWithBacklog() {
  ARROW_ASSIGN_OR_RAISE(
      auto info, bus_internal::GetStreamInfo(connection_.jetstream(), std::string(kRequestStream),
                                             std::string(kRequestSubjects)));
  const std::string prefix = RequestSubject("");
  std::vector<std::string> models;
  const jsStreamStateSubjects* subjects = info->State.Subjects;
  for (int i = 0; subjects != nullptr && i < subjects->Count; ++i) {
    const std::string_view subject = subjects->List[i].Subject;
    if (subjects->List[i].Msgs > 0 && subject.starts_with(prefix)) {
      models.emplace_back(subject.substr(prefix.size()));
    }
  }
  std::sort(models.begin(), models.end());
  return models;
}

}  // namespace teatree
