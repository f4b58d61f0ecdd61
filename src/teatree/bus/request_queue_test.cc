#include "teatree/bus/request_queue.h"

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <csignal>
#include <set>
#include <thread>

#include "teatree/bus/model_consumer.h"
#include "teatree/bus/subjects.h"
#include "teatree/bus/test_util_internal.h"
#include "teatree/common/subprocess.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using RequestQueueTest = BusTest;

// Fetches until `count` deliveries arrived or `timeout` passed.
std::vector<Delivery> FetchAll(ModelConsumer& consumer, size_t count, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Delivery> all;
  while (all.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer.Fetch(count - all.size(), milliseconds(200));
    if (!batch.ok()) {
      std::this_thread::sleep_for(milliseconds(50));  // Reconnecting.
      continue;
    }
    for (auto& delivery : *batch) all.push_back(std::move(delivery));
  }
  return all;
}

TEST_F(RequestQueueTest, SubmitFetchAck) {
  auto queue = Queue();
  auto consumer = ModelConsumer::Make(connection(), "sales").ValueOrDie();
  for (int i = 1; i <= 3; ++i) {
    auto ack = queue->Submit("sales", "r" + std::to_string(i), "body " + std::to_string(i));
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    EXPECT_EQ(ack->sequence, static_cast<uint64_t>(i));
    EXPECT_FALSE(ack->duplicate);
  }
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 3u);

  auto deliveries = consumer->Fetch(10, seconds(2)).ValueOrDie();
  ASSERT_EQ(deliveries.size(), 3u);
  for (size_t i = 0; i < deliveries.size(); ++i) {
    const auto& delivery = deliveries[i];
    EXPECT_EQ(delivery.subject(), "teatree.req.sales");
    EXPECT_EQ(delivery.request_id(), "r" + std::to_string(i + 1));
    EXPECT_EQ(delivery.body(), "body " + std::to_string(i + 1));
    EXPECT_EQ(delivery.stream_sequence(), i + 1);
    EXPECT_EQ(delivery.delivery_count(), 1u);
    EXPECT_FALSE(delivery.last_attempt());
  }
  for (auto& delivery : deliveries) ASSERT_TRUE(delivery.Ack().ok());
  // Work-queue retention: acknowledged requests leave the stream.
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 0u);
  EXPECT_TRUE(consumer->Fetch(10, milliseconds(100)).ValueOrDie().empty());
}

TEST_F(RequestQueueTest, SameRequestIdStoredOnceInsideWindowAndAgainAfter) {
  auto queue = Queue({.duplicate_window = seconds(1)});
  auto first = queue->Submit("sales", "dup-1", "a").ValueOrDie();
  auto second = queue->Submit("sales", "dup-1", "a").ValueOrDie();
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(second.duplicate);
  EXPECT_EQ(second.sequence, first.sequence);
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 1u);

  // Once the window has passed, the id is new again (the server forgets ids on a timer).
  const auto stored = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(milliseconds(1000));
  PublishAck third = queue->Submit("sales", "dup-1", "a").ValueOrDie();
  while (third.duplicate && MillisSince(stored) < 5000) {
    std::this_thread::sleep_for(milliseconds(50));
    third = queue->Submit("sales", "dup-1", "a").ValueOrDie();
  }
  EXPECT_FALSE(third.duplicate);
  EXPECT_GT(third.sequence, first.sequence);
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 2u);
}

TEST_F(RequestQueueTest, BodyOverLimitRefusedBeforePublishing) {
  auto queue = Queue({.max_body_bytes = 1024});
  EXPECT_TRUE(queue->Submit("sales", "fits", std::string(1024, 'x')).ok());
  auto refused = queue->Submit("sales", "too-big", std::string(1025, 'x'));
  ExpectError(refused.status(),
              "request too-big for model sales is 1025 bytes, over the limit "
              "of 1024 bytes");
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 1u);
}

TEST_F(RequestQueueTest, DefaultLimitTakesEightMebibyteBodies) {
  auto queue = Queue();
  auto ack = queue->Submit("sales", "big", std::string(8 << 20, 'x'));
  EXPECT_TRUE(ack.ok()) << ack.status().ToString();
  ExpectError(queue->Submit("sales", "bigger", std::string((8 << 20) + 1, 'x')).status(),
              "over the limit");
}

TEST_F(RequestQueueTest, InvalidModelOrRequestIdRefused) {
  auto queue = Queue();
  ExpectError(queue->Submit("Sales/2024", "r1", "{}").status(), "model name \"Sales/2024\"");
  ExpectError(queue->Submit("sales", "", "{}").status(), "missing request_id");
  ExpectError(queue->Submit("sales", "has space", "{}").status(), "request_id");
  ExpectError(queue->Backlog("a.b").status(), "model name");
}

