#include "teatree/read/flight_read_server.h"

#include <arrow/api.h>
#include <arrow/flight/api.h>
#include <gtest/gtest.h>

#include <fstream>

#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/read/read_client.h"
#include "teatree/read/read_test_util_internal.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

class FlightReadServerTest : public testing::LiveModelFixture {
 protected:
  void StopServers() override { server_.reset(); }

  void StartServer(FlightReadServer::Options options = {}) {
    server_ = FlightReadServer::Start(options, *models_).ValueOrDie();
  }

  std::unique_ptr<ReadClient> Connect(ReadClientOptions options = {}) {
    if (options.url.empty()) options.url = server_->url();
    return ReadClient::Connect(options).ValueOrDie();
  }

  std::unique_ptr<FlightReadServer> server_;
};

TEST_F(FlightReadServerTest, DoGetReturnsWhatDuckDbReturnsWithTheVersion) {
  StartServer();
  auto client = Connect();
  const std::string sql = "SELECT * FROM orders ORDER BY id";
  auto result = client->Query({.model = "sales", .sql = sql}).ValueOrDie();
  auto file = VersionFilePath(dir_->path(), "sales", 2);
  auto direct_db = DuckDatabase::Open({.path = file.string(), .read_only = true}).ValueOrDie();
  auto direct_connection = direct_db->Connect().ValueOrDie();
  ASSERT_TRUE(direct_connection->Execute("SET TimeZone = 'UTC'").ok());
  auto direct = direct_connection->QueryTable(sql).ValueOrDie();
  EXPECT_TRUE(result.table->Equals(*direct)) << result.table->ToString() << direct->ToString();
  EXPECT_EQ(result.version, 2);
  auto top = client->Query({.model = "sales",
                            .function = "top_n",
                            .args = {{"table", "orders"}, {"column", "id"}, {"n", 1}}});
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  EXPECT_EQ(top->table->num_rows(), 1);
}

TEST_F(FlightReadServerTest, ListsTablesWithRowCountsAndDescribesQueries) {
  StartServer();
  auto client = Connect();
  auto tables = client->Tables("sales").ValueOrDie();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].name, "orders");
  EXPECT_EQ(tables[0].rows, 2);
  auto location = arrow::flight::Location::Parse(server_->url()).ValueOrDie();
  auto raw = arrow::flight::FlightClient::Connect(location).ValueOrDie();
  auto schema_result =
      raw->GetSchema(arrow::flight::FlightDescriptor::Command(
                         R"({"model":"sales","sql":"SELECT id, amount FROM orders"})"))
          .ValueOrDie();
  arrow::ipc::DictionaryMemo memo;
  auto schema = schema_result->GetSchema(&memo).ValueOrDie();
  EXPECT_EQ(schema->ToString(), "id: int64\namount: decimal128(12, 2)");
}

TEST_F(FlightReadServerTest, RefusedAndFailingReadsSayWhyAndTheServerGoesOn) {
  FlightReadServer::Options options;
  options.limits.timeout = std::chrono::milliseconds(400);
  StartServer(options);
  auto client = Connect();
  auto write = client->Query({.model = "sales", .sql = "DELETE FROM orders"});
  EXPECT_NE(write.status().message().find("only SELECT is allowed, not DELETE"), std::string::npos)
      << write.status().ToString();
  auto file = client->Query({.model = "sales", .sql = "SELECT * FROM read_csv('/etc/passwd')"});
  EXPECT_NE(file.status().message().find("read_csv() is not allowed"), std::string::npos)
      << file.status().ToString();
  auto other = client->Query({.model = "other", .sql = "SELECT 1"});
  EXPECT_NE(other.status().message().find("reads model sales, not other"), std::string::npos);
  auto runaway =
      client->Query({.model = "sales",
                     .sql = "SELECT count(*) FROM range(100000000) a, range(100000000) b "
                            "WHERE a.range + b.range = -1"});
  EXPECT_NE(runaway.status().message().find("time limit of 400 ms"), std::string::npos)
      << runaway.status().ToString();
  auto gone = client->Query({.model = "sales", .sql = "SELECT 1", .at_version = 99});
  EXPECT_NE(gone.status().message().find("version 99 of model sales is not retained"),
            std::string::npos)
      << gone.status().ToString();
  auto count = client->Query({.model = "sales", .sql = "SELECT count(*) AS n FROM orders"});
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(count->table->GetColumnByName("n")->GetScalar(0).ValueOrDie()->ToString(), "2");
}

