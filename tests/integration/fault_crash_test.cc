// kill -9 at chosen moments, not only random ones: a manager stopped at each fault point
// (between its commit and its publication, during the rename of a version file, in the
// middle of an archive upload, inside a catalog write, before its acks), and `teatree serve`
// stopped as its manager is about to publish, on both engines. After each, with no request sent
// since: every acknowledged request is applied exactly once and told to its client, the newest
// published version holds every row (a crashed manager's successor publishes its work), the
// version files are whole and match their checksums, and the catalog tells the truth.
#include <signal.h>

#include "queue_test_util.h"
#include "teatree/common/file_util.h"
#include "teatree/control/control_store.h"

namespace teatree::testing {
namespace {

constexpr int kRequests = 300;
constexpr auto kRecovery = seconds(90);

std::string CreateTableOn(const std::string& model, const std::string& engine) {
  return CreateTableRequest(model, "create", "orders", engine, /*primary_key=*/true);
}

/// "<rows> <distinct ids>" in the newest version file of `model`, or why not.
std::string NewestVersionRows(const fs::path& data, const std::string& model) {
  auto rows =
      NewestVersionScalar(data, model, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders");
  return rows.ok() ? *rows : rows.status().ToString();
}

/// Waits until `done` holds, up to kRecovery; true if it did.
bool Eventually(const std::function<bool()>& done) { return testing::Eventually(done, kRecovery); }

class FaultCrashTest : public QueueFixture {
 protected:
  /// The requests of the test, queued before anything applies them: one create_table and
  /// kRequests appends.
  void QueueRequests(const std::string& model, const std::string& engine) {
    ASSERT_TRUE(client().Submit(Parse(CreateTableOn(model, engine))).ok());
    for (int i = 0; i < kRequests; ++i) {
      auto ack = client().Submit(Parse(Append(model, "r" + std::to_string(i), i)));
      ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    }
  }

  /// Everything a user relies on after the crash, with no request sent since it.
  void ExpectRecovered(const std::string& model) {
    const std::string all = std::to_string(kRequests) + " " + std::to_string(kRequests);
    std::string rows;
    EXPECT_TRUE(Eventually([&] { return (rows = NewestVersionRows(data_, model)) == all; }))
        << "the newest published version holds " << rows << ", not " << all;
    // Every client hears its outcome: applied (once; a redelivery is answered as a duplicate).
    // An outcome a crash kept from the server comes with the redelivery of its request,
    // after the queue's ack wait (30 s under serve).
    for (int i = 0; i < kRequests; i += 37) {
      auto outcome = client().Wait(model, "r" + std::to_string(i), seconds(60));
      ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
      EXPECT_TRUE(outcome->applied()) << outcome->note.dump();
    }
    ExpectWholeVersionFiles(model);
    ExpectCatalogTruth(model);
  }

  void ExpectWholeVersionFiles(const std::string& model) {
    for (const auto& entry : fs::directory_iterator(ModelDir(data_, model) / "versions")) {
      const std::string name = entry.path().filename().string();
      EXPECT_EQ(name.find(".tmp"), std::string::npos) << name << " left behind";
      if (!name.ends_with(".duckdb")) continue;
      auto checksum = ReadFileToString(entry.path().string() + ".sha256");
      ASSERT_TRUE(checksum.ok()) << name << " has no checksum";
      EXPECT_EQ(checksum->substr(0, 64), Sha256File(entry.path()).ValueOrDie()) << name;
    }
  }

  /// The catalog ends idle, at the model's version, with content rows for it and the
  /// running manager as the lease holder.
  void ExpectCatalogTruth(const std::string& model) {
    auto control =
        ControlStore::Open("sqlite://" + (data_ / "control.sqlite").string()).ValueOrDie();
    const int64_t newest = ListVersionFiles(data_, model).ValueOrDie().back();
    ModelRecord record;
    bool content = false;
    // The model's row is written before its content rows: both, eventually.
    EXPECT_TRUE(Eventually([&] {
      auto found = control->GetModel(model);
      auto rows = control->ListContent(model);
      if (!found.ok() || !found->has_value() || !rows.ok()) return false;
      record = **found;
      content = std::any_of(rows->begin(), rows->end(), [&](const ContentRecord& row) {
        return row.version == newest && row.table_name == "orders" && row.rows == kRequests &&
               !row.archive_uri.empty();
      });
      return record.status == "idle" && record.current_version == newest &&
             record.published_version == newest && content;
    })) << "catalog: status "
        << record.status << ", version " << record.current_version << ", published "
        << record.published_version << ", content row " << content << "; newest version file "
        << newest;
    EXPECT_NE(record.lease_holder.find("pid " + std::to_string(ManagerPid(model))),
              std::string::npos)
        << record.lease_holder;
  }
};

using FaultParam = std::tuple<std::string, std::string>;  // Fault point, engine.

class ManagerFaultTest : public FaultCrashTest, public ::testing::WithParamInterface<FaultParam> {};

TEST_P(ManagerFaultTest, AManagerKilledThereLosesNothingAndItsWorkIsPublished) {
  const auto& [point, engine] = GetParam();
  const fs::path fired = dir_->path() / "fault-fired";
  QueueRequests("m", engine);
  FaultEnvironment fault(point, fired);
  // One batch takes every request: once the fault has struck, no request is left to bring a
  // manager back, only the recovery of the crashed one.
  std::vector<std::string> args = kFastManagerArgs;
  args.insert(args.end(), {"--batch-size", "1000"});
  StartDispatcher(args);
  ASSERT_TRUE(Eventually([&] { return fs::exists(fired); })) << point << " was never reached";
  ExpectRecovered("m");
}

INSTANTIATE_TEST_SUITE_P(
    Points, ManagerFaultTest,
    ::testing::Combine(::testing::Values("manager.after_commit", "manager.before_ack",
                                         "publish.before_rename", "publish.after_rename",
                                         "archive.upload", "catalog.write"),
                       ::testing::Values("duckdb", "arrow")),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

/// `teatree serve` as a user runs it, in the test's data directory.
std::unique_ptr<Subprocess> StartServe(const fs::path& data, const fs::path& log) {
  auto serve = testing::StartServe(data, log);
  EXPECT_TRUE(serve.ok()) << serve.status().ToString();
  return std::move(serve).ValueOrDie();
}

class ServeFaultTest : public FaultCrashTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ServeFaultTest, ServeKilledBeforeAPublicationRecoversAtItsRestart) {
  const std::string engine = GetParam();
  const fs::path fired = dir_->path() / "fault-fired";
  std::unique_ptr<Subprocess> serve;
  {
    // Serve dies (kill -9) the moment its manager, having committed and acknowledged the
    // batch, is about to publish it.
    FaultEnvironment fault("publish.before_rename:parent", fired);
    serve = StartServe(data_, dir_->path() / "serve1.log");
  }
  client_ = Client::Connect({.nats = {.url = ServedNatsUrl(data_).ValueOrDie()}}).ValueOrDie();
  {
    // Holding the model's lease keeps serve from starting its manager until every request is
    // queued: one batch commits them all, and nothing is left to bring a manager back after
    // the kill but the recovery of the crashed one.
    auto held = Lease::Acquire(client().connection(), "m", "test", {.ttl = milliseconds(1000)});
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    QueueRequests("m", engine);
    ASSERT_TRUE((*held)->Release().ok());
  }
  ASSERT_TRUE(Eventually([&] { return !serve->Running(); })) << "serve was not killed";
  EXPECT_EQ(serve->Wait(seconds(5)).ValueOrDie(), 128 + SIGKILL);
  ASSERT_TRUE(fs::exists(fired));
  client_.reset();

  // The catalog shows the model was not stopped; the restarted serve publishes its work.
  serve = StartServe(data_, dir_->path() / "serve2.log");
  client_ = Client::Connect({.nats = {.url = ServedNatsUrl(data_).ValueOrDie()}}).ValueOrDie();
  ExpectRecovered("m");
  EXPECT_TRUE(serve->Stop(seconds(30)).ok());
}

TEST_P(ServeFaultTest, ServeRestartsItsNatsServerAndKeepsServing) {
  const std::string engine = GetParam();
  auto serve = StartServe(data_, dir_->path() / "serve.log");
  client_ = Client::Connect({.nats = {.url = ServedNatsUrl(data_).ValueOrDie()}}).ValueOrDie();
  ASSERT_TRUE(Run(CreateTableOn("m", engine)).applied());
  ASSERT_TRUE(Run(Append("m", "before", 1)).applied());
  const std::string http = ServedHttpUrl(data_).ValueOrDie();
  const int port = std::stoi(http.substr(http.rfind(':') + 1));
  ASSERT_EQ(HttpStatus(port, "/readyz"), 200);

  const pid_t nats = ChildNamed(serve->pid(), "nats-server");
  ASSERT_NE(nats, 0);
  ASSERT_EQ(::kill(nats, SIGKILL), 0);
  // Serve starts it again on the same port and store; it says ready once it is back.
  EXPECT_TRUE(Eventually([&] {
    const pid_t next = ChildNamed(serve->pid(), "nats-server");
    return next != 0 && next != nats && HttpStatus(port, "/readyz") == 200;
  }));
  EXPECT_TRUE(serve->Running());
  Outcome after;
  EXPECT_TRUE(Eventually([&] {
    auto outcome = client().SubmitAndWait(Parse(Append("m", "after", 2)), seconds(5));
    if (outcome.ok()) after = *outcome;
    return outcome.ok();
  }));
  EXPECT_TRUE(after.applied()) << after.note.dump();
  EXPECT_EQ(Scalar("m", "SELECT count(*) FROM orders"), "2");
  EXPECT_TRUE(serve->Stop(seconds(30)).ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, ServeFaultTest, ::testing::Values("duckdb", "arrow"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace teatree::testing