TEST_F(RequestQueueTest, BacklogAndModelsWithBacklog) {
  auto queue = Queue();
  EXPECT_TRUE(queue->ModelsWithBacklog().ValueOrDie().empty());
  ASSERT_TRUE(queue->Submit("sales", "s1", "{}").ok());
  ASSERT_TRUE(queue->Submit("sales", "s2", "{}").ok());
  ASSERT_TRUE(queue->Submit("orders", "o1", "{}").ok());
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 2u);
  EXPECT_EQ(queue->Backlog("orders").ValueOrDie(), 1u);
  EXPECT_EQ(queue->Backlog("idle").ValueOrDie(), 0u);
  EXPECT_EQ(queue->ModelsWithBacklog().ValueOrDie(), (std::vector<std::string>{"orders", "sales"}));

  auto consumer = ModelConsumer::Make(connection(), "sales").ValueOrDie();
  auto deliveries = consumer->Fetch(10, seconds(2)).ValueOrDie();
  ASSERT_EQ(deliveries.size(), 2u);
  // Delivered but not acknowledged: still waiting.
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 2u);
  for (auto& delivery : deliveries) ASSERT_TRUE(delivery.Ack().ok());
  EXPECT_EQ(queue->ModelsWithBacklog().ValueOrDie(), (std::vector<std::string>{"orders"}));
}

TEST_F(RequestQueueTest, ExistingStreamGetsTheConfiguredWindowAndSize) {
  Queue();
  Queue({.duplicate_window = seconds(3), .max_body_bytes = 4096});
  jsStreamInfo* info = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&info, connection().jetstream(), "TEATREE_REQ", nullptr, nullptr),
            NATS_OK);
  EXPECT_EQ(info->Config->Duplicates, 3'000'000'000);
  EXPECT_EQ(info->Config->MaxMsgSize, 4096 + kHeaderAllowance);
  EXPECT_EQ(info->Config->Retention, js_WorkQueuePolicy);
  EXPECT_EQ(info->Config->Storage, js_FileStorage);
  jsStreamInfo_Destroy(info);
}

TEST_F(RequestQueueTest, IncompatibleStreamOfTheSameNameRefused) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = "TEATREE_REQ";
  const char* subjects[] = {"teatree.req.*"};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Retention = js_LimitsPolicy;
  ASSERT_EQ(js_AddStream(nullptr, connection().jetstream(), &config, nullptr, nullptr), NATS_OK);
  auto queue = RequestQueue::Make(connection());
  ExpectError(queue.status(),
              "stream TEATREE_REQ exists with retention limits but Teatree needs workqueue");
  ExpectError(queue.status(), "nats stream rm TEATREE_REQ");
}

TEST_F(RequestQueueTest, ServerMaxPayloadTooSmallIsAClearError) {
  auto small =
      NatsServer::Start({.store_dir = dir_->path() / "small", .max_payload = 1 << 20}).ValueOrDie();
  auto connection = NatsConnection::Connect({.url = small->url()}).ValueOrDie();
  auto queue = RequestQueue::Make(*connection);
  ExpectError(queue.status(), "set max_payload: " + std::to_string((8 << 20) + kHeaderAllowance));
  EXPECT_TRUE(RequestQueue::Make(*connection, {.max_body_bytes = 512 << 10}).ok());
}

// Every request JetStream acknowledged survives kill -9 of nats-server and a restart on the
// same store, and the consumer (and the client's connection) carry on.
TEST_F(RequestQueueTest, AcknowledgedRequestsSurviveKillNineOfServer) {
  constexpr int kRequests = 200;
  auto queue = Queue();
  auto consumer = ModelConsumer::Make(connection(), "sales").ValueOrDie();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(queue->Submit("sales", "k" + std::to_string(i), "row " + std::to_string(i)).ok());
  }
  ASSERT_TRUE(server_->process().Signal(SIGKILL).ok());
  ASSERT_TRUE(server_->process().Wait(seconds(5)).ok());
  const auto restart = std::chrono::steady_clock::now();
  auto restarted = server_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();

  auto deliveries = FetchAll(*consumer, kRequests, seconds(15));
  std::cout << "  fetched " << deliveries.size() << " requests " << MillisSince(restart)
            << " ms after the restart\n";
  ASSERT_EQ(deliveries.size(), static_cast<size_t>(kRequests));
  std::set<std::string> ids;
  for (auto& delivery : deliveries) {
    ids.emplace(delivery.request_id());
    EXPECT_TRUE(delivery.Ack().ok());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(queue->Backlog("sales").ValueOrDie(), 0u);
}

}  // namespace
}  // namespace teatree
