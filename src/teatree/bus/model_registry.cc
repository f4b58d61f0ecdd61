#include "teatree/bus/model_registry.h"

#include <nats/nats.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/subjects.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using KvStoreHandle = bus_internal::Handle<kvStore, kvStore_Destroy>;
using bus_internal::KvEntryHandle;
using bus_internal::StreamInfoHandle;

// nats.c wants NUL-terminated names; subjects.h's constants are views of literals.
constexpr const char* kBucket = kModelBucket.data();
// The stream behind a KV bucket.
const std::string kBucketStream = "KV_" + std::string(kModelBucket);

}  // namespace

struct ModelRegistry::Impl {
  NatsConnection* connection = nullptr;
  KvStoreHandle kv;
  // Models seen to exist; models are never removed, so a submitter asks NATS once per model.
  // Protected by mutex.
  std::mutex mutex;
  std::set<std::string> known;

  bool Known(const std::string& model) {
    std::lock_guard lock(mutex);
    return known.contains(model);
  }
  void Remember(const std::string& model) {
    std::lock_guard lock(mutex);
    known.insert(model);
  }

  Result<StreamInfoHandle> StreamInfo() {
    jsStreamInfo* raw = nullptr;
    jsErrCode error = jsErrCode(0);
    const natsStatus status =
        js_GetStreamInfo(&raw, connection->jetstream(), kBucketStream.c_str(), nullptr, &error);
    ARROW_RETURN_NOT_OK(FromNats(status, "cannot read the model registry", error));
    return StreamInfoHandle(raw);
  }
};

ModelRegistry::ModelRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRegistry::~ModelRegistry() = default;

Result<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(NatsConnection& connection) {
  auto impl = std::make_unique<Impl>();
  impl->connection = &connection;
  kvStore* raw = nullptr;
  natsStatus status = js_KeyValue(&raw, connection.jetstream(), kBucket);
  if (status == NATS_NOT_FOUND) {
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = kBucket;
    config.History = 1;
    config.StorageType = js_FileStorage;
    config.Replicas = connection.stream_replicas();
    status = js_CreateKeyValue(&raw, connection.jetstream(), &config);
    // Another process may have made it meanwhile.
    if (status != NATS_OK) status = js_KeyValue(&raw, connection.jetstream(), kBucket);
  }
  ARROW_RETURN_NOT_OK(
      FromNats(status, "cannot open the model registry (KV bucket " + std::string(kBucket) + ")"));
  impl->kv = KvStoreHandle(raw);
  return std::unique_ptr<ModelRegistry>(new ModelRegistry(std::move(impl)));
}

Status ModelRegistry::SetMaxModels(int64_t max_models) {
  if (max_models < 0) {
    return Status::Invalid("--max-models ", max_models, " is negative: give 0 (no bound) or more");
  }
  ARROW_ASSIGN_OR_RAISE(auto info, impl_->StreamInfo());
  jsStreamConfig config = *info->Config;
  // JetStream would make a lower limit true by dropping the oldest models: never below the
  // models there are.
  const int64_t wanted =
      max_models == 0 ? -1 : std::max(max_models, static_cast<int64_t>(info->State.Msgs));
  if (config.MaxMsgs == wanted && config.Discard == js_DiscardNew) return Status::OK();
  // One message per model (history 1); a full stream refuses the next create.
  config.MaxMsgs = wanted;
  config.Discard = js_DiscardNew;
  jsStreamInfo* updated = nullptr;
  jsErrCode error = jsErrCode(0);
  const natsStatus status =
      js_UpdateStream(&updated, impl_->connection->jetstream(), &config, nullptr, &error);
  StreamInfoHandle hold(updated);
  return FromNats(status, "cannot bound the model registry", error);
}

Result<bool> ModelRegistry::Exists(const std::string& model) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  if (impl_->Known(model)) return true;
  kvEntry* raw = nullptr;
  const natsStatus status = kvStore_Get(&raw, impl_->kv.get(), model.c_str());
  KvEntryHandle entry(raw);
  if (status == NATS_NOT_FOUND) return false;
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot look up model " + model));
  impl_->Remember(model);
  return true;
}

Result<bool> ModelRegistry::Create(const std::string& model, const std::string& engine) {
  ARROW_RETURN_NOT_OK(ValidateName("model", model));
  if (!engine.empty() && engine != "duckdb" && engine != "arrow") {
    return Status::Invalid("engine \"", engine, "\" is unknown: use duckdb or arrow");
  }
  ARROW_ASSIGN_OR_RAISE(bool exists, Exists(model));
  if (exists) return false;
  ARROW_ASSIGN_OR_RAISE(auto info, impl_->StreamInfo());
  const int64_t max = info->Config->MaxMsgs;
  if (max > 0 && static_cast<int64_t>(info->State.Msgs) >= max) {
    return Status::CapacityError("model ", model, " cannot be created: this server keeps at most ",
                                 max, " models (--max-models)");
  }
  const std::string value = engine.empty() ? "duckdb" : engine;
  const natsStatus status = kvStore_Create(nullptr, impl_->kv.get(), model.c_str(), value.data(),
                                           static_cast<int>(value.size()));
  if (status == NATS_OK) {
    impl_->Remember(model);
    return true;
  }
  // A concurrent creator of the same model won; of another model, it may have filled the
  // last place.
  ARROW_ASSIGN_OR_RAISE(exists, Exists(model));
  if (exists) return false;
  if (max <= 0) return FromNats(status, "cannot create model " + model);
  return Status::CapacityError("model ", model, " cannot be created: this server keeps at most ",
                               max, " models (--max-models)");
}

Result<std::vector<std::string>> ModelRegistry::List() {
  kvKeysList keys;
  const natsStatus status = kvStore_Keys(&keys, impl_->kv.get(), nullptr);
  std::vector<std::string> models;
  if (status == NATS_NOT_FOUND) return models;  // No keys yet.
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot list the models"));
  for (int i = 0; i < keys.Count; ++i) models.emplace_back(keys.Keys[i]);
  kvKeysList_Destroy(&keys);
  std::sort(models.begin(), models.end());
  return models;
}

Status ModelRegistry::Admit(const std::string& model, bool creates, const std::string& engine) {
  if (creates) return Create(model, engine).status();
  ARROW_ASSIGN_OR_RAISE(bool exists, Exists(model));
  if (exists) return Status::OK();
  return Status::KeyError("model ", model,
                          " does not exist: create it with `teatree model create --model ", model,
                          "` or submit a create_table first");
}

}  // namespace teatree
