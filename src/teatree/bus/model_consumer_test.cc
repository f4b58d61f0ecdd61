#include "teatree/bus/model_consumer.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <future>
#include <thread>

#include "teatree/bus/request_queue.h"
#include "teatree/bus/test_util_internal.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::string Header(natsMsg* msg, const char* name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, name, &value) != NATS_OK) return "<missing " + std::string(name) + ">";
  return value;
}

class ModelConsumerTest : public BusTest {
 protected:
  void SetUp() override {
    BusTest::SetUp();
    queue_ = Queue();
  }

  std::unique_ptr<ModelConsumer> Consumer(const ModelConsumerOptions& options = {}) {
    return ModelConsumer::Make(connection(), "sales", options).ValueOrDie();
  }

  void Submit(const std::string& id, const std::string& body = "{}") {
    auto ack = queue_->Submit("sales", id, body);
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  }

  // The one delivery expected within `wait`.
  static Result<Delivery> FetchOne(ModelConsumer& consumer, milliseconds wait = seconds(3)) {
    ARROW_ASSIGN_OR_RAISE(auto deliveries, consumer.Fetch(1, wait));
    if (deliveries.size() != 1) {
      return Status::Invalid("expected one delivery within ", wait.count(), " ms, got ",
                             deliveries.size());
    }
    return std::move(deliveries.front());
  }

  std::unique_ptr<RequestQueue> queue_;
};

TEST_F(ModelConsumerTest, FetchTimeoutReturnsEmpty) {
  auto consumer = Consumer();
  const auto start = Clock::now();
  auto deliveries = consumer->Fetch(5, milliseconds(300));
  ASSERT_TRUE(deliveries.ok()) << deliveries.status().ToString();
  EXPECT_TRUE(deliveries->empty());
  EXPECT_GE(MillisSince(start), 250);
  EXPECT_LT(MillisSince(start), 2000);
}

TEST_F(ModelConsumerTest, FetchReturnsTheFirstRequestWithoutWaitingForAFullBatch) {
  auto consumer = Consumer();
  const auto start = Clock::now();
  auto fetched = std::async(std::launch::async, [&] { return consumer->Fetch(100, seconds(10)); });
  std::this_thread::sleep_for(milliseconds(200));
  Submit("late-1");
  auto deliveries = fetched.get().ValueOrDie();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].request_id(), "late-1");
  EXPECT_LT(MillisSince(start), 2000);
  EXPECT_TRUE(deliveries[0].Ack().ok());
}

TEST_F(ModelConsumerTest, FetchReturnsWhatIsWaitingAtOnce) {
  auto consumer = Consumer();
  for (const char* id : {"w1", "w2", "w3"}) Submit(id);
  const auto start = Clock::now();
  auto deliveries = consumer->Fetch(100, seconds(10)).ValueOrDie();
  EXPECT_LT(MillisSince(start), 2000);
  ASSERT_EQ(deliveries.size(), 3u);
  for (auto& delivery : deliveries) EXPECT_TRUE(delivery.Ack().ok());
}

TEST_F(ModelConsumerTest, FetchTakesOnlyItsModelsRequests) {
  auto consumer = Consumer();
  ASSERT_TRUE(queue_->Submit("orders", "o1", "{}").ok());
  Submit("s1");
  auto deliveries = consumer->Fetch(10, milliseconds(500)).ValueOrDie();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].request_id(), "s1");
  EXPECT_TRUE(deliveries[0].Ack().ok());
}

TEST_F(ModelConsumerTest, NakRedeliversWithAHigherDeliveryCount) {
  auto consumer = Consumer();
  Submit("n1", "payload");
  Delivery first = FetchOne(*consumer).ValueOrDie();
  EXPECT_EQ(first.delivery_count(), 1u);
  ASSERT_TRUE(first.Nak().ok());
  Delivery second = FetchOne(*consumer).ValueOrDie();
  EXPECT_EQ(second.delivery_count(), 2u);
  EXPECT_EQ(second.stream_sequence(), first.stream_sequence());
  EXPECT_EQ(second.body(), "payload");

  ASSERT_TRUE(second.Nak(milliseconds(500)).ok());
  const auto naked = Clock::now();
  EXPECT_TRUE(consumer->Fetch(1, milliseconds(200)).ValueOrDie().empty());
  Delivery third = FetchOne(*consumer).ValueOrDie();
  EXPECT_GE(MillisSince(naked), 450);
  EXPECT_EQ(third.delivery_count(), 3u);
  EXPECT_TRUE(third.Ack().ok());
}

