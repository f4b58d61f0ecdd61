#include "teatree/bus/lease.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <future>
#include <thread>

#include "teatree/bus/test_util_internal.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

using LeaseTest = BusTest;

// Records on_lost calls; the future is ready after the first.
struct LostWatcher {
  std::promise<std::string> promise;
  std::future<std::string> lost = promise.get_future();
  std::atomic<int> calls{0};

  LeaseOptions Options(milliseconds ttl) {
    return {.ttl = ttl, .on_lost = [this](const Status& reason) {
              if (calls.fetch_add(1) == 0) promise.set_value(reason.message());
            }};
  }
};

TEST_F(LeaseTest, SecondAcquireFailsNamingTheHolder) {
  auto first = Lease::Acquire(connection(), "sales", "manager host-a:pid 1234").ValueOrDie();
  EXPECT_TRUE(first->held());
  auto second = Lease::Acquire(connection(), "sales", "manager host-b:pid 99");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message().rfind(
                "model sales is held by manager host-a:pid 1234 (lease expires in ", 0),
            0u)
      << second.status().message();
  ExpectError(second.status(), " s): stop that manager or wait");
  EXPECT_TRUE(first->held());
  // Other models are independent.
  EXPECT_TRUE(Lease::Acquire(connection(), "orders", "manager host-b:pid 99").ok());
}

TEST_F(LeaseTest, ReleaseLetsAnotherHolderAcquireAtOnce) {
  auto first = Lease::Acquire(connection(), "sales", "manager a").ValueOrDie();
  ASSERT_TRUE(first->Release().ok());
  EXPECT_FALSE(first->held());
  auto second = Lease::Acquire(connection(), "sales", "manager b");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT((*second)->fencing_token(), first->fencing_token());
  // Releasing again, or a lease already taken over, touches nothing.
  EXPECT_TRUE(first->Release().ok());
  EXPECT_TRUE((*second)->held());
  EXPECT_EQ(Lease::Inspect(connection(), "sales").ValueOrDie()->holder, "manager b");
}

TEST_F(LeaseTest, DestructorReleases) {
  Lease::Acquire(connection(), "sales", "manager a").ValueOrDie().reset();
  EXPECT_TRUE(Lease::Acquire(connection(), "sales", "manager b").ok());
}

TEST_F(LeaseTest, HeartbeatKeepsTheLeasePastItsTtl) {
  LostWatcher watcher;
  auto lease =
      Lease::Acquire(connection(), "sales", "manager a", watcher.Options(milliseconds(600)))
          .ValueOrDie();
  std::this_thread::sleep_for(milliseconds(2000));
  EXPECT_TRUE(lease->held());
  EXPECT_EQ(watcher.calls.load(), 0);
  ExpectError(
      Lease::Acquire(connection(), "sales", "manager b", {.ttl = milliseconds(600)}).status(),
      "is held by manager a");
}

