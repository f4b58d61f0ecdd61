// The queue end to end: requests submitted through JetStream, applied by manager processes
// the dispatcher starts, outcomes and results notified back.
#include <arrow/api.h>
#include <nats/nats.h>
#include <signal.h>

#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "queue_test_util.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/subprocess.h"
#include "teatree/control/control_store.h"
#include "teatree/control/postgres_server.h"
#include "teatree/service/commands.h"

namespace teatree::testing {
namespace {

class QueueTest : public QueueFixture {};

TEST_F(QueueTest, EveryOpOnThreeModelsAtOnce) {
  StartDispatcher();
  auto run_model = [this](const std::string& m) {
    std::vector<std::string> failures;
    auto expect = [&](const std::string& json) {
      Outcome outcome = Run(json);
      if (!outcome.applied()) failures.push_back(json + " → " + outcome.note.dump());
      return outcome;
    };
    auto watch = client().Watch(m).ValueOrDie();
    expect(CreateTable(m));
    expect(R"({"request_id":"a1","model":")" + m +
           R"(","op":"append","table":"orders","rows":[[1,9.5,"eu"],[2,3.0,"us"],[3,0.5,"eu"]]})");
    expect(
        R"({"request_id":"u1","model":")" + m +
        R"(","op":"upsert","table":"orders","rows":[{"id":2,"amount":4.0,"region":"us"},{"id":4,"amount":7.0,"region":"apac"}]})");
    expect(
        R"({"request_id":"p1","model":")" + m +
        R"(","op":"update","table":"orders","set":{"amount":{"call":"multiply","args":[{"field":"amount"},{"literal":2}]}},"where":{"call":"equal","args":[{"field":"region"},{"literal":"eu"}]}})");
    expect(
        R"({"request_id":"d1","model":")" + m +
        R"(","op":"delete","table":"orders","where":{"call":"less","args":[{"field":"amount"},{"literal":2}]}})");
    Outcome counts = expect(R"({"request_id":"i1","model":")" + m +
                            R"(","op":"invoke","function":"row_counts"})");
    Outcome query = expect(
        R"({"request_id":"s1","model":")" + m +
        R"(","op":"query","sql":"SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM orders","page_rows":1})");
    expect(R"({"request_id":"n1","model":")" + m + R"(","op":"snapshot"})");
    if (!counts.result || counts.result->num_rows() != 1) failures.push_back("row_counts");
    if (!query.result ||
        query.result->column(0)->GetScalar(0).ValueOrDie()->ToString() != "1:19.0,2:4.0,4:7.0") {
      failures.push_back("query result " + (query.result ? query.result->ToString() : "none"));
    }
    // The watcher saw the outcomes and a published version.
    bool published = false;
    int outcomes = 0;
    for (auto deadline = std::chrono::steady_clock::now() + seconds(30);
         (!published || outcomes < 8) && std::chrono::steady_clock::now() < deadline;) {
      auto note = watch->Next(milliseconds(500)).ValueOrDie();
      if (!note) continue;
      auto json = nlohmann::json::parse(note->body);
      if (json["type"] == "outcome") ++outcomes;
      published = published || json["type"] == "version_published";
    }
    if (!published) failures.push_back("no version_published notification");
    if (outcomes < 8) failures.push_back("watch saw " + std::to_string(outcomes) + " outcomes");
    return failures;
  };
  auto alpha = std::async(std::launch::async, run_model, "alpha");
  auto beta = std::async(std::launch::async, run_model, "beta");
  auto gamma = std::async(std::launch::async, run_model, "gamma");
  for (auto* model : {&alpha, &beta, &gamma}) {
    for (const auto& failure : model->get()) ADD_FAILURE() << failure;
  }
  for (const char* m : {"alpha", "beta", "gamma"}) EXPECT_NE(ManagerPid(m), 0) << m;
}

