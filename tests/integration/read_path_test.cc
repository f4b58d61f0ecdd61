// The read path with real managers: live reads found through the catalog, a front server
// pointing live reads at the manager, HTTP submits and notifications, a replica that
// switches versions under a query loop, and reads that wait for the version of a write.

#include <arrow/flight/api.h>
#include <httplib.h>

#include <set>
#include <sstream>

#include "queue_test_util.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/net.h"
#include "teatree/common/temp_dir.h"
#include "teatree/control/control_store.h"
#include "teatree/manager/model_manager.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_client.h"
#include "teatree/read/read_servers.h"
#include "teatree/service/read_commands.h"

namespace teatree::testing {
namespace {

class ReadPathTest : public QueueFixture {
 protected:
  /// Polls `probe` until it returns a non-empty string (or gives up after 20 s).
  static std::string WaitFor(const std::function<std::string()>& probe) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string value = probe();
      if (!value.empty()) return value;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return "";
  }

  /// The Flight URL the model's manager recorded in the catalog.
  std::string CatalogEndpoint(const std::string& model) {
    return WaitFor([&]() -> std::string {
      auto control = ControlStore::Open("sqlite://" + (data_ / "control.sqlite").string());
      if (!control.ok()) return "";
      auto record = (*control)->GetModel(model);
      return record.ok() && *record ? (*record)->manager_endpoint : "";
    });
  }

  /// A field of the manager's latest status note.
  std::string ManagerStatus(const std::string& model, const std::string& field) {
    return WaitFor([&]() -> std::string {
      auto note = LastNote(client().connection(), ManagerStatusSubject(model));
      if (!note.ok() || !*note) return "";
      auto json = nlohmann::json::parse((*note)->body, nullptr, false);
      return json.is_object() ? json.value(field, "") : "";
    });
  }

  void WaitForVersionFile(const std::string& model) {
    WaitFor([&]() -> std::string {
      auto versions = ListVersionFiles(data_, model);
      return versions.ok() && !versions->empty() ? "yes" : "";
    });
  }
};

TEST_F(ReadPathTest, ManagersServeLiveReadsThatAFrontServerPointsTo) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  Outcome appended = Run(Append("sales", "a1", 1));
  ASSERT_TRUE(appended.applied());
  const std::string endpoint = CatalogEndpoint("sales");
  ASSERT_TRUE(endpoint.starts_with("grpc://127.0.0.1:")) << endpoint;

  // Read-your-writes on the live model, whether or not the version file exists yet.
  auto live = ReadClient::Connect({.url = endpoint}).ValueOrDie();
  auto result = live->Query({.model = "sales", .sql = "SELECT count(*) FROM orders"});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->version, appended.note["version"].get<int64_t>());
  EXPECT_EQ(result->table->column(0)->GetScalar(0).ValueOrDie()->ToString(), "1");

  // A front server over the data directory answers with the manager's location.
  WaitForVersionFile("sales");
  DataDirReplicas replicas({.data_dir = data_}, [&](const std::string&) { return endpoint; });
  auto front = ReadServers::Start({.http_port = -1}, replicas).ValueOrDie();
  auto raw = arrow::flight::FlightClient::Connect(
                 arrow::flight::Location::Parse(front->flight_url()).ValueOrDie())
                 .ValueOrDie();
  auto info = raw->GetFlightInfo(arrow::flight::FlightDescriptor::Command(
                                     R"({"model":"sales","sql":"SELECT 1"})"))
                  .ValueOrDie();
  ASSERT_EQ(info->endpoints().size(), 1u);
  ASSERT_EQ(info->endpoints()[0].locations.size(), 1u);
  EXPECT_EQ(info->endpoints()[0].locations[0].ToString(), endpoint);
  ASSERT_TRUE(Run(Append("sales", "a2", 2)).applied());
  auto through_front = ReadClient::Connect({.url = front->flight_url()}).ValueOrDie();
  auto followed = through_front->Query({.model = "sales", .sql = "SELECT count(*) FROM orders"});
  ASSERT_TRUE(followed.ok()) << followed.status().ToString();
  EXPECT_EQ(followed->table->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");

  // A table created a moment ago is in no version file yet: the front server passes the
  // read (its schema and its rows) on to the manager.
  ASSERT_TRUE(Run(R"({"request_id":"t2","model":"sales","op":"create_table","table":"fresh",)"
                  R"("schema":[{"name":"n","type":"BIGINT"}]})")
                  .applied());
  auto fresh = through_front->Query({.model = "sales", .sql = "SELECT count(*) FROM fresh"});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  auto direct_get =
      raw->DoGet(arrow::flight::Ticket{R"({"model":"sales","sql":"SELECT count(*) FROM fresh"})"});
  ASSERT_TRUE(direct_get.ok()) << direct_get.status().ToString();
  EXPECT_TRUE((*direct_get)->ToTable().ok());
}