TEST_F(ModelConsumerTest, UnackedRequestRedeliveredAfterAckWait) {
  auto consumer = Consumer({.ack_wait = milliseconds(700)});
  Submit("slow-1");
  const auto fetched_at = Clock::now();
  Delivery first = FetchOne(*consumer).ValueOrDie();
  EXPECT_TRUE(consumer->Fetch(1, milliseconds(300)).ValueOrDie().empty());
  Delivery again = FetchOne(*consumer).ValueOrDie();
  EXPECT_GE(MillisSince(fetched_at), 650);
  EXPECT_EQ(again.request_id(), "slow-1");
  EXPECT_EQ(again.delivery_count(), 2u);
  EXPECT_TRUE(again.Ack().ok());
}

TEST_F(ModelConsumerTest, InProgressExtendsTheAckDeadline) {
  auto consumer = Consumer({.ack_wait = milliseconds(1000)});
  Submit("long-1");
  Delivery delivery = FetchOne(*consumer).ValueOrDie();
  std::this_thread::sleep_for(milliseconds(600));
  ASSERT_TRUE(delivery.InProgress().ok());
  const auto extended = Clock::now();
  // Without the signal it would come back at 1000 ms; now not before 1600 ms.
  EXPECT_TRUE(consumer->Fetch(1, milliseconds(700)).ValueOrDie().empty());
  Delivery again = FetchOne(*consumer).ValueOrDie();
  EXPECT_GE(MillisSince(extended), 900);
  EXPECT_EQ(again.delivery_count(), 2u);
  EXPECT_TRUE(again.Ack().ok());
}

TEST_F(ModelConsumerTest, BackoffSpacesRedeliveries) {
  auto consumer = Consumer({.max_deliver = 4, .backoff = {milliseconds(300), milliseconds(900)}});
  Submit("b1");
  const auto start = Clock::now();
  Delivery first = FetchOne(*consumer).ValueOrDie();
  Delivery second = FetchOne(*consumer).ValueOrDie();
  const int64_t first_gap = MillisSince(start);
  Delivery third = FetchOne(*consumer).ValueOrDie();
  const int64_t second_gap = MillisSince(start) - first_gap;
  EXPECT_EQ(third.delivery_count(), 3u);
  EXPECT_GE(first_gap, 250);
  EXPECT_LT(first_gap, 800);
  EXPECT_GE(second_gap, 800);
  EXPECT_TRUE(third.Ack().ok());
}

// A request that fails every time: delivered MaxDeliver times, the last one marked, then
// dead-lettered with its error; the requests behind it still go through.
TEST_F(ModelConsumerTest, PoisonRequestDeadLetteredAfterMaxDeliverAndOthersFlow) {
  auto consumer = Consumer({.max_deliver = 3});
  Submit("poison", "bad body");
  Submit("good-1");
  std::vector<uint64_t> poison_counts;
  std::vector<std::string> applied;
  const auto deadline = Clock::now() + seconds(10);
  while ((poison_counts.empty() || poison_counts.back() < 3 || applied.empty()) &&
         Clock::now() < deadline) {
    for (auto& delivery : consumer->Fetch(10, milliseconds(500)).ValueOrDie()) {
      if (delivery.request_id() != "poison") {
        applied.emplace_back(delivery.request_id());
        ASSERT_TRUE(delivery.Ack().ok());
        continue;
      }
      poison_counts.push_back(delivery.delivery_count());
      EXPECT_EQ(delivery.last_attempt(), delivery.delivery_count() == 3);
      if (delivery.last_attempt()) {
        ASSERT_TRUE(consumer->DeadLetter(delivery, "column \"x\" not found\nat row 3").ok());
      } else {
        ASSERT_TRUE(delivery.Nak().ok());
      }
    }
  }
  EXPECT_EQ(poison_counts, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(applied, (std::vector<std::string>{"good-1"}));
  EXPECT_EQ(queue_->Backlog("sales").ValueOrDie(), 0u);

  natsMsg* dead = nullptr;
  ASSERT_EQ(js_GetLastMsg(&dead, connection().jetstream(), "TEATREE_DEAD", "teatree.dead.sales",
                          nullptr, nullptr),
            NATS_OK);
  EXPECT_EQ(std::string(natsMsg_GetData(dead), natsMsg_GetDataLength(dead)), "bad body");
  EXPECT_EQ(Header(dead, "Teatree-Error"), "column \"x\" not found at row 3");
  EXPECT_EQ(Header(dead, "Teatree-Model"), "sales");
  EXPECT_EQ(Header(dead, "Nats-Msg-Id"), "sales/poison");
  EXPECT_EQ(Header(dead, "Teatree-Deliveries"), "3");
  natsMsg_Destroy(dead);

  // Later requests keep flowing, and the poison does not come back.
  Submit("good-2");
  auto later = consumer->Fetch(10, seconds(2)).ValueOrDie();
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].request_id(), "good-2");
  EXPECT_TRUE(later[0].Ack().ok());
}

