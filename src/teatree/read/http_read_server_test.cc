#include "teatree/read/http_read_server.h"

#include <arpa/inet.h>
#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "teatree/read/read_test_util_internal.h"

namespace teatree {
namespace {

class HttpReadServerTest : public testing::LiveModelFixture {
 protected:
  void StopServers() override { server_.reset(); }

  void StartServer(HttpReadServer::Options options = {}) {
    server_ = HttpReadServer::Start(options, *models_).ValueOrDie();
    const std::string url = server_->url();
    port_ = std::stoi(url.substr(url.rfind(':') + 1));
  }

  httplib::Client Client() { return httplib::Client("127.0.0.1", port_); }

  /// Sends `request` as raw bytes on a new connection and returns what comes back until the
  /// server closes it or goes quiet for a second.
  std::string RawExchange(const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      timeval timeout{.tv_sec = 1, .tv_usec = 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      char buffer[4096];
      for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;)
        answer.append(buffer, got);
    }
    close(fd);
    return answer;
  }

  httplib::Result Query(const std::string& body, const std::string& accept = "") {
    httplib::Headers headers;
    if (!accept.empty()) headers.emplace("Accept", accept);
    return Client().Post("/v1/models/sales/query", headers, body, "application/json");
  }

  std::unique_ptr<HttpReadServer> server_;
  int port_ = 0;
};

TEST_F(HttpReadServerTest, QueriesAnswerInJsonCsvOrArrowByAccept) {
  StartServer();
  const std::string body = R"({"sql":"SELECT id, amount, tags FROM orders ORDER BY id"})";
  auto json = Query(body);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 200);
  EXPECT_EQ(json->get_header_value("Teatree-Version"), "2");
  auto rows = nlohmann::json::parse(json->body);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["id"], 1);
  EXPECT_EQ(rows[0]["amount"], "12.50");
  EXPECT_EQ(rows[0]["tags"], nlohmann::json({"a", "b"}));
  EXPECT_TRUE(rows[1]["amount"].is_null());

  auto csv = Query(body, "text/csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->get_header_value("Content-Type"), "text/csv");
  EXPECT_EQ(csv->body.substr(0, csv->body.find('\n')), R"("id","amount","tags")");

  auto arrow_body = Query(body, "application/vnd.apache.arrow.stream");
  ASSERT_TRUE(arrow_body);
  auto input =
      std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(arrow_body->body));
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(input).ValueOrDie();
  auto table = reader->ToTable().ValueOrDie();
  EXPECT_EQ(table->num_rows(), 2);
  EXPECT_EQ(table->schema()->field(1)->type()->ToString(), "decimal128(12, 2)");
}

TEST_F(HttpReadServerTest, BadReadsGetAClearErrorAndStatus) {
  StartServer();
  auto refused = Query(R"({"sql":"DELETE FROM orders"})");
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("only SELECT is allowed"), std::string::npos) << refused->body;
  auto malformed = Query("SELECT 1");
  EXPECT_EQ(malformed->status, 400);
  EXPECT_NE(malformed->body.find("must be a JSON object"), std::string::npos);
  auto gone = Query(R"({"sql":"SELECT 1","at_version":99})");
  EXPECT_EQ(gone->status, 404);
  auto other = Client().Post("/v1/models/other/query", R"({"sql":"SELECT 1"})", "application/json");
  EXPECT_EQ(other->status, 404);
  auto no_queue = Client().Post("/v1/models/sales/requests", "{}", "application/json");
  EXPECT_EQ(no_queue->status, 503);
  auto count = Query(R"({"sql":"SELECT count(*) AS n FROM orders"})");
  EXPECT_EQ(nlohmann::json::parse(count->body)[0]["n"], 2);
}

