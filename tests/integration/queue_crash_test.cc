// What survives kill -9 on the queue side: the manager killed 20 times during a stream of at
// least 10,000 requests, nats-server killed and restarted, and a request that brings its
// manager down every time. Every request JetStream acknowledged is applied exactly once.
#include <signal.h>

#include <random>

#include "queue_test_util.h"

namespace teatree::testing {
namespace {

class QueueCrashTest : public QueueFixture {
 protected:
  /// Submits append r<first>…r<first+count-1> (key = number), retrying a failed submission
  /// with the same id until JetStream acknowledges it, as a client must.
  void SubmitAll(const std::string& model, int first, int count,
                 const std::function<void(int)>& after_each = {}) {
    for (int i = first; i < first + count; ++i) {
      const Request request = Parse(Append(model, "r" + std::to_string(i), i));
      for (int attempt = 0;; ++attempt) {
        auto ack = client().Submit(request);
        if (ack.ok()) break;
        ASSERT_LT(attempt, 600) << ack.status().ToString();
        std::this_thread::sleep_for(milliseconds(100));
      }
      if (after_each) after_each(i);
    }
  }

  /// Waits until the model holds `expected` rows, then checks each key is there once.
  void ExpectExactlyOnce(const std::string& model, int expected) {
    const std::string want = std::to_string(expected);
    std::string rows;
    for (auto deadline = std::chrono::steady_clock::now() + seconds(300);
         std::chrono::steady_clock::now() < deadline;) {
      rows = Scalar(model, "SELECT count(*) FROM orders");
      if (rows == want) break;
      std::this_thread::sleep_for(milliseconds(500));
    }
    ASSERT_EQ(rows, want);
    EXPECT_EQ(Scalar(model,
                     "SELECT count(DISTINCT id) || ' ' || min(id) || ' ' || max(id) "
                     "FROM orders"),
              want + " 0 " + std::to_string(expected - 1));
  }
};

TEST_F(QueueCrashTest, KillNineOfTheManagerNeverLosesOrDoublesARequest) {
  constexpr int kRequests = 10'000;
  constexpr int kKills = 20;
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("crash")).applied());
  // At least kRequests, and more until the last kill: a manager that has applied everything
  // stops being restarted, and there would be nothing left to kill. At most 2 * kRequests,
  // so that the backlog left after the kills is applied in bounded time on a loaded machine.
  std::atomic<bool> killing{true};
  int submitted = 0;
  std::thread submitter([&] {
    constexpr int kBatch = 100;
    for (; submitted < kRequests || (killing && submitted < 2 * kRequests); submitted += kBatch) {
      SubmitAll("crash", submitted, kBatch);
    }
  });
  std::mt19937 random(20261123);
  int kills = 0;
  for (auto deadline = std::chrono::steady_clock::now() + seconds(240);
       kills < kKills && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<>(50, 400)(random)));
    const pid_t pid = ManagerPid("crash");
    if (pid == 0 || ::kill(pid, SIGKILL) != 0) continue;
    ++kills;
    // Wait for the dispatcher to start the next one before killing again.
    for (auto until = std::chrono::steady_clock::now() + seconds(30);
         std::chrono::steady_clock::now() < until;) {
      const pid_t next = ManagerPid("crash");
      if (next != 0 && next != pid) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  killing = false;
  submitter.join();
  EXPECT_EQ(kills, kKills);
  ExpectExactlyOnce("crash", submitted);
}

TEST_F(QueueCrashTest, KillNineOfNatsServerLosesNoAcknowledgedRequest) {
  constexpr int kRequests = 2'000;
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("bus")).applied());
  SubmitAll("bus", 0, kRequests, [&](int i) {
    if (i != kRequests / 2) return;
    ASSERT_TRUE(server_->process().Signal(SIGKILL).ok());
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_TRUE(server_->Restart().ok());
  });
  ExpectExactlyOnce("bus", kRequests);
}

TEST_F(QueueCrashTest, ARequestThatKillsItsManagerIsDeadLetteredAndTheRestApply) {
  std::vector<std::string> args = kFastManagerArgs;
  args.insert(args.end(), {"--max-deliver", "2"});
  StartDispatcher(args);
  ASSERT_TRUE(Run(CreateTable("poison")).applied());
  // A query that runs for minutes: each manager that takes it is killed while it runs.
  ASSERT_TRUE(client()
                  .Submit(Parse(R"({"request_id":"slow","model":"poison","op":"query",)"
                                R"("sql":"SELECT count(*) FROM range(1000000000000) t(x) )"
                                R"(WHERE x % 7 = 3"})"))
                  .ok());
  ASSERT_TRUE(client().Submit(Parse(Append("poison", "behind", 0))).ok());
  for (int kill = 0; kill < 2; ++kill) {
    pid_t pid = 0;
    for (auto until = std::chrono::steady_clock::now() + seconds(30);
         pid == 0 && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(milliseconds(100));
      pid = ManagerPid("poison");
    }
    ASSERT_NE(pid, 0);
    std::this_thread::sleep_for(milliseconds(1500));  // Well inside the query.
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    // The next manager starts once the lease has lapsed.
    for (auto until = std::chrono::steady_clock::now() + seconds(30);
         ManagerPid("poison") == pid && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  auto slow = client().Wait("poison", "slow", seconds(60));
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  EXPECT_EQ(slow->note["status"], "rejected");
  EXPECT_NE(slow->note.value("error", "").find("dead-lettered"), std::string::npos)
      << slow->note.dump();
  auto behind = client().Wait("poison", "behind", seconds(60));
  ASSERT_TRUE(behind.ok()) << behind.status().ToString();
  EXPECT_TRUE(behind->applied()) << behind->note.dump();
  EXPECT_TRUE(Run(Append("poison", "later", 1)).applied());
  EXPECT_EQ(Scalar("poison", "SELECT count(*) FROM orders"), "2");
}

}  // namespace
}  // namespace teatree::testing