TEST_F(ReadPathTest, HttpSubmitsRequestsAndStreamsTheirNotifications) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  const std::string url = ManagerStatus("sales", "http_url");
  ASSERT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
  const int port = std::stoi(url.substr(url.rfind(':') + 1));

  std::string events;
  std::atomic<bool> seen{false};
  std::thread listener([&] {
    httplib::Client sse("127.0.0.1", port);
    sse.set_read_timeout(30);
    sse.Get("/v1/models/sales/notifications", [&](const char* data, size_t length) {
      events.append(data, length);
      seen = events.find(R"("request_id":"h2")") != std::string::npos;
      return !seen;
    });
  });
  std::this_thread::sleep_for(seconds(1));  // The subscription is made when the GET arrives.
  httplib::Client http("127.0.0.1", port);
  auto bad = http.Post("/v1/models/sales/requests", R"({"op":"append","table":"orders"})",
                       "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("request_id"), std::string::npos) << bad->body;
  auto accepted =
      http.Post("/v1/models/sales/requests",
                R"({"request_id":"h1","op":"append","table":"orders","rows":[[1,1.5,"eu"]]})"
                "\n"
                R"({"request_id":"h2","op":"append","table":"orders","rows":[[2,2.5,"us"]]})",
                "application/x-ndjson");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202) << accepted->body;
  listener.join();
  EXPECT_TRUE(seen) << events;
  EXPECT_NE(events.find("event: outcome"), std::string::npos);
  EXPECT_NE(events.find(R"("request_id":"h1")"), std::string::npos);
  EXPECT_NE(events.find(R"("steps":[{"ms":)"), std::string::npos) << events;
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "2");
  auto metrics = http.Get("/metrics");
  EXPECT_NE(
      metrics->body.find(R"(teatree_requests_total{model="sales",op="append",status="applied"})"),
      std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("teatree_apply_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics->body.find(R"(teatree_step_seconds_count{model="sales",step="execute"})"),
            std::string::npos)
      << metrics->body;
}

/// The server-sent events of `path` at 127.0.0.1:`port` until `until` is in them (or 30 s).
std::string EventsUntil(int port, const std::string& path, const std::string& until,
                        const httplib::Headers& headers = {}) {
  std::string events;
  httplib::Client sse("127.0.0.1", port);
  sse.set_read_timeout(30);
  sse.Get(path, headers, [&](const char* data, size_t length) {
    events.append(data, length);
    return events.find(until) == std::string::npos;
  });
  return events;
}

TEST_F(ReadPathTest, TheNotificationStreamResumesAfterTheLastEventItSent) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  const std::string url = ManagerStatus("sales", "http_url");
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  ASSERT_TRUE(Run(Append("sales", "e1", 1)).applied());
  ASSERT_TRUE(Run(Append("sales", "e2", 2)).applied());
  // From the start of what the stream kept: every event has an id.
  const std::string all =
      EventsUntil(port, "/v1/models/sales/notifications?after=1", R"("request_id":"e2")");
  const auto e1 = all.find(R"("request_id":"e1")");
  ASSERT_NE(e1, std::string::npos) << all;
  const auto id_at = all.rfind("id: ", e1);
  ASSERT_NE(id_at, std::string::npos) << all;
  const std::string id = all.substr(id_at + 4, all.find('\n', id_at) - id_at - 4);
  // A client that reconnects with the last id it saw gets what followed, and only that.
  const std::string resumed = EventsUntil(port, "/v1/models/sales/notifications",
                                          R"("request_id":"e2")", {{"Last-Event-ID", id}});
  EXPECT_NE(resumed.find(R"("request_id":"e2")"), std::string::npos) << resumed;
  EXPECT_EQ(resumed.find(R"("request_id":"e1")"), std::string::npos) << resumed;
  EXPECT_GT(std::stoull(resumed.substr(resumed.find("id: ") + 4)), std::stoull(id)) << resumed;
  httplib::Client http("127.0.0.1", port);
  auto bad = http.Get("/v1/models/sales/notifications", {{"Last-Event-ID", "x1"}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("Last-Event-ID"), std::string::npos) << bad->body;
}

