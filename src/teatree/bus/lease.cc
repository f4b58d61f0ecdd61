#include "teatree/bus/lease.h"

#include <nats/nats.h>

#include <algorithm>
#include <charconv>

#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_handles_internal.h"
#include "teatree/bus/nats_status_internal.h"
#include "teatree/bus/subjects.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

using bus_internal::KvEntryHandle;
using bus_internal::MsgHandle;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::system_clock;

using KvStoreHandle = bus_internal::Handle<kvStore, kvStore_Destroy>;
using KvStatusHandle = bus_internal::Handle<kvStatus, kvStatus_Destroy>;

constexpr milliseconds kMinTtl(200);
constexpr int kAcquireAttempts = 3;

// nats.c wants NUL-terminated names; subjects.h's constants are views of literals.
constexpr const char* kBucket = kLeaseBucket.data();

// The stored value: "<acquired, ms since the epoch> <holder>".
std::string EncodeValue(system_clock::time_point acquired, const std::string& holder) {
  return std::to_string(duration_cast<milliseconds>(acquired.time_since_epoch()).count()) + " " +
         holder;
}

std::string_view EntryValue(kvEntry* entry) {
  const void* data = kvEntry_Value(entry);
  if (data == nullptr) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(kvEntry_ValueLen(entry))};
}

LeaseInfo MakeInfo(kvEntry* entry, nanoseconds ttl) {
  LeaseInfo info;
  info.revision = kvEntry_Revision(entry);
  info.renewed = system_clock::time_point(
      duration_cast<system_clock::duration>(nanoseconds(kvEntry_Created(entry))));
  info.acquired = info.renewed;
  const std::string_view value = EntryValue(entry);
  int64_t acquired_ms = 0;
  const size_t space = value.find(' ');
  const auto parsed =
      std::from_chars(value.data(), value.data() + std::min(space, value.size()), acquired_ms);
  if (space != std::string_view::npos && parsed.ec == std::errc()) {
    info.acquired = system_clock::time_point(milliseconds(acquired_ms));
    info.holder = std::string(value.substr(space + 1));
  } else {
    info.holder = std::string(value);  // Not written by Lease; show it as it is.
  }
  const auto now = system_clock::now();
  info.age = duration_cast<milliseconds>(now - info.acquired);
  info.expires_in = duration_cast<milliseconds>(info.renewed + ttl - now);
  return info;
}

Status HeldBy(const std::string& model, const LeaseInfo& info) {
  const int64_t ms = info.expires_in.count();
  if (ms <= 0) {
    return Status::AlreadyExists("model ", model, " is held by ", info.holder, " (lease lapsed ",
                                 -ms, " ms ago; NATS removes it shortly): retry in a moment");
  }
  return Status::AlreadyExists("model ", model, " is held by ", info.holder, " (lease expires in ",
                               (ms + 999) / 1000, " s): stop that manager or wait");
}

/// A model's name, or the dispatcher's lease.
Status ValidateKey(const std::string& model) {
  return model == kDispatcherLease ? Status::OK() : ValidateName("model", model);
}

Status ValidateAcquire(const std::string& model, const std::string& holder,
                       const LeaseOptions& options) {
  ARROW_RETURN_NOT_OK(ValidateKey(model));
  if (holder.empty() || holder.find_first_of("\r\n") != std::string::npos) {
    return Status::Invalid("lease holder \"", holder,
                           "\" is invalid: describe the holder on one non-empty line, e.g. "
                           "\"manager host:pid 1234\"");
  }
  if (options.ttl < kMinTtl) {
    return Status::Invalid("lease ttl ", options.ttl.count(), " ms is too short: use at least ",
                           kMinTtl.count(), " ms (default 10 s)");
  }
  return Status::OK();
}

// The lease bucket; with `create_ttl`, created with that TTL if absent, else a KeyError.
Result<KvStoreHandle> OpenBucket(NatsConnection& connection,
                                 std::optional<milliseconds> create_ttl) {
  jsCtx* js = connection.jetstream();
  kvStore* raw = nullptr;
  natsStatus status = js_KeyValue(&raw, js, kBucket);
  if (status == NATS_OK) return KvStoreHandle(raw);
  if (status != NATS_NOT_FOUND) {
    return FromNats(status, std::string("cannot open the lease bucket ") + kBucket);
  }
  if (!create_ttl) return Status::KeyError("lease bucket ", kBucket, " does not exist");
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = kBucket;
  config.History = 1;
  config.TTL = bus_internal::Nanos(*create_ttl);
  config.StorageType = js_FileStorage;
  config.Replicas = connection.stream_replicas();
  status = js_CreateKeyValue(&raw, js, &config);
  if (status == NATS_OK) return KvStoreHandle(raw);
  // A racing Acquire may have created it meanwhile (perhaps with another TTL: checked next).
  if (js_KeyValue(&raw, js, kBucket) == NATS_OK) return KvStoreHandle(raw);
  return FromNats(status, std::string("cannot create the lease bucket ") + kBucket);
}

