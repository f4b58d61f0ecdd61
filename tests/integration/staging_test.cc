// Uploads of any size: a file is uploaded into its model's staging area (Flight DoPut or
// HTTP), a small request names it, the manager applies it once and removes the upload.

#include "teatree/engine/staging.h"

#include <arpa/inet.h>
#include <arrow/compute/cast.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <httplib.h>
#include <netinet/in.h>
#include <parquet/arrow/writer.h>
#include <sys/socket.h>

#include <csignal>
#include <sstream>

#include "queue_test_util.h"
#include "teatree/bus/model_registry.h"
#include "teatree/read/model_directory.h"
#include "teatree/read/read_servers.h"

namespace teatree::testing {
namespace {

/// `rows` orders (id = first.., amount, region) as an Arrow table.
std::shared_ptr<arrow::Table> Orders(int64_t first, int64_t rows) {
  arrow::Int64Builder ids;
  arrow::DoubleBuilder amounts;
  arrow::StringBuilder regions;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE(ids.Append(first + i).ok());
    EXPECT_TRUE(amounts.Append(0.5 * static_cast<double>(i)).ok());
    EXPECT_TRUE(regions.Append(i % 2 ? "eu" : "us").ok());
  }
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("amount", arrow::float64()),
                     arrow::field("region", arrow::utf8())});
  return arrow::Table::Make(schema, {ids.Finish().ValueOrDie(), amounts.Finish().ValueOrDie(),
                                     regions.Finish().ValueOrDie()});
}

std::string ParquetBytes(const arrow::Table& table) {
  auto sink = arrow::io::BufferOutputStream::Create().ValueOrDie();
  EXPECT_TRUE(
      parquet::arrow::WriteTable(table, arrow::default_memory_pool(), sink, 64 * 1024).ok());
  return sink->Finish().ValueOrDie()->ToString();
}

std::string IpcBytes(const arrow::Table& table) {
  auto sink = arrow::io::BufferOutputStream::Create().ValueOrDie();
  auto writer = arrow::ipc::MakeStreamWriter(sink, table.schema()).ValueOrDie();
  EXPECT_TRUE(writer->WriteTable(table).ok());
  EXPECT_TRUE(writer->Close().ok());
  return sink->Finish().ValueOrDie()->ToString();
}

/// The status line 127.0.0.1:`port` answers to `headers` sent alone, without the body they
/// announce: what a server decides from a request's declared length.
std::string AnswerToHeaders(int port, const std::string& headers) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{.sin_family = AF_INET, .sin_port = htons(static_cast<uint16_t>(port))};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::send(fd, headers.data(), headers.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(headers.size())) {
    char buffer[256];
    for (ssize_t n; answer.find("\r\n") == std::string::npos &&
                    (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
      answer.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return answer.substr(0, answer.find("\r\n"));
}

class StagingTest : public QueueFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  /// A front server like serve's, taking uploads for the models that exist, and a client
  /// that reads and uploads through it.
  void StartFront(StagingLimits limits = {}) {
    StartDispatcher();
    registry_ = ModelRegistry::Open(client().connection()).ValueOrDie();
    replicas_ = std::make_unique<DataDirReplicas>(ModelReadsOptions{.data_dir = data_}, nullptr);
    front_ = ReadServers::Start(
                 {.http_port = 0}, *replicas_,
                 {.nats = &client().connection(),
                  .queue = &client().queue(),
                  .registry = registry_.get(),
                  .uploads = {.data_dir = data_, .limits = limits, .registry = registry_.get()}})
                 .ValueOrDie();
    uploader_ =
        Client::Connect({.nats = {.url = server_->url()}, .read = {.url = front_->flight_url()}})
            .ValueOrDie();
  }

  std::string CreateTable(const std::string& model) {
    std::string json = QueueFixture::CreateTable(model);
    json.insert(json.size() - 1, R"(,"engine":")" + GetParam() + "\"");
    return json;
  }

  StagedFile Upload(const std::string& model, const std::string& bytes) {
    std::istringstream in(bytes);
    auto staged = uploader_->Upload(model, in, static_cast<int64_t>(bytes.size()));
    EXPECT_TRUE(staged.ok()) << staged.status().ToString();
    return staged.ok() ? *staged : StagedFile{};
  }

  static std::string StagedAppend(const std::string& id, const std::string& format,
                                  const std::string& staged) {
    return R"({"request_id":")" + id +
           R"(","model":"sales","op":"append","table":"orders","source":{"format":")" + format +
           R"(","staged":")" + staged + R"("}})";
  }

  bool Staged(const std::string& id) { return fs::exists(StagingDir(data_, "sales") / id); }

  /// Whether upload `id` is removed within 10 s: the manager removes it once its request is
  /// settled, just after the outcome is out.
  bool Removed(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (Staged(id) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    return !Staged(id);
  }

  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<DataDirReplicas> replicas_;
  std::unique_ptr<ReadServers> front_;
  std::unique_ptr<Client> uploader_;
};