// A manager that dies during a request's last attempt: the request comes back (the server
// does not stop at max_deliver) still marked as the last attempt, so the next manager
// dead-letters it instead of leaving it stuck in the queue.
TEST_F(ModelConsumerTest, LastAttemptLostWithItsManagerComesBack) {
  const ModelConsumerOptions options = {.ack_wait = milliseconds(400), .max_deliver = 2};
  auto consumer = Consumer(options);
  Submit("doomed");
  ASSERT_TRUE(FetchOne(*consumer).ValueOrDie().Nak().ok());
  Delivery last = FetchOne(*consumer).ValueOrDie();
  EXPECT_TRUE(last.last_attempt());
  consumer.reset();  // The manager dies without settling it.

  auto next = Consumer(options);
  Delivery again = FetchOne(*next).ValueOrDie();
  EXPECT_EQ(again.delivery_count(), 3u);
  EXPECT_TRUE(again.last_attempt());
  ASSERT_TRUE(next->DeadLetter(again, "gave up").ok());
  EXPECT_EQ(queue_->Backlog("sales").ValueOrDie(), 0u);
}

TEST_F(ModelConsumerTest, ExistingConsumerTakesNewOptions) {
  Consumer({.ack_wait = seconds(30)});
  Consumer({.ack_wait = seconds(2), .max_deliver = 7});
  jsConsumerInfo* info = nullptr;
  ASSERT_EQ(js_GetConsumerInfo(&info, connection().jetstream(), "TEATREE_REQ", "teatree-sales",
                               nullptr, nullptr),
            NATS_OK);
  EXPECT_EQ(info->Config->AckWait, 2'000'000'000);
  EXPECT_EQ(info->Config->MaxDeliver, -1);  // Teatree counts deliveries itself.
  EXPECT_STREQ(info->Config->FilterSubject, "teatree.req.sales");
  EXPECT_EQ(info->Config->AckPolicy, js_AckExplicit);
  jsConsumerInfo_Destroy(info);
}

TEST_F(ModelConsumerTest, BadOptionsAndMissingStreamAreClearErrors) {
  ExpectError(ModelConsumer::Make(connection(), "sales", {.max_deliver = 0}).status(),
              "max_deliver 0 must be at least 1");
  ExpectError(ModelConsumer::Make(connection(), "sales", {.backoff = {milliseconds(0)}}).status(),
              "consumer backoff delay 0 ms must be positive");
  ExpectError(ModelConsumer::Make(connection(), "Bad-Name").status(), "model name \"Bad-Name\"");

  auto empty_server = NatsServer::Start({.store_dir = dir_->path() / "empty"}).ValueOrDie();
  auto empty = NatsConnection::Connect({.url = empty_server->url()}).ValueOrDie();
  ExpectError(ModelConsumer::Make(*empty, "sales").status(), "create the request queue first");
}

TEST_F(ModelConsumerTest, SettlingAfterTheConsumerIsGoneFailsClearly) {
  auto consumer = Consumer();
  Submit("orphan");
  Delivery delivery = FetchOne(*consumer).ValueOrDie();
  consumer.reset();
  ExpectError(delivery.Ack(), "its ModelConsumer was destroyed");
}

}  // namespace
}  // namespace teatree
