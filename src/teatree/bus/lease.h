#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "teatree/bus/type_fwd.h"
#include "teatree/common/status.h"

namespace teatree {

struct LeaseOptions {
  /// A lease not renewed for this long lapses and another holder may take it. Every lease
  /// shares the bucket's TTL: the first Acquire creates the bucket with it, and an Acquire
  /// asking for a different one is refused.
  std::chrono::milliseconds ttl = std::chrono::seconds(10);
  /// Called once, from the heartbeat thread, when the lease is lost: it was taken over or
  /// deleted, or could not be renewed within the TTL. By then held() is already false. It
  /// must not destroy the Lease (Release() is fine).
  std::function<void(const Status& reason)> on_lost;
};

/// The lease of the dispatcher itself: where managers outlive their dispatcher (pods), one
/// dispatcher of the servers sharing a NATS acts at a time, the others stand by. Not a
/// model name: those have no '-'.
inline constexpr std::string_view kDispatcherLease = "teatree-dispatcher";

/// Who holds a model's lease, for `teatree status`.
struct LeaseInfo {
  std::string holder;
  /// KV revision of the last renewal.
  uint64_t revision = 0;
  std::chrono::system_clock::time_point acquired;
  std::chrono::system_clock::time_point renewed;
  /// Time since it was acquired.
  std::chrono::milliseconds age{0};
  /// Time until it lapses unless renewed; negative when overdue (NATS removes it shortly).
  std::chrono::milliseconds expires_in{0};
};

/// Single-writer fencing for a model: a key `<model>` in the JetStream KV bucket
/// `teatree_leases` (history 1, entries expire after the TTL), created only if absent. A
/// background thread renews it every TTL/3 with a compare-and-set on its revision, so a
/// holder that stalls or is cut off from NATS loses it, and one whose key was taken over
/// notices at the next renewal. The manager checks held() before every write and stops at
/// once when on_lost fires.
///
/// held() and fencing_token() are thread-safe; Release() and the destructor are called from
/// the owner's thread. The NatsConnection must outlive the Lease. Destroying it releases it.
class Lease {
 public:
  /// Takes the lease for `model` on behalf of `holder` (a description such as
  /// "manager host:pid 1234", shown to whoever is refused). While another holder has it,
  /// fails with an AlreadyExists error naming that holder and when its lease expires.
  static Result<std::unique_ptr<Lease>> Acquire(NatsConnection& connection,
                                                const std::string& model, const std::string& holder,
                                                LeaseOptions options = {});

  /// The models whose lease someone holds, sorted. Creates nothing.
  static Result<std::vector<std::string>> HeldModels(NatsConnection& connection);
  /// Who holds `model`'s lease, or nullopt when nobody does. Creates nothing.
  static Result<std::optional<LeaseInfo>> Inspect(NatsConnection& connection,
                                                  const std::string& model);

  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// True until the lease is lost, lapses (no renewal within the TTL, checked against the
  /// clock on every call) or is released.
  bool held() const;

  /// The KV revision at which this holder acquired the lease: it grows with every
  /// acquisition of any lease, so stores can refuse writes carrying an older token.
  uint64_t fencing_token() const { return fencing_token_; }

  const std::string& model() const { return model_; }
  const std::string& holder() const { return holder_; }

  /// Stops renewing and deletes the key if this holder still has it (compare-and-set on the
  /// revision), so another holder can acquire at once. Idempotent.
  Status Release();

 private:
  using Clock = std::chrono::steady_clock;
  using KvHandle = std::unique_ptr<kvStore, void (*)(kvStore*)>;
  enum class Renewal { kRenewed, kRetry, kLost };

  Lease(NatsConnection& connection, KvHandle kv, std::string model, std::string holder,
        std::string value, LeaseOptions options, uint64_t revision, Clock::time_point sent);

  void Heartbeat();
  /// One compare-and-set renewal sent at `sent`; `reason` says why it was not renewed.
  Renewal Renew(Clock::time_point sent, Status& reason);
  /// Records a stored renewal; kLost if it came back after the deadline.
  Renewal Renewed(uint64_t revision, Clock::time_point sent, Status& reason);
  void MarkLost(const Status& reason);
  void StopHeartbeat();

  NatsConnection& connection_;
  KvHandle kv_;
  const std::string model_;
  const std::string holder_;
  /// The value stored under the key: acquisition time and holder.
  const std::string value_;
  const LeaseOptions options_;
  const uint64_t fencing_token_;

  /// Written by the heartbeat thread only while it runs, read by Release() after it stopped.
  uint64_t revision_;
  /// Steady-clock nanoseconds after which the lease counts as lapsed: the time the last
  /// successful renewal was *sent* plus the TTL, so never later than the server's expiry.
  std::atomic<int64_t> deadline_ns_;
  /// Lost or released: held() is false for good.
  std::atomic<bool> lost_{false};
  std::atomic<bool> released_{false};
  std::atomic<bool> callback_fired_{false};

  /// State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;

  std::thread heartbeat_;
};

}  // namespace teatree
