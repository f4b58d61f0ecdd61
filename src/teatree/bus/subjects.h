#pragma once

#include <string>
#include <string_view>

namespace teatree {

// The names Teatree uses on NATS, in one place: every process (client, dispatcher, manager,
// `teatree status`) must agree on them. Model names are validated (ValidateName) before
// they are put into a subject.

/// The JetStream stream holding submitted requests until a manager acknowledges them.
inline constexpr std::string_view kRequestStream = "TEATREE_REQ";
/// Subjects of the request stream: one per model.
inline constexpr std::string_view kRequestSubjects = "teatree.req.*";
/// The stream keeping requests that failed MaxDeliver times, for inspection.
inline constexpr std::string_view kDeadLetterStream = "TEATREE_DEAD";
inline constexpr std::string_view kDeadLetterSubjects = "teatree.dead.*";
/// The stream keeping notifications (outcomes, published versions, result pages) for a
/// while, so that a client can wait for an outcome without racing it, or resume a result.
inline constexpr std::string_view kNoteStream = "TEATREE_NOTE";
inline constexpr std::string_view kNoteSubjects = "teatree.note.>";
/// The KV bucket holding one lease per model (single writer).
inline constexpr std::string_view kLeaseBucket = "teatree_leases";
/// The KV bucket of the models that exist: one key per model, made by `teatree model create`
/// or a model's first create_table; requests for other models are refused.
inline constexpr std::string_view kModelBucket = "teatree_models";

/// Message headers.
inline constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
inline constexpr const char* kErrorHeader = "Teatree-Error";
inline constexpr const char* kModelHeader = "Teatree-Model";
inline constexpr const char* kDeliveriesHeader = "Teatree-Deliveries";

/// teatree.req.<model>
inline std::string RequestSubject(std::string_view model) {
  return "teatree.req." + std::string(model);
}
/// teatree.dead.<model>
inline std::string DeadLetterSubject(std::string_view model) {
  return "teatree.dead." + std::string(model);
}
/// teatree.note.<model>: every outcome and version_published message of a model.
inline std::string NoteSubject(std::string_view model) {
  return "teatree.note." + std::string(model);
}
/// teatree.note.<model>.<request_id>: the result pages of one request, then its outcome. The
/// id is one subject token: each '.' in it (a request id may hold "a..b" or end in '.', which
/// as separators would be empty tokens) is written "%2E"; '%' is in no request id.
inline std::string RequestNoteSubject(std::string_view model, std::string_view request_id) {
  std::string subject = NoteSubject(model) + ".";
  for (char c : request_id) {
    if (c == '.') {
      subject += "%2E";
    } else {
      subject += c;
    }
  }
  return subject;
}

/// The Nats-Msg-Id of a request: `<model>/<request_id>`. JetStream drops a message whose id
/// it stored within the duplicate window anywhere in the stream, while request ids are
/// unique per model; the model in front keeps two models' "r1" apart. Neither part can hold
/// a '/'.
inline std::string MessageId(std::string_view model, std::string_view request_id) {
  return std::string(model) + "/" + std::string(request_id);
}

/// teatree.note.<model>.~status: a manager's state, now and then ('~' is in no request
/// id, so this never meets a request's subject).
inline std::string ManagerStatusSubject(std::string_view model) {
  return NoteSubject(model) + ".~status";
}

/// teatree-<model>: the durable pull consumer of a model's requests.
inline std::string ConsumerName(std::string_view model) { return "teatree-" + std::string(model); }

}  // namespace teatree
