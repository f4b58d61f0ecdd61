// Doctor check for NATS: the pinned nats-server and nats.c, through JetStream and KV.
#include <nats/nats.h>

#include <cstring>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_server.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/common/temp_dir.h"
#include "teatree/doctor/checks_internal.h"

namespace teatree {
namespace {

template <typename T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* handle) const { Destroy(handle); }
};
template <typename T, void (*Destroy)(T*)>
using Handle = std::unique_ptr<T, Deleter<T, Destroy>>;

Status CheckMinimumVersion(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2 ||
      (major < 2 || (major == 2 && minor < 10))) {
    return Status::Invalid("nats-server ", version,
                           " is too old: Teatree needs >= 2.10 for sync_interval; run "
                           "scripts/bootstrap or set TEATREE_NATS_SERVER");
  }
  return Status::OK();
}

Status PublishTwice(jsCtx* js) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MsgId = "doctor-1";
  const char* payload = "hello";
  for (int attempt = 0; attempt < 2; ++attempt) {
    jsPubAck* raw_ack = nullptr;
    jsErrCode error = jsErrCode(0);
    ARROW_RETURN_NOT_OK(
        FromNats(js_Publish(&raw_ack, js, "doctor.req", payload,
                            static_cast<int>(std::strlen(payload)), &options, &error),
                 "JetStream publish", error));
    Handle<jsPubAck, jsPubAck_Destroy> ack(raw_ack);
    if (ack->Duplicate != (attempt == 1)) {
      return Status::Invalid("Nats-Msg-Id deduplication did not behave: attempt ", attempt,
                             " duplicate=", ack->Duplicate);
    }
  }
  return Status::OK();
}

Status FetchAndAck(jsCtx* js) {
  natsSubscription* raw_sub = nullptr;
  jsErrCode error = jsErrCode(0);
  ARROW_RETURN_NOT_OK(
      FromNats(js_PullSubscribe(&raw_sub, js, "doctor.req", "doctor", nullptr, nullptr, &error),
               "JetStream pull subscribe", error));
  Handle<natsSubscription, natsSubscription_Destroy> sub(raw_sub);
  natsMsgList list{};
  ARROW_RETURN_NOT_OK(
      FromNats(natsSubscription_Fetch(&list, raw_sub, 10, 5000, &error), "JetStream fetch", error));
  Status status = list.Count == 1
                      ? FromNats(natsMsg_Ack(list.Msgs[0], nullptr), "ack")
                      : Status::Invalid("fetched ", list.Count, " messages, expected 1");
  natsMsgList_Destroy(&list);
  return status;
}

Status KeyValuePutGet(jsCtx* js) {
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = "doctor_kv";
  kvStore* raw_kv = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(js_CreateKeyValue(&raw_kv, js, &config), "KV create bucket"));
  Handle<kvStore, kvStore_Destroy> kv(raw_kv);
  uint64_t revision = 0;
  ARROW_RETURN_NOT_OK(FromNats(kvStore_PutString(&revision, raw_kv, "key", "value"), "KV put"));
  kvEntry* raw_entry = nullptr;
  ARROW_RETURN_NOT_OK(FromNats(kvStore_Get(&raw_entry, raw_kv, "key"), "KV get"));
  Handle<kvEntry, kvEntry_Destroy> entry(raw_entry);
  if (std::string(kvEntry_ValueString(raw_entry)) != "value") {
    return Status::Invalid("KV get returned a different value than was put");
  }
  return Status::OK();
}

}  // namespace

Result<CheckOutcome> CheckNats(const DoctorOptions& options) {
  NatsServerOptions server_options;
  server_options.binary = options.nats_server;
  const std::string binary = NatsServer::ResolveBinary(server_options);
  ARROW_ASSIGN_OR_RAISE(std::string server_version, NatsServer::BinaryVersion(binary));
  ARROW_RETURN_NOT_OK(CheckMinimumVersion(server_version));

  ARROW_ASSIGN_OR_RAISE(auto dir, TempDir::Make("teatree-doctor-nats-"));
  server_options.store_dir = dir->path() / "jetstream";
  ARROW_ASSIGN_OR_RAISE(auto server, NatsServer::Start(server_options));
  ARROW_ASSIGN_OR_RAISE(auto connection, NatsConnection::Connect({.url = server->url()}));
  jsCtx* js = connection->jetstream();

  jsStreamConfig stream;
  jsStreamConfig_Init(&stream);
  stream.Name = "DOCTOR";
  const char* subjects[] = {"doctor.>"};
  stream.Subjects = subjects;
  stream.SubjectsLen = 1;
  stream.Storage = js_FileStorage;
  jsErrCode error = jsErrCode(0);
  jsStreamInfo* info = nullptr;
  ARROW_RETURN_NOT_OK(
      FromNats(js_AddStream(&info, js, &stream, nullptr, &error), "JetStream add stream", error));
  jsStreamInfo_Destroy(info);

  ARROW_RETURN_NOT_OK(PublishTwice(js));
  ARROW_RETURN_NOT_OK(FetchAndAck(js));
  ARROW_RETURN_NOT_OK(KeyValuePutGet(js));
  connection.reset();
  ARROW_RETURN_NOT_OK(server->Stop());
  return CheckOutcome{"nats.c " + std::string(nats_GetVersion()) + ", server " + server_version,
                      "nats-server on " + server->url() +
                          ": stream, publish with Nats-Msg-Id (duplicate dropped), pull + ack, "
                          "KV put/get; stopped"};
}

}  // namespace teatree