TEST_F(HttpReadServerTest, HostileBodiesAreRefusedWithAJsonErrorAndTheServerGoesOn) {
  StartServer({.http = {.max_body_bytes = 1 << 20}});
  auto is_json_error = [](const httplib::Result& result, int status, const std::string& text) {
    ASSERT_TRUE(result) << "no answer";
    EXPECT_EQ(result->status, status) << result->body;
    auto body = nlohmann::json::parse(result->body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << result->body;
    EXPECT_NE(body["error"].get<std::string>().find(text), std::string::npos) << result->body;
  };
  // Nested 100,000 deep: refused before it is parsed, not a crash.
  is_json_error(Query(std::string(100000, '[') + std::string(100000, ']')), 400, "levels deep");
  is_json_error(Query("{\"sql\": \"SELECT \xff\xfe\"}"), 400, "not valid JSON");
  // A form-encoded body (what `curl -d` sends) is read as it is, whatever its size.
  auto form = Client().Post(
      "/v1/models/sales/query",
      R"({"sql":"SELECT count(*) AS n FROM orders )" + std::string(20000, ' ') + "\"}",
      "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 200) << form->body;
  // A Content-Length past the limit is refused before any of the body is sent.
  for (const std::string path : {"/v1/models/sales/query"}) {
    const std::string answer =
        RawExchange("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                    std::to_string(size_t{1} << 40) + "\r\n\r\n");
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << path << ": " << answer;
    EXPECT_NE(answer.find("larger than"), std::string::npos) << answer;
  }
  auto health = Client().Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(HttpReadServerTest, DescribesModelsAndReportsHealthAndMetrics) {
  bool ready = false;
  StartServer({.ready = [&] { return ready; }});
  auto client = Client();
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  ready = true;
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  auto models = nlohmann::json::parse(client.Get("/v1/models")->body);
  ASSERT_EQ(models["models"].size(), 1u);
  EXPECT_EQ(models["models"][0]["tables"][0], nlohmann::json({{"name", "orders"}, {"rows", 2}}));
  auto model = nlohmann::json::parse(client.Get("/v1/models/sales")->body);
  EXPECT_EQ(model["version"], 2);
  EXPECT_EQ(model["versions"].back()["version"], 2);
  Query(R"({"sql":"SELECT 1"})");
  auto metrics = client.Get("/metrics");
  EXPECT_NE(metrics->body.find("teatree_reads_total{protocol=\"http\",status=\"ok\"}"),
            std::string::npos)
      << metrics->body;
}

TEST_F(HttpReadServerTest, WithATokenFileOnlyHealthChecksGoWithoutAToken) {
  const auto tokens = dir_->path() / "tokens";
  { std::ofstream(tokens) << "s3cret\n"; }
  HttpReadServer::Options options;
  options.listen.token_file = tokens;
  StartServer(options);
  auto client = Client();
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  auto refused = client.Get("/v1/models");
  EXPECT_EQ(refused->status, 401);
  EXPECT_NE(refused->body.find("missing or invalid token"), std::string::npos);
  EXPECT_EQ(client.Get("/metrics")->status, 401);
  client.set_bearer_token_auth("wrong");
  EXPECT_EQ(client.Get("/v1/models")->status, 401);
  client.set_bearer_token_auth("s3cret");
  EXPECT_EQ(client.Get("/v1/models")->status, 200);
}

TEST_F(HttpReadServerTest, TokensAreScopedToModelsAndRights) {
  const auto tokens = dir_->path() / "tokens";
  {
    std::ofstream(tokens) << "# token rights models\n"
                          << "reader read sales\n"
                          << "elsewhere read,submit inventory\n"
                          << "ops admin *\n";
  }
  HttpReadServer::Options options;
  options.listen.token_file = tokens;
  StartServer(options);
  auto as = [&](const std::string& token) {
    auto client = Client();
    client.set_bearer_token_auth(token);
    return client;
  };
  const std::string query = R"({"sql":"SELECT count(*) AS n FROM orders"})";
  EXPECT_EQ(as("reader").Post("/v1/models/sales/query", query, "application/json")->status, 200);
  auto forbidden = as("elsewhere").Post("/v1/models/sales/query", query, "application/json");
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_NE(forbidden->body.find("may not read model sales"), std::string::npos) << forbidden->body;
  // Reading is not submitting, and no queue is asked before the right is checked.
  auto submit = as("reader").Post("/v1/models/sales/requests", "{}", "application/json");
  EXPECT_EQ(submit->status, 403);
  EXPECT_NE(submit->body.find("may not submit to model sales"), std::string::npos);
  EXPECT_EQ(as("reader").Get("/metrics")->status, 403);
  EXPECT_EQ(as("ops").Get("/metrics")->status, 200);
  EXPECT_EQ(as("elsewhere").Get("/v1/models/sales")->status, 403);
  // A listing shows only the models the token may read.
  EXPECT_EQ(nlohmann::json::parse(as("elsewhere").Get("/v1/models")->body)["models"].size(), 0u);
  EXPECT_EQ(nlohmann::json::parse(as("reader").Get("/v1/models")->body)["models"].size(), 1u);
}

TEST_F(HttpReadServerTest, ServesHttpsWithACertificateAndKey) {
  std::filesystem::path cert, key;
  MakeCertificate(&cert, &key);
  HttpReadServer::Options options;
  options.listen.tls_cert = cert;
  options.listen.tls_key = key;
  StartServer(options);
  EXPECT_TRUE(server_->url().starts_with("https://"));
  httplib::SSLClient client("127.0.0.1", port_);
  client.set_ca_cert_path(cert.c_str());
  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models) << httplib::to_string(models.error());
  EXPECT_EQ(models->status, 200);
  EXPECT_FALSE(Client().Get("/v1/models"));  // Plain HTTP gets no answer.
}

}  // namespace
}  // namespace teatree