// A holder cut off from NATS stops holding within the TTL and is told so; once the TTL has
// passed on the server, another holder acquires the key.
TEST_F(LeaseTest, LapsedLeaseIsLostByItsHolderAndAcquirableByAnother) {
  constexpr milliseconds kTtl(1000);
  auto cut_off = Connect();
  LostWatcher watcher;
  auto lease = Lease::Acquire(*cut_off, "sales", "manager a", watcher.Options(kTtl)).ValueOrDie();
  natsConnection_Close(cut_off->connection());
  const auto closed = Clock::now();
  ExpectError(Lease::Acquire(connection(), "sales", "manager b", {.ttl = kTtl}).status(),
              "is held by manager a");

  // Whenever the other holder gets the key, this one had stopped holding it before.
  Result<std::unique_ptr<Lease>> taken = Status::UnknownError("not tried");
  int64_t unheld_after = -1;
  while (!taken.ok() && MillisSince(closed) < 5000) {
    const bool held_before = lease->held();
    if (!held_before && unheld_after < 0) unheld_after = MillisSince(closed);
    taken = Lease::Acquire(connection(), "sales", "manager b", {.ttl = kTtl});
    if (taken.ok()) {
      EXPECT_FALSE(held_before);
    } else {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  const int64_t acquired_after = MillisSince(closed);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_GE(acquired_after, kTtl.count() / 2);

  ASSERT_EQ(watcher.lost.wait_for(seconds(3)), std::future_status::ready);
  EXPECT_NE(watcher.lost.get().find("was not renewed within its TTL"), std::string::npos);
  EXPECT_FALSE(lease->held());
  EXPECT_EQ(watcher.calls.load(), 1);
  std::cout << "  the holder cut off from NATS stopped holding after " << unheld_after
            << " ms, another acquired the lease after " << acquired_after << " ms (TTL "
            << kTtl.count() << " ms)\n";
}

// Someone overwrites the key (a split brain, an operator): the holder notices at its next
// renewal and stops.
TEST_F(LeaseTest, TakenOverLeaseFiresTheCallbackOnce) {
  LostWatcher watcher;
  auto lease =
      Lease::Acquire(connection(), "sales", "manager a", watcher.Options(milliseconds(900)))
          .ValueOrDie();
  kvStore* kv = nullptr;
  ASSERT_EQ(js_KeyValue(&kv, connection().jetstream(), "teatree_leases"), NATS_OK);
  ASSERT_EQ(kvStore_PutString(nullptr, kv, "sales", "1 intruder"), NATS_OK);
  kvStore_Destroy(kv);
  const auto overwritten = Clock::now();

  ASSERT_EQ(watcher.lost.wait_for(seconds(3)), std::future_status::ready);
  EXPECT_LT(MillisSince(overwritten), 900);  // The next renewal, TTL/3 later, sees it.
  EXPECT_NE(watcher.lost.get().find("taken over by intruder"), std::string::npos);
  EXPECT_FALSE(lease->held());
  // Releasing leaves the intruder's key alone.
  EXPECT_TRUE(lease->Release().ok());
  EXPECT_EQ(Lease::Inspect(connection(), "sales").ValueOrDie()->holder, "intruder");
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(watcher.calls.load(), 1);
}

// Release deletes the key only at the revision this holder wrote last.
TEST_F(LeaseTest, ReleaseLeavesAKeyTakenOverMeanwhileAlone) {
  auto lease = Lease::Acquire(connection(), "sales", "manager a").ValueOrDie();
  kvStore* kv = nullptr;
  ASSERT_EQ(js_KeyValue(&kv, connection().jetstream(), "teatree_leases"), NATS_OK);
  ASSERT_EQ(kvStore_PutString(nullptr, kv, "sales", "1 intruder"), NATS_OK);
  kvStore_Destroy(kv);
  // Before the next renewal (TTL/3 = 3.3 s) notices.
  EXPECT_TRUE(lease->Release().ok());
  auto info = Lease::Inspect(connection(), "sales").ValueOrDie();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->holder, "intruder");
}

TEST_F(LeaseTest, InspectReportsHolderAndAge) {
  EXPECT_FALSE(Lease::Inspect(connection(), "sales").ValueOrDie().has_value());
  auto lease = Lease::Acquire(connection(), "sales", "manager host:pid 7").ValueOrDie();
  std::this_thread::sleep_for(milliseconds(150));
  auto info = Lease::Inspect(connection(), "sales").ValueOrDie();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->holder, "manager host:pid 7");
  EXPECT_GE(info->age.count(), 100);
  EXPECT_LT(info->age.count(), 5000);
  EXPECT_GT(info->expires_in.count(), 5000);
  EXPECT_LE(info->expires_in.count(), 10000);
  EXPECT_GE(info->revision, lease->fencing_token());
  EXPECT_FALSE(Lease::Inspect(connection(), "orders").ValueOrDie().has_value());
}

TEST_F(LeaseTest, ADifferentTtlThanTheBucketsIsRefused) {
  auto lease = Lease::Acquire(connection(), "sales", "manager a", {.ttl = seconds(1)}).ValueOrDie();
  ExpectError(Lease::Acquire(connection(), "orders", "manager b", {.ttl = seconds(2)}).status(),
              "lease bucket teatree_leases expires leases after 1000 ms but this lease asks for "
              "2000 ms");
}

TEST_F(LeaseTest, BadInputRefused) {
  ExpectError(Lease::Acquire(connection(), "Sales", "manager").status(), "model name \"Sales\"");
  ExpectError(Lease::Acquire(connection(), "sales", "").status(), "lease holder \"\" is invalid");
  ExpectError(Lease::Acquire(connection(), "sales", "m", {.ttl = milliseconds(10)}).status(),
              "lease ttl 10 ms is too short");
}

}  // namespace
}  // namespace teatree
