#include "teatree/bus/stream_setup_internal.h"

#include "teatree/bus/nats_status_internal.h"

namespace teatree::bus_internal {
namespace {

const char* RetentionName(jsRetentionPolicy retention) {
  switch (retention) {
    case js_LimitsPolicy:
      return "limits";
    case js_InterestPolicy:
      return "interest";
    case js_WorkQueuePolicy:
      return "workqueue";
  }
  return "unknown";
}

Status Incompatible(const StreamSpec& spec, const std::string& setting, const std::string& found,
                    const std::string& wanted) {
  return Status::Invalid("stream ", spec.name, " exists with ", setting, " ", found,
                         " but Teatree needs ", wanted,
                         ": something else created it; drain and delete it (nats stream rm ",
                         spec.name, ") or give Teatree its own NATS account");
}

Status CheckCompatible(const jsStreamConfig& found, const StreamSpec& spec) {
  const bool same_subjects = found.SubjectsLen == 1 && found.Subjects[0] == spec.subjects;
  if (!same_subjects) {
    std::string subjects;
    for (int i = 0; i < found.SubjectsLen; ++i) {
      subjects += (i == 0 ? "" : ",") + std::string(found.Subjects[i]);
    }
    return Incompatible(spec, "subjects", "[" + subjects + "]", "[" + spec.subjects + "]");
  }
  if (found.Storage != spec.storage) {
    auto name = [](jsStorageType storage) { return storage == js_FileStorage ? "file" : "memory"; };
    return Incompatible(spec, "storage", name(found.Storage), name(spec.storage));
  }
  if (found.Retention != spec.retention) {
    return Incompatible(spec, "retention", RetentionName(found.Retention),
                        RetentionName(spec.retention));
  }
  return Status::OK();
}

Status CreateStream(jsCtx* js, const StreamSpec& spec, jsErrCode* error) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = spec.name.c_str();
  const char* subjects[] = {spec.subjects.c_str()};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = spec.storage;
  config.Retention = spec.retention;
  config.Duplicates = Nanos(spec.duplicate_window);
  config.MaxMsgSize = spec.max_msg_size;
  config.MaxAge = Nanos(spec.max_age);
  config.MaxBytes = spec.max_bytes;
  config.Replicas = spec.replicas;
  jsStreamInfo* info = nullptr;
  const natsStatus status = js_AddStream(&info, js, &config, nullptr, error);
  jsStreamInfo_Destroy(info);
  if (status == NATS_OK || *error == JSStreamNameExistErr) return Status::OK();
  if (*error == JSStreamReplicasNotSupportedErr || *error == JSInsufficientResourcesErr) {
    return FromNats(status,
                    "cannot create stream " + spec.name + " with " + std::to_string(spec.replicas) +
                        " replicas: that needs a JetStream cluster of at least as many servers "
                        "(set --stream-replicas to the cluster's size, 1 for one server)",
                    *error);
  }
  return FromNats(status,
                  "cannot create stream " + spec.name + " on " + spec.subjects +
                      " (if another stream already takes these subjects, remove it)",
                  *error);
}

Status UpdateIfNeeded(jsCtx* js, jsStreamConfig& found, const StreamSpec& spec) {
  const int64_t window = Nanos(spec.duplicate_window);
  const int64_t age = Nanos(spec.max_age);
  if (found.Duplicates == window && found.MaxMsgSize == spec.max_msg_size && found.MaxAge == age &&
      found.MaxBytes == spec.max_bytes && found.Replicas == spec.replicas) {
    return Status::OK();
  }
  found.Replicas = spec.replicas;
  found.Duplicates = window;
  found.MaxMsgSize = spec.max_msg_size;
  found.MaxAge = age;
  found.MaxBytes = spec.max_bytes;
  jsStreamInfo* info = nullptr;
  jsErrCode error = jsErrCode(0);
  const natsStatus status = js_UpdateStream(&info, js, &found, nullptr, &error);
  jsStreamInfo_Destroy(info);
  return FromNats(
      status,
      "cannot update the duplicate window, message size, age, size bound and replicas of "
      "stream " +
          spec.name,
      error);
}

}  // namespace

Result<MsgHandle> MakeMessage(const std::string& subject, std::string_view body,
                              const std::vector<std::pair<const char*, std::string>>& headers,
                              const std::string& context) {
  natsMsg* raw = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(
      natsMsg_Create(&raw, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
      context));
  MsgHandle msg(raw);
  for (const auto& [name, value] : headers) {
    ARROW_RETURN_NOT_OK(FromNats(natsMsgHeader_Set(raw, name, value.c_str()), context));
  }
  return msg;
}

natsStatus PublishToStream(jsCtx* js, natsMsg* msg, const std::string& stream, PubAckHandle* ack,
                           jsErrCode* error) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.ExpectStream = stream.c_str();
  jsPubAck* raw = nullptr;
  const natsStatus status = js_PublishMsg(&raw, js, msg, &options, error);
  ack->reset(raw);
  return status;
}

Result<StreamInfoHandle> GetStreamInfo(jsCtx* js, const std::string& stream,
                                       const std::string& subjects_filter) {
  jsOptions options;
  jsOptions_Init(&options);
  if (!subjects_filter.empty()) options.Stream.Info.SubjectsFilter = subjects_filter.c_str();
  jsStreamInfo* raw = nullptr;
  jsErrCode error = jsErrCode(0);
  const natsStatus status = js_GetStreamInfo(&raw, js, stream.c_str(), &options, &error);
  if (status == NATS_NOT_FOUND || error == JSStreamNotFoundErr) {
    return Status::KeyError("stream ", stream, " does not exist: create it first");
  }
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot read stream " + stream, error));
  return StreamInfoHandle(raw);
}

Status EnsureStream(jsCtx* js, const StreamSpec& spec) {
  // Two rounds: a stream created by a racing process between our lookup and our create is
  // found on the second.
  for (int round = 0; round < 3; ++round) {
    auto info = GetStreamInfo(js, spec.name, "");
    if (info.ok() && spec.recreate_on_storage_change && (*info)->Config->Storage != spec.storage) {
      jsErrCode error = jsErrCode(0);
      ARROW_RETURN_NOT_OK(FromNats(js_DeleteStream(js, spec.name.c_str(), nullptr, &error),
                                   "cannot replace stream " + spec.name + " (other storage)",
                                   error));
      continue;
    }
    if (info.ok()) {
      ARROW_RETURN_NOT_OK(CheckCompatible(*(*info)->Config, spec));
      return spec.update_existing ? UpdateIfNeeded(js, *(*info)->Config, spec) : Status::OK();
    }
    if (!info.status().IsKeyError()) return info.status();
    jsErrCode error = jsErrCode(0);
    ARROW_RETURN_NOT_OK(CreateStream(js, spec, &error));
    if (error != JSStreamNameExistErr) return Status::OK();
  }
  return Status::IOError("stream ", spec.name,
                         " keeps appearing and vanishing: is another "
                         "process deleting it?");
}

}  // namespace teatree::bus_internal