Result<nanoseconds> BucketTtl(kvStore* kv) {
  kvStatus* raw = nullptr;
  ARROW_RETURN_NOT_OK(
      FromNats(kvStore_Status(&raw, kv), std::string("cannot read the lease bucket ") + kBucket));
  KvStatusHandle status(raw);
  return nanoseconds(kvStatus_TTL(raw));
}

Status CheckTtl(kvStore* kv, milliseconds wanted) {
  ARROW_ASSIGN_OR_RAISE(nanoseconds ttl, BucketTtl(kv));
  if (ttl == wanted) return Status::OK();
  return Status::Invalid("lease bucket ", kBucket, " expires leases after ",
                         duration_cast<milliseconds>(ttl).count(), " ms but this lease asks for ",
                         wanted.count(),
                         " ms: use the same lease TTL for every manager, or "
                         "delete the bucket while no manager runs (nats kv del ",
                         kBucket, ")");
}

// The key's current entry; a null handle when there is none (never set, expired, released).
Result<KvEntryHandle> GetEntry(kvStore* kv, const std::string& model) {
  kvEntry* raw = nullptr;
  const natsStatus status = kvStore_Get(&raw, kv, model.c_str());
  if (status == NATS_NOT_FOUND) return KvEntryHandle();
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot read the lease of model " + model));
  return KvEntryHandle(raw);
}

// Deletes the key if its last revision is still `revision`: a KV delete marker published with
// an expected subject sequence, so a lease taken over meanwhile is left alone.
Status DeleteIfRevision(jsCtx* js, const std::string& model, uint64_t revision) {
  const std::string subject = "$KV." + std::string(kBucket) + "." + model;
  const std::string context =
      "cannot release the lease of model " + model + " (it lapses by itself after its TTL)";
  natsMsg* raw = nullptr;
  ARROW_RETURN_NOT_OK(
      FromNats(natsMsg_Create(&raw, subject.c_str(), nullptr, nullptr, 0), context));
  MsgHandle msg(raw);
  ARROW_RETURN_NOT_OK(FromNats(natsMsgHeader_Set(raw, "KV-Operation", "DEL"), context));
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.ExpectLastSubjectSeq = revision;
  jsErrCode error = jsErrCode(0);
  const natsStatus status = js_PublishMsg(nullptr, js, raw, &options, &error);
  if (error == JSStreamWrongLastSequenceErr) return Status::OK();  // Not ours any more.
  return FromNats(status, context, error);
}

}  // namespace

Lease::Lease(NatsConnection& connection, KvHandle kv, std::string model, std::string holder,
             std::string value, LeaseOptions options, uint64_t revision, Clock::time_point sent)
    : connection_(connection),
      kv_(std::move(kv)),
      model_(std::move(model)),
      holder_(std::move(holder)),
      value_(std::move(value)),
      options_(std::move(options)),
      fencing_token_(revision),
      revision_(revision),
      deadline_ns_(duration_cast<nanoseconds>((sent + options_.ttl).time_since_epoch()).count()) {
  heartbeat_ = std::thread(&Lease::Heartbeat, this);
}

Result<std::unique_ptr<Lease>> Lease::Acquire(NatsConnection& connection, const std::string& model,
                                              const std::string& holder, LeaseOptions options) {
  ARROW_RETURN_NOT_OK(ValidateAcquire(model, holder, options));
  ARROW_ASSIGN_OR_RAISE(KvStoreHandle kv, OpenBucket(connection, options.ttl));
  ARROW_RETURN_NOT_OK(CheckTtl(kv.get(), options.ttl));
  const std::string value = EncodeValue(system_clock::now(), holder);
  Status last = Status::OK();
  for (int attempt = 0; attempt < kAcquireAttempts; ++attempt) {
    const auto sent = Clock::now();
    uint64_t revision = 0;
    const natsStatus status = kvStore_Create(&revision, kv.get(), model.c_str(), value.data(),
                                             static_cast<int>(value.size()));
    if (status == NATS_OK) {
      return std::unique_ptr<Lease>(new Lease(connection, KvHandle(kv.release(), kvStore_Destroy),
                                              model, holder, value, std::move(options), revision,
                                              sent));
    }
    last = FromNats(status, "cannot acquire the lease of model " + model);
    ARROW_ASSIGN_OR_RAISE(KvEntryHandle entry, GetEntry(kv.get(), model));
    if (entry) {
      return HeldBy(model, MakeInfo(entry.get(), options.ttl));
    }
    // The key vanished between our create and read (it lapsed or was released): try again.
  }
  return last;
}

Result<std::vector<std::string>> Lease::HeldModels(NatsConnection& connection) {
  auto kv = OpenBucket(connection, std::nullopt);
  if (!kv.ok()) {
    if (kv.status().IsKeyError()) return std::vector<std::string>();
    return kv.status();
  }
  kvKeysList keys{};
  const natsStatus status = kvStore_Keys(&keys, kv->get(), nullptr);
  std::vector<std::string> models;
  for (int i = 0; status == NATS_OK && i < keys.Count; ++i) {
    if (keys.Keys[i] != kDispatcherLease) models.emplace_back(keys.Keys[i]);
  }
  kvKeysList_Destroy(&keys);
  if (status == NATS_NOT_FOUND) return models;  // No keys at all.
  ARROW_RETURN_NOT_OK(FromNats(status, "cannot list the leases"));
  std::sort(models.begin(), models.end());
  return models;
}