TEST_F(QueueTest, SameIdInsideAndAfterTheDuplicateWindowIsAppliedOnce) {
  StartDispatcher(kFastManagerArgs, {.duplicate_window = seconds(2)});
  Run(CreateTable("dup"));
  const Request append = Parse(Append("dup", "once", 1));
  auto first = client().Submit(append).ValueOrDie();
  auto second = client().Submit(append).ValueOrDie();
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(second.duplicate);  // Dropped by JetStream.
  EXPECT_TRUE(client().Wait("dup", "once", seconds(60)).ValueOrDie().applied());
  std::this_thread::sleep_for(milliseconds(2500));
  auto third = client().Submit(append).ValueOrDie();
  EXPECT_FALSE(third.duplicate);  // Stored again: the manager's request table answers it.
  // The request's subject now holds two outcomes; wait for the second one.
  auto notes = NoteSubscription::Replay(client().connection(), RequestNoteSubject("dup", "once"))
                   .ValueOrDie();
  int outcomes = 0;
  bool duplicate = false;
  while (outcomes < 2) {
    auto note = notes->Next(seconds(30)).ValueOrDie();
    ASSERT_TRUE(note.has_value()) << "no second outcome";
    auto json = nlohmann::json::parse(note->body);
    if (json["type"] != "outcome") continue;
    ++outcomes;
    duplicate = json.value("duplicate", false);
    EXPECT_EQ(json["status"], "applied");
  }
  EXPECT_TRUE(duplicate);
  EXPECT_EQ(Scalar("dup", "SELECT count(*) FROM orders"), "1");
}

/// Publishes `body` to teatree.req.<model> with JetStream, with or without a Nats-Msg-Id.
void PublishRaw(NatsConnection& connection, const std::string& model, const std::string& body,
                const char* msg_id) {
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsMsg_Create(&msg, RequestSubject(model).c_str(), nullptr, body.data(),
                           static_cast<int>(body.size())),
            NATS_OK);
  if (msg_id != nullptr) natsMsgHeader_Set(msg, kMsgIdHeader, msg_id);
  jsPubAck* ack = nullptr;
  jsErrCode error = jsErrCode(0);
  EXPECT_EQ(js_PublishMsg(&ack, connection.jetstream(), msg, nullptr, &error), NATS_OK);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(msg);
}

TEST_F(QueueTest, BadMessagesAreRefusedNotifiedAndTheQueueGoesOn) {
  StartDispatcher();
  Run(CreateTable("shop"));
  Run(Append("shop", "good1", 1));
  const std::string before = Scalar("shop", "SELECT string_agg(id::VARCHAR, ',') FROM orders");
  auto refused = [&](const std::string& id) {
    auto outcome = client().Wait("shop", id, seconds(60));
    EXPECT_TRUE(outcome.ok()) << id << ": " << outcome.status().ToString();
    if (!outcome.ok()) return std::string();
    EXPECT_EQ(outcome->note["status"], "rejected") << outcome->note.dump();
    return outcome->note.value("error", "");
  };
  // A body naming another model.
  client().queue().Submit("shop", "other", Append("elsewhere", "other", 2)).ValueOrDie();
  EXPECT_NE(refused("other").find("names model elsewhere"), std::string::npos);
  // No Nats-Msg-Id header.
  PublishRaw(client().connection(), "shop", Append("shop", "noid", 3), nullptr);
  EXPECT_NE(refused("noid").find("no Nats-Msg-Id"), std::string::npos);
  // Malformed JSON, and a request the codec refuses.
  PublishRaw(client().connection(), "shop", R"({"request_id":"broken","model":"shop",)",
             "shop/broken");
  EXPECT_FALSE(refused("broken").empty());
  client()
      .queue()
      .Submit("shop", "badop", R"({"request_id":"badop","model":"shop","op":"explode"})")
      .ValueOrDie();
  EXPECT_NE(refused("badop").find("explode"), std::string::npos);
  // A mismatching Nats-Msg-Id.
  PublishRaw(client().connection(), "shop", Append("shop", "inner", 4), "shop/outer");
  EXPECT_NE(refused("outer").find("differs"), std::string::npos);
  // Too big: refused before it is sent.
  auto huge = client().queue().Submit("shop", "huge", std::string(9 << 20, ' '));
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("over the limit"), std::string::npos);
  // Nothing changed, and the queue goes on.
  EXPECT_EQ(Scalar("shop", "SELECT string_agg(id::VARCHAR, ',') FROM orders"), before);
  EXPECT_TRUE(Run(Append("shop", "good2", 5)).applied());
}