TEST_F(FlightReadServerTest, AClientThatGoesAwayStopsItsQuery) {
  // One read connection: a query still running would hold it from the next read.
  SingleModel replica(
      ModelReads::Replica(
          {.data_dir = dir_->path(), .model = "sales", .reader = {.connections = 1}})
          .ValueOrDie());
  auto server = FlightReadServer::Start({}, replica).ValueOrDie();
  auto raw = arrow::flight::FlightClient::Connect(
                 arrow::flight::Location::Parse(server->url()).ValueOrDie())
                 .ValueOrDie();
  arrow::flight::FlightCallOptions impatient;
  impatient.timeout = arrow::flight::TimeoutDuration{0.3};
  auto runaway = raw->DoGet(
      impatient,
      arrow::flight::Ticket{R"({"model":"sales","sql":"SELECT count(*) FROM range(100000000) a, )"
                            R"(range(100000000) b WHERE a.range + b.range = -1"})"});
  Status gone = runaway.ok() ? (*runaway)->ToTable().status() : runaway.status();
  EXPECT_FALSE(gone.ok());
  // The server saw the client leave and interrupted its query (the time limit is a minute).
  arrow::flight::FlightCallOptions patient;
  patient.timeout = arrow::flight::TimeoutDuration{10};
  auto next = raw->DoGet(
      patient, arrow::flight::Ticket{R"({"model":"sales","sql":"SELECT count(*) FROM orders"})"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  auto rows = (*next)->ToTable();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");
}

TEST_F(FlightReadServerTest, AtVersionReadsARetainedVersionFile) {
  StartServer();
  Apply(
      R"({"request_id":"a2","model":"sales","op":"append","table":"orders","rows":[[3,"1.00",null,null]]})");
  auto client = Connect();
  auto now = client->Query({.model = "sales", .sql = "SELECT count(*) FROM orders"}).ValueOrDie();
  auto before =
      client->Query({.model = "sales", .sql = "SELECT count(*) FROM orders", .at_version = 2})
          .ValueOrDie();
  EXPECT_EQ(now.version, 3);
  EXPECT_EQ(now.table->column(0)->GetScalar(0).ValueOrDie()->ToString(), "3");
  EXPECT_EQ(before.version, 2);
  EXPECT_EQ(before.table->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");
}

TEST_F(FlightReadServerTest, PullDownloadsAVerifiedVersionFile) {
  StartServer();
  auto client = Connect();
  auto versions = client->Versions("sales").ValueOrDie();
  ASSERT_FALSE(versions.empty());
  EXPECT_EQ(versions.back().version, 2);
  const fs::path output = dir_->path() / "laptop" / "sales.duckdb";
  fs::create_directories(output.parent_path());
  auto pulled = client->Pull("sales", std::nullopt, output, nullptr).ValueOrDie();
  EXPECT_EQ(pulled.version, 2);
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(output)), pulled.bytes);
  auto count = DuckDatabase::Open({.path = output.string(), .read_only = true})
                   .ValueOrDie()
                   ->Connect()
                   .ValueOrDie()
                   ->QueryTable("SELECT count(*) FROM orders")
                   .ValueOrDie();
  EXPECT_EQ(count->column(0)->GetScalar(0).ValueOrDie()->ToString(), "2");
  // A damaged checksum fails the pull and leaves nothing behind.
  const auto checksum = VersionFilePath(dir_->path(), "sales", 2).string() + ".sha256";
  { std::ofstream(checksum) << std::string(64, '0') << "  v2.duckdb\n"; }
  const fs::path damaged = dir_->path() / "laptop" / "damaged.duckdb";
  auto refused = client->Pull("sales", 2, damaged, nullptr);
  EXPECT_NE(refused.status().message().find("does not match its checksum"), std::string::npos)
      << refused.status().ToString();
  EXPECT_FALSE(fs::exists(damaged));
  EXPECT_FALSE(fs::exists(damaged.string() + ".tmp"));
}

TEST_F(FlightReadServerTest, WithATokenFileCallsWithoutAValidTokenAreRefused) {
  const auto tokens = dir_->path() / "tokens";
  { std::ofstream(tokens) << "# readers\nsecret-one\n\nsecret-two\n"; }
  FlightReadServer::Options options;
  options.listen.token_file = tokens;
  StartServer(options);
  const ReadTicket ticket{.model = "sales", .sql = "SELECT 1"};
  for (const std::string token : {"", "wrong", "secret-on"}) {
    auto client = ReadClient::Connect({.url = server_->url(), .token = token}).ValueOrDie();
    auto refused = client->Query(ticket);
    ASSERT_FALSE(refused.ok()) << token;
    EXPECT_NE(refused.status().message().find("missing or invalid token"), std::string::npos)
        << refused.status().ToString();
    EXPECT_FALSE(client->Versions("sales").ok());
  }
  for (const std::string token : {"secret-one", "secret-two"}) {
    auto client = Connect({.token = token});
    EXPECT_TRUE(client->Query(ticket).ok()) << token;
  }
}

TEST_F(FlightReadServerTest, ServesOverTlsWithACertificateAndKey) {
  std::filesystem::path cert, key;
  MakeCertificate(&cert, &key);
  FlightReadServer::Options options;
  options.listen.tls_cert = cert;
  options.listen.tls_key = key;
  StartServer(options);
  EXPECT_TRUE(server_->url().starts_with("grpc+tls://")) << server_->url();
  auto client = Connect({.tls_root = cert});
  auto result = client->Query({.model = "sales", .sql = "SELECT count(*) FROM orders"});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  // A plain-text client cannot talk to it.
  auto port = std::to_string(server_->port());
  auto plain = ReadClient::Connect({.url = "grpc://127.0.0.1:" + port});
  EXPECT_FALSE(plain.ok() && (*plain)->Query({.model = "sales", .sql = "SELECT 1"}).ok());
}

}  // namespace
}  // namespace teatree