Result<std::optional<LeaseInfo>> Lease::Inspect(NatsConnection& connection,
                                                const std::string& model) {
  ARROW_RETURN_NOT_OK(ValidateKey(model));
  auto kv = OpenBucket(connection, std::nullopt);
  if (!kv.ok()) {
    if (kv.status().IsKeyError()) return std::nullopt;
    return kv.status();
  }
  ARROW_ASSIGN_OR_RAISE(nanoseconds ttl, BucketTtl(kv->get()));
  ARROW_ASSIGN_OR_RAISE(KvEntryHandle entry, GetEntry(kv->get(), model));
  if (!entry) return std::nullopt;
  return MakeInfo(entry.get(), ttl);
}

Lease::~Lease() {
  (void)Release();
  StopHeartbeat();
}

bool Lease::held() const {
  const int64_t now = duration_cast<nanoseconds>(Clock::now().time_since_epoch()).count();
  return !lost_.load() && now < deadline_ns_.load();
}

void Lease::Heartbeat() {
  const auto period = options_.ttl / 3;
  const auto retry = std::max(options_.ttl / 10, milliseconds(10));
  auto next_renewal = Clock::now() + period;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point deadline{nanoseconds(deadline_ns_.load())};
    wake_.wait_until(lock, std::min(next_renewal, deadline), [this] { return stopping_; });
    if (stopping_) return;
    const auto now = Clock::now();
    if (now >= deadline) {
      lock.unlock();
      MarkLost(Status::IOError("the lease of model ", model_, " was not renewed within its TTL of ",
                               options_.ttl.count(),
                               " ms (NATS unreachable or too slow): stop writing"));
      return;
    }
    if (now < next_renewal) continue;
    lock.unlock();
    Status reason;
    const Renewal renewal = Renew(now, reason);
    lock.lock();
    if (renewal == Renewal::kLost) {
      if (stopping_) return;  // Being released anyway: no callback.
      lock.unlock();
      MarkLost(reason);
      return;
    }
    next_renewal = renewal == Renewal::kRenewed ? now + period : Clock::now() + retry;
  }
}

Lease::Renewal Lease::Renew(Clock::time_point sent, Status& reason) {
  uint64_t revision = 0;
  const natsStatus status = kvStore_Update(&revision, kv_.get(), model_.c_str(), value_.data(),
                                           static_cast<int>(value_.size()), revision_);
  if (status == NATS_OK) return Renewed(revision, sent, reason);
  reason = FromNats(status, "cannot renew the lease of model " + model_);
  // Tell a lost lease from a failed call by reading the key.
  auto entry = GetEntry(kv_.get(), model_);
  if (!entry.ok()) return Renewal::kRetry;
  if (!*entry) {
    reason = Status::IOError("the lease of model ", model_,
                             " lapsed or was deleted (another manager may take over): stop "
                             "writing");
    return Renewal::kLost;
  }
  const uint64_t current = kvEntry_Revision(entry->get());
  if (current == revision_) return Renewal::kRetry;
  if (EntryValue(entry->get()) == value_) {
    return Renewed(current, sent, reason);  // Our update was stored but its answer was lost.
  }
  reason = Status::IOError("the lease of model ", model_, " was taken over by ",
                           MakeInfo(entry->get(), options_.ttl).holder, ": stop writing");
  return Renewal::kLost;
}

Lease::Renewal Lease::Renewed(uint64_t revision, Clock::time_point sent, Status& reason) {
  revision_ = revision;
  // held() may already have said false: keep it false rather than flip back.
  const int64_t now = duration_cast<nanoseconds>(Clock::now().time_since_epoch()).count();
  if (now >= deadline_ns_.load()) {
    reason = Status::IOError("the lease of model ", model_, " was renewed only after its TTL of ",
                             options_.ttl.count(), " ms had run out (NATS too slow): stop writing");
    return Renewal::kLost;
  }
  deadline_ns_.store(duration_cast<nanoseconds>((sent + options_.ttl).time_since_epoch()).count());
  return Renewal::kRenewed;
}

void Lease::MarkLost(const Status& reason) {
  lost_.store(true);
  if (!callback_fired_.exchange(true) && options_.on_lost) options_.on_lost(reason);
}

void Lease::StopHeartbeat() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  // Called from on_lost, the thread is about to end; the destructor joins it later.
  if (heartbeat_.joinable() && heartbeat_.get_id() != std::this_thread::get_id()) {
    heartbeat_.join();
  }
}

Status Lease::Release() {
  if (released_.exchange(true)) return Status::OK();
  StopHeartbeat();
  if (lost_.exchange(true)) return Status::OK();  // Lost: not ours to delete.
  return DeleteIfRevision(connection_.jetstream(), model_, revision_);
}

}  // namespace teatree