TEST_F(QueueTest, HostileBytesUnknownModelsAndDottedIdsAreHandled) {
  StartDispatcher();
  Run(CreateTable("shop"));
  // Bytes that are not UTF-8 (and deep nesting) on a model's subject: refused, the manager
  // stays up and the queue goes on.
  PublishRaw(client().connection(), "shop",
             "{\"request_id\":\"bin\",\"model\":\"shop\",\"op\":\"\xff\xfe\"}", "shop/bin");
  auto bin = client().Wait("shop", "bin", seconds(60));
  ASSERT_TRUE(bin.ok()) << bin.status().ToString();
  EXPECT_EQ(bin->note["status"], "rejected");
  PublishRaw(client().connection(), "shop", std::string(200000, '[') + std::string(200000, ']'),
             "shop/deep");
  // A request id with empty dot-separated parts can be waited for.
  auto dotted = Run(Append("shop", "a..b.", 1));
  EXPECT_TRUE(dotted.applied()) << dotted.note.dump();
  // A model that does not exist: refused at submission, no manager, no directory.
  auto unknown = client().Submit(Parse(Append("ghost", "g1", 1)));
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(unknown.status().IsKeyError());
  EXPECT_NE(unknown.status().message().find("teatree model create --model ghost"),
            std::string::npos)
      << unknown.status().ToString();
  // Sent around the client, straight to NATS: the dispatcher answers it rejected.
  PublishRaw(client().connection(), "ghost", Append("ghost", "g2", 2), "ghost/g2");
  auto around = client().Wait("ghost", "g2", seconds(60));
  ASSERT_TRUE(around.ok()) << around.status().ToString();
  EXPECT_EQ(around->note["status"], "rejected");
  EXPECT_NE(around->note.value("error", "").find("does not exist"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(data_ / "models" / "ghost"));
  EXPECT_TRUE(Run(Append("shop", "after", 2)).applied());
}

TEST_F(QueueTest, SecondManagerForALeasedModelIsRefused) {
  StartDispatcher();
  Run(CreateTable("solo"));
  ASSERT_NE(ManagerPid("solo"), 0);
  const fs::path log = dir_->path() / "second.log";
  std::vector<std::string> argv{TEATREE_BIN, "manager",      "--model",    "solo",
                                "--nats",    server_->url(), "--data-dir", data_.string()};
  argv.insert(argv.end(), kFastManagerArgs.begin(), kFastManagerArgs.end());
  auto second = Subprocess::Spawn({.argv = argv, .log_path = log}).ValueOrDie();
  EXPECT_NE(second->Wait(seconds(30)).ValueOrDie(), 0);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("is held by manager"), std::string::npos) << text;
  EXPECT_TRUE(Run(Append("solo", "still", 1)).applied());
}

/// Sets the notification stream's message limit (-1: none), refusing new messages past it.
void LimitNotes(NatsConnection& connection, int64_t max_msgs) {
  jsStreamInfo* info = nullptr;
  jsErrCode error = jsErrCode(0);
  const std::string stream(kNoteStream);
  ASSERT_EQ(js_GetStreamInfo(&info, connection.jetstream(), stream.c_str(), nullptr, &error),
            NATS_OK);
  jsStreamConfig config = *info->Config;
  config.MaxMsgs = max_msgs < 0 ? -1 : std::max<int64_t>(max_msgs, info->State.Msgs);
  config.Discard = js_DiscardNew;
  jsStreamInfo* updated = nullptr;
  EXPECT_EQ(js_UpdateStream(&updated, connection.jetstream(), &config, nullptr, &error), NATS_OK);
  jsStreamInfo_Destroy(updated);
  jsStreamInfo_Destroy(info);
}

// A request is acknowledged only once its outcome is stored. While the notification stream
// refuses it (full here), the committed request keeps coming back and is answered from the
// model's request table; once the stream takes notes again, its client hears the outcome,
// and the rows are there once.
TEST_F(QueueTest, ARequestWhoseOutcomeWasNotStoredComesBackUntilItIs) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  LimitNotes(client().connection(), 0);  // As many as it holds now.
  ASSERT_TRUE(client().Submit(Parse(Append("sales", "kept", 7))).ok());
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (Scalar("sales", "SELECT count(*) FROM orders") != "1" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "1");
  std::this_thread::sleep_for(seconds(2));  // Its outcome refused, at least once.
  LimitNotes(client().connection(), -1);
  auto outcome = client().Wait("sales", "kept", seconds(30));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->applied()) << outcome->note.dump();
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "1");
}