TEST_F(ReadPathTest, AReplicaSwitchesVersionsUnderAQueryLoopWithoutFailedQueries) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  ASSERT_TRUE(Run(Append("sales", "a0", 0)).applied());
  WaitForVersionFile("sales");
  const int port = FreeLoopbackPort().ValueOrDie();
  std::atomic<bool> stop_reader{false};
  ReaderOptions reader_options{
      .data_dir = data_, .model = "sales", .nats = {.url = server_->url()}};
  reader_options.read.listen.port = port;
  reader_options.read.http_port = -1;
  std::ostringstream reader_out;
  std::thread reader([&] {
    Status status = RunReader(reader_options, stop_reader, reader_out);
    EXPECT_TRUE(status.ok()) << status.ToString();
  });
  ASSERT_TRUE(WaitForTcpPort("127.0.0.1", port, seconds(20)).ok());
  const std::string url = "grpc://127.0.0.1:" + std::to_string(port);

  std::atomic<bool> writing{true};
  std::atomic<int> appended{1};
  std::atomic<size_t> distinct_versions{0};
  std::thread writer([&] {
    // At least 6 s of writes, and on until the readers saw three versions (publication is
    // much slower under the sanitizers), for at most 60 s.
    const auto start = std::chrono::steady_clock::now();
    auto more = [&] {
      const auto elapsed = std::chrono::steady_clock::now() - start;
      return elapsed < seconds(6) || (distinct_versions < 3 && elapsed < seconds(60));
    };
    for (int key = 1; more(); ++key) {
      if (Run(Append("sales", "w" + std::to_string(key), key)).applied()) ++appended;
      std::this_thread::sleep_for(milliseconds(20));
    }
    writing = false;
  });
  std::mutex mutex;
  std::set<int64_t> versions_seen;
  std::vector<std::string> failures;
  std::atomic<int> backwards{0}, queries{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      auto client = ReadClient::Connect({.url = url}).ValueOrDie();
      int64_t last_version = 0, last_count = 0;
      while (writing) {
        auto result = client->Query({.model = "sales", .sql = "SELECT count(*) FROM orders"});
        ++queries;
        std::lock_guard lock(mutex);
        if (!result.ok()) {
          failures.push_back(result.status().ToString());
          continue;
        }
        const int64_t count =
            std::stoll(result->table->column(0)->GetScalar(0).ValueOrDie()->ToString());
        if (result->version < last_version || count < last_count) ++backwards;
        last_version = result->version;
        last_count = count;
        versions_seen.insert(result->version);
        distinct_versions = versions_seen.size();
      }
    });
  }
  writer.join();
  for (auto& thread : readers) thread.join();
  stop_reader = true;
  reader.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, e.g. " << failures.front();
  EXPECT_EQ(backwards, 0);
  EXPECT_GE(versions_seen.size(), 3u) << "the replica should have moved through versions";
  EXPECT_GT(queries, 30);
  EXPECT_GT(appended, 20);
}

/// The count in a one-row, one-column result.
std::string CountOf(const QueryResult& result) {
  return result.table->column(0)->GetScalar(0).ValueOrDie()->ToString();
}

/// The Flight status code of an error, or -1.
int FlightCodeOf(const Status& status) {
  auto detail = arrow::flight::FlightStatusDetail::UnwrapStatus(status);
  return detail ? static_cast<int>(detail->code()) : -1;
}