TEST_P(StagingTest, AnUploadIsAppliedOnceAndThenRemoved) {
  StartFront();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  const StagedFile parquet = Upload("sales", ParquetBytes(*Orders(1, 5000)));
  EXPECT_TRUE(Staged(parquet.id));
  Outcome applied = Run(StagedAppend("p1", "parquet", parquet.id));
  ASSERT_TRUE(applied.applied()) << applied.note.dump();
  EXPECT_EQ(applied.note.value("rows", 0), 5000);
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "5000");
  EXPECT_TRUE(Removed(parquet.id));  // Once the outcome was out.
  // The same request again, its upload long gone: answered from the request table.
  auto again = client().Submit(Parse(StagedAppend("p1", "parquet", parquet.id)));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "5000");
  // Arrow IPC and CSV go the same way.
  const StagedFile ipc = Upload("sales", IpcBytes(*Orders(10'001, 100)));
  const StagedFile csv = Upload("sales", "id,amount,region\n20001,1.5,eu\n20002,2.5,us\n");
  EXPECT_TRUE(Run(StagedAppend("a1", "arrow", ipc.id)).applied());
  EXPECT_TRUE(Run(StagedAppend("c1", "csv", csv.id)).applied());
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "5102");
  EXPECT_TRUE(Removed(ipc.id));
  EXPECT_TRUE(Removed(csv.id));
  // An id never uploaded (or already applied): rejected, saying what to do.
  Outcome missing = Run(StagedAppend("m1", "parquet", parquet.id));
  EXPECT_FALSE(missing.applied());
  EXPECT_NE(missing.note.value("error", "").find("upload the file again"), std::string::npos)
      << missing.note.dump();
  EXPECT_EQ(missing.note.value("error", "").find(data_.string()), std::string::npos);
  // A file that is not what the request says: rejected, the upload removed all the same.
  const StagedFile wrong = Upload("sales", "id,amount,region\n1,2,eu\n");
  Outcome bad = Run(StagedAppend("w1", "parquet", wrong.id));
  EXPECT_FALSE(bad.applied());
  EXPECT_NE(bad.note.value("error", "").find("staged upload " + wrong.id), std::string::npos)
      << bad.note.dump();
  EXPECT_EQ(bad.note.value("error", "").find(data_.string()), std::string::npos);
  EXPECT_TRUE(Removed(wrong.id));
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "5102");
}

// A Parquet file with the table's columns and types is stored as it is (on DuckDB, read by
// DuckDB itself); one that needs a cast is converted first. Either way a bad file is
// refused whole, naming the upload and not where the server keeps it.
TEST_P(StagingTest, ParquetIsStoredAsItIsOrConvertedAndBadFilesAreRefusedWhole) {
  StartFront();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  auto expect_refused = [&](const std::string& request_id, const std::string& bytes,
                            const std::string& says) {
    const StagedFile staged = Upload("sales", bytes);
    Outcome refused = Run(StagedAppend(request_id, "parquet", staged.id));
    EXPECT_FALSE(refused.applied());
    const std::string error = refused.note.value("error", "");
    EXPECT_NE(error.find(says), std::string::npos) << error;
    EXPECT_EQ(error.find(data_.string()), std::string::npos) << error;
    EXPECT_TRUE(Removed(staged.id));
  };
  ASSERT_TRUE(Run(StagedAppend("p1", "parquet", Upload("sales", ParquetBytes(*Orders(1, 3))).id))
                  .applied());
  // Columns in another order, `id` as int32: converted, then stored.
  auto narrow = Orders(101, 2);
  auto ids = arrow::compute::Cast(narrow->column(0), arrow::int32()).ValueOrDie().chunked_array();
  auto reordered = arrow::Table::Make(
      arrow::schema({arrow::field("region", arrow::utf8()), arrow::field("id", arrow::int32()),
                     arrow::field("amount", arrow::float64())}),
      {narrow->column(2), ids, narrow->column(1)});
  ASSERT_TRUE(
      Run(StagedAppend("p2", "parquet", Upload("sales", ParquetBytes(*reordered)).id)).applied());
  EXPECT_EQ(Scalar("sales",
                   "SELECT string_agg(id || ':' || region || ':' || amount, ' ' "
                   "ORDER BY id) FROM orders"),
            "1:us:0.0 2:eu:0.5 3:us:1.0 101:us:0.0 102:eu:0.5");
  // A key the table holds already, in a file that is otherwise fine: nothing of it stored.
  expect_refused("p3", ParquetBytes(*Orders(3, 10)), "");
  // A column the table lacks, or damaged pages behind an intact footer.
  auto extra =
      Orders(200, 2)->AddColumn(3, arrow::field("extra", arrow::int64()), Orders(0, 2)->column(0));
  expect_refused("p4", ParquetBytes(*extra.ValueOrDie()), "column \"extra\" is not in table");
  std::string damaged = ParquetBytes(*Orders(300, 1000));
  std::fill(damaged.begin() + 4, damaged.begin() + 2000, '\xff');
  expect_refused("p5", damaged, "staged upload");
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "5");
}