TEST_F(QueueTest, IdleManagerIsStoppedAndStartedAgainForNewWork) {
  idle_stop_ = seconds(1);
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("nap")).applied());
  const pid_t first = ManagerPid("nap");
  ASSERT_NE(first, 0);
  // Idle: stopped (cleanly, releasing its lease).
  for (auto until = std::chrono::steady_clock::now() + seconds(30);
       ManagerPid("nap") != 0 && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(ManagerPid("nap"), 0);
  // New work: a manager again.
  EXPECT_TRUE(Run(Append("nap", "wake", 1)).applied());
  EXPECT_NE(ManagerPid("nap"), 0);
  EXPECT_EQ(Scalar("nap", "SELECT count(*) FROM orders"), "1");
}

TEST_F(QueueTest, ManagerThatLosesItsLeaseStops) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("fence")).applied());
  const pid_t first = ManagerPid("fence");
  ASSERT_NE(first, 0);
  // Someone takes the lease away (an operator, or a partition that let it lapse).
  kvStore* kv = nullptr;
  ASSERT_EQ(js_KeyValue(&kv, client().connection().jetstream(), "teatree_leases"), NATS_OK);
  ASSERT_EQ(kvStore_Delete(kv, "fence"), NATS_OK);
  kvStore_Destroy(kv);
  // The manager notices at its next renewal and stops; the dispatcher starts another.
  for (auto until = std::chrono::steady_clock::now() + seconds(30);
       ::kill(first, 0) == 0 && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_NE(::kill(first, 0), 0) << "the manager kept running without its lease";
  std::ifstream in(data_ / "logs" / "manager-fence.log");
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("lease lost"), std::string::npos) << log;
  EXPECT_TRUE(Run(Append("fence", "after", 1)).applied());
}

TEST_F(QueueTest, StatusShowsCatalogUpdatesHeldBackWhilePostgresIsDown) {
  fs::permissions(dir_->path(), fs::perms::others_exec, fs::perm_options::add);
  auto postgres = PostgresServer::Start({.dir = dir_->path() / "pg"}).ValueOrDie();
  ASSERT_TRUE(postgres->CreateDatabase("catalog").ok());
  const std::string control = postgres->url("catalog");
  std::vector<std::string> args = kFastManagerArgs;
  args.insert(args.end(), {"--control", control});
  StartDispatcher(args);
  ASSERT_TRUE(Run(CreateTable("pgm")).applied());
  auto backlog = [&]() -> int64_t {
    auto note = LastNote(client().connection(), ManagerStatusSubject("pgm")).ValueOrDie();
    if (!note) return -1;
    return nlohmann::json::parse(note->body).value("catalog_backlog", int64_t{-1});
  };
  auto wait_for = [&](const std::function<bool(int64_t)>& done) {
    for (auto until = std::chrono::steady_clock::now() + seconds(60);
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(milliseconds(200))) {
      if (done(backlog())) return true;
    }
    return false;
  };

  ASSERT_TRUE(postgres->Stop(/*immediate=*/true).ok());
  // Writes go on while the catalog is down, and the manager says what it holds back.
  EXPECT_TRUE(Run(Append("pgm", "while-down", 1)).applied());
  EXPECT_TRUE(wait_for([](int64_t n) { return n > 0; }));
  std::ostringstream status;
  ASSERT_TRUE(
      RunStatus({.nats = {.url = server_->url()}, .data_dir = data_}, control, status).ok());
  EXPECT_NE(status.str().find("control catalog unreachable"), std::string::npos) << status.str();
  EXPECT_NE(status.str().find("catalog updates"), std::string::npos) << status.str();

  ASSERT_TRUE(postgres->Restart().ok());
  EXPECT_TRUE(wait_for([](int64_t n) { return n == 0; }));
  auto catalog = ControlStore::Open(control).ValueOrDie();
  auto log = catalog->ListRequests("pgm", 10).ValueOrDie();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].request_id, "while-down");
}

}  // namespace
}  // namespace teatree::testing