TEST_F(ReadPathTest, ReadsWithTheVersionOfAWriteAlwaysSeeIt) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  // Version files only, no manager to pass live reads to: each read below waits for the
  // publication of the write it follows (published at most every 500 ms).
  DataDirReplicas replicas({.data_dir = data_}, nullptr);
  auto front =
      ReadServers::Start({.http_port = 0}, replicas, {.nats = &client().connection()}).ValueOrDie();
  auto reads = ReadClient::Connect({.url = front->flight_url()}).ValueOrDie();
  const std::string http_url = front->http_url();
  httplib::Client http("127.0.0.1", std::stoi(http_url.substr(http_url.rfind(':') + 1)));
  auto dir = TempDir::Make("teatree-read-your-writes-").ValueOrDie();
  for (int i = 1; i <= 5; ++i) {
    Outcome written = Run(Append("sales", "w" + std::to_string(i), i));
    ASSERT_TRUE(written.applied());
    const int64_t version = written.note["version"].get<int64_t>();
    const VersionWanted wanted{.min_version = version};

    auto query = reads->Query(
        {.model = "sales", .sql = "SELECT count(*) FROM orders", .min_version = wanted});
    ASSERT_TRUE(query.ok()) << query.status().ToString();
    EXPECT_GE(query->version, version);
    EXPECT_EQ(CountOf(*query), std::to_string(i)) << "write " << i << " not seen";

    const fs::path file = dir->path() / ("v" + std::to_string(i) + ".duckdb");
    auto pulled = reads->Pull("sales", std::nullopt, file, nullptr, wanted);
    ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
    EXPECT_GE(pulled->version, version);

    auto answer = http.Post("/v1/models/sales/query?min_version=" + std::to_string(version),
                            R"({"sql":"SELECT count(*) AS n FROM orders"})", "application/json");
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->status, 200) << answer->body;
    EXPECT_GE(std::stoll(answer->get_header_value("Teatree-Version")), version);
    EXPECT_NE(answer->body.find("\"n\":" + std::to_string(i)), std::string::npos) << answer->body;
  }

  // A version that does not come: a clear error after wait_ms, naming what the server has.
  const ReadTicket ahead{
      .model = "sales",
      .sql = "SELECT 1",
      .min_version = VersionWanted{.min_version = 1000, .wait = milliseconds(300)}};
  auto late = reads->Query(ahead);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(FlightCodeOf(late.status()),
            static_cast<int>(arrow::flight::FlightStatusCode::TimedOut));
  EXPECT_NE(late.status().message().find("has no version 1000 or newer after 300 ms"),
            std::string::npos)
      << late.status().message();
  EXPECT_NE(late.status().message().find("newest published 6"), std::string::npos)
      << late.status().message();
  EXPECT_EQ(late.status().message().find("Detail:"), std::string::npos) << late.status().message();
  auto refused = http.Post("/v1/models/sales/query?min_version=1000&wait_ms=300",
                           R"({"sql":"SELECT 1"})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_NE(refused->body.find("wait longer with wait_ms"), std::string::npos) << refused->body;
  auto capped = http.Post("/v1/models/sales/query?min_version=1&wait_ms=600000",
                          R"({"sql":"SELECT 1"})", "application/json");
  ASSERT_TRUE(capped);
  EXPECT_EQ(capped->status, 400) << capped->body;
}

TEST_F(ReadPathTest, ALiveReadWaitsAtTheManagerForTheVersionOfAWrite) {
  StartDispatcher();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  const std::string endpoint = CatalogEndpoint("sales");
  WaitForVersionFile("sales");
  DataDirReplicas replicas({.data_dir = data_}, [&](const std::string&) { return endpoint; });
  auto front = ReadServers::Start({.http_port = -1}, replicas, {.nats = &client().connection()})
                   .ValueOrDie();
  auto reads = ReadClient::Connect({.url = front->flight_url()}).ValueOrDie();
  // Submitted without waiting for the outcome: the read waits at the manager until the
  // batch that holds the write committed.
  for (int i = 1; i <= 5; ++i) {
    auto ack = client().Submit(Parse(Append("sales", "l" + std::to_string(i), i)));
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    auto query = reads->Query({.model = "sales",
                               .sql = "SELECT count(*) FROM orders",
                               .min_version = VersionWanted{.min_version = 1 + i}});
    ASSERT_TRUE(query.ok()) << query.status().ToString();
    EXPECT_GE(query->version, 1 + i);
    EXPECT_EQ(CountOf(*query), std::to_string(i));
  }
  // The manager's refusal after wait_ms comes back as it is, once: the front server does not
  // wait again on its older copy.
  const auto started = std::chrono::steady_clock::now();
  auto late =
      reads->Query({.model = "sales",
                    .sql = "SELECT 1",
                    .min_version = VersionWanted{.min_version = 1000, .wait = milliseconds(500)}});
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(FlightCodeOf(late.status()),
            static_cast<int>(arrow::flight::FlightStatusCode::TimedOut));
  EXPECT_NE(late.status().message().find("it reads at version 6"), std::string::npos)
      << late.status().message();
  EXPECT_LT(took, milliseconds(1500));
}

}  // namespace
}  // namespace teatree::testing