TEST_P(StagingTest, RowsTooLargeForTheQueueAreUploadedByTheClient) {
  StartFront();
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  // About 10 MiB of Arrow IPC, 13 MiB as base64: over the queue's 8 MiB.
  Request large = Parse(
      R"({"request_id":"big","model":"sales","op":"append","table":"orders","rows":[[0,0,"x"]]})");
  large.rows = nullptr;
  large.rows_ipc = IpcBytes(*Orders(0, 400'000));
  ASSERT_GT(EncodeRequest(large).size(), size_t{8} << 20);
  auto outcome = uploader_->SubmitAndWait(large, seconds(120));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->applied()) << outcome->note.dump();
  EXPECT_EQ(Scalar("sales", "SELECT count(*), sum(id) FROM orders"), "400000");
  // JSON rows too.
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < 300'000; ++i) rows.push_back({1'000'000 + i, 1.25, "a json row"});
  Request json = Parse(R"({"request_id":"bigjson","model":"sales","op":"append","table":"orders",)"
                       R"("rows":[[0,0,"x"]]})");
  json.rows = rows;
  ASSERT_GT(EncodeRequest(json).size(), size_t{8} << 20);
  outcome = uploader_->SubmitAndWait(json, seconds(120));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->applied()) << outcome->note.dump();
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders"), "700000");
  for (const auto& entry : fs::directory_iterator(StagingDir(data_, "sales"))) {
    EXPECT_TRUE(Removed(entry.path().filename().string())) << entry.path();
  }
  // What cannot be uploaded is refused before anything is sent, naming the limit.
  Request query = Parse(R"({"request_id":"q","model":"sales","op":"query","sql":"SELECT 1"})");
  query.sql = "SELECT '" + std::string(size_t{9} << 20, 'x') + "'";
  auto refused = uploader_->Submit(query);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("over the limit of 8388608 bytes"), std::string::npos)
      << refused.status().message();
}

TEST_P(StagingTest, HttpTakesUploadsAndRefusesBadOnesLeavingNothing) {
  StartFront({.max_bytes = 1 << 20});
  ASSERT_TRUE(Run(CreateTable("sales")).applied());
  const int port = std::stoi(front_->http_url().substr(front_->http_url().rfind(':') + 1));
  httplib::Client http("127.0.0.1", port);
  auto created = http.Post("/v1/models/sales/uploads", "id,amount,region\n7,1.5,eu\n", "text/csv");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const auto staged = nlohmann::json::parse(created->body);
  EXPECT_EQ(staged.value("bytes", 0), 26);
  auto accepted =
      http.Post("/v1/models/sales/requests", StagedAppend("h1", "csv", staged.value("staged", "")),
                "application/json");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202) << accepted->body;
  ASSERT_TRUE(client().Wait("sales", "h1", seconds(60)).ValueOrDie().applied());
  EXPECT_EQ(Scalar("sales", "SELECT count(*) FROM orders WHERE id = 7"), "1");
  // Too large (the declared length, and a chunked body past it), an unknown model: refused.
  EXPECT_EQ(AnswerToHeaders(port,
                            "POST /v1/models/sales/uploads HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 2097152\r\n\r\n"),
            "HTTP/1.1 413 Payload Too Large");
  // The server stops reading a body past the limit: the client may not get to read the 413.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string big(size_t{2} << 20, 'x');
  auto chunked = http.Post(
      "/v1/models/sales/uploads",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset >= big.size()) {
          sink.done();
          return true;
        }
        return sink.write(big.data() + offset, std::min<size_t>(64 << 10, big.size() - offset));
      },
      "text/csv");
  if (chunked) {
    EXPECT_EQ(chunked->status, 413) << chunked->body;
  }
  EXPECT_EQ(http.Post("/v1/models/nosuch/uploads", "x", "text/csv")->status, 404);
  std::istringstream one_mib_more(std::string((size_t{1} << 20) + 1, 'x'));
  auto over = uploader_->Upload("sales", one_mib_more, -1);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("larger than the server takes"), std::string::npos)
      << over.status().message();
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(StagingDir(data_, "sales"), ec));
}

INSTANTIATE_TEST_SUITE_P(Engines, StagingTest, ::testing::Values("duckdb", "arrow"));

}  // namespace
}  // namespace teatree::testing
