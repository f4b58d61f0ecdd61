#include "teatree/archive/archive.h"

#include <arrow/api.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/io/file.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "teatree/archive/s3_test_server.h"
#include "teatree/common/net.h"
#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       const std::string& json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

/// Five rows of every type the archive must round-trip, NULLs included.
std::shared_ptr<arrow::Table> ManyTypesTable() {
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64(), /*nullable=*/false),
      arrow::field("price", arrow::float64()),
      arrow::field("amount", arrow::decimal128(10, 2)),
      arrow::field("name", arrow::utf8()),
      arrow::field("at", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("tags", arrow::list(arrow::utf8())),
      arrow::field("day", arrow::date32()),
  });
  return arrow::Table::Make(
      schema,
      {
          FromJson(arrow::int64(), "[1, 2, 3, 4, 9007199254740993]"),
          FromJson(arrow::float64(), "[1.5, -0.25, null, 1e300, 0]"),
          FromJson(arrow::decimal128(10, 2),
                   R"(["12345678.90", "-0.01", null, "0.00", "99999999.99"])"),
          FromJson(arrow::utf8(), R"(["alpha", null, "", "ünïcödé", null])"),
          FromJson(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                   R"(["2024-02-29 23:59:59.999999", null, "1970-01-01 00:00:00",
                               "1900-01-01 00:00:00.000001", "2262-04-11 23:47:16"])"),
          FromJson(arrow::list(arrow::utf8()), R"([["a", "b"], [], null, [null, "c"], ["d"]])"),
          FromJson(arrow::date32(), "[0, 19782, null, -719162, 2932896]"),
      });
}

/// `table` as a stream of batches of at most `chunk` rows.
std::shared_ptr<arrow::RecordBatchReader> Stream(const std::shared_ptr<arrow::Table>& table,
                                                 int64_t chunk = 2) {
  auto reader = std::make_shared<arrow::TableBatchReader>(table);
  reader->set_chunksize(chunk);
  return reader;
}

/// Yields one good batch, then fails: an upstream query dying mid-stream.
class FailingReader final : public arrow::RecordBatchReader {
 public:
  explicit FailingReader(const std::shared_ptr<arrow::Table>& table)
      : batch_(table->CombineChunksToBatch().ValueOrDie()) {}
  std::shared_ptr<arrow::Schema> schema() const override { return batch_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    if (calls_++ == 0) {
      *out = batch_;
      return arrow::Status::OK();
    }
    return arrow::Status::IOError("upstream query died");
  }

 private:
  std::shared_ptr<arrow::RecordBatch> batch_;
  int calls_ = 0;
};

bool Contains(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

/// One S3-protocol server for the whole test binary, started on first use.
S3TestServer& SharedS3() {
  static std::unique_ptr<TempDir> dir = TempDir::Make("teatree-s3-").ValueOrDie();
  static std::unique_ptr<S3TestServer> server =
      S3TestServer::Start(TEATREE_PYTHON, dir->path() / "s3.log").ValueOrDie();
  return *server;
}

/// The same tests on a local directory (a bare path) and on an S3 bucket.
class ArchiveTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto dir = TempDir::Make("teatree-archive-test-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(*dir);
    std::string url;
    if (GetParam() == "local") {
      url = (dir_->path() / "archive").string();
      uri_prefix_ = "file://" + url;
      fs_ = std::make_shared<arrow::fs::LocalFileSystem>();
      base_ = url;
    } else {
      static int buckets = 0;
      const std::string bucket = "bucket" + std::to_string(++buckets);
      Status created = SharedS3().CreateBucket(bucket);
      ASSERT_TRUE(created.ok()) << created.ToString();
      url = SharedS3().ArchiveUrl(bucket, "archive");
      uri_prefix_ = "s3://" + bucket + "/archive";
      std::string path;
      fs_ = arrow::fs::FileSystemFromUri(url, &path).ValueOrDie();
      base_ = path;
    }
    auto archive = Archive::Open(url);
    ASSERT_TRUE(archive.ok()) << archive.status().ToString();
    archive_ = std::move(*archive);
  }

  /// Writes `table` as model m, `version`, `name`, expecting success.
  void Write(int64_t version, const std::string& name, const std::shared_ptr<arrow::Table>& table) {
    auto file = archive_->WriteTable("m", version, name, *Stream(table));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
  }

  /// Every file in the archive, relative to its root, sorted.
  std::vector<std::string> Files() {
    arrow::fs::FileSelector selector;
    selector.base_dir = base_;
    selector.recursive = true;
    selector.allow_not_found = true;
    std::vector<std::string> files;
    for (const auto& info : fs_->GetFileInfo(selector).ValueOrDie()) {
      if (info.IsFile()) files.push_back(info.path().substr(base_.size() + 1));
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  /// A junk file at `relative` below the archive's root.
  void Touch(const std::string& relative) {
    const std::string path = base_ + "/" + relative;
    ASSERT_TRUE(fs_->CreateDir(path.substr(0, path.rfind('/'))).ok());
    auto out = fs_->OpenOutputStream(path).ValueOrDie();
    ASSERT_TRUE(out->Write("junk", 4).ok());
    ASSERT_TRUE(out->Close().ok());
  }

  void MakeDir(const std::string& relative) {
    ASSERT_TRUE(fs_->CreateDir(base_ + "/" + relative).ok());
  }

  std::unique_ptr<TempDir> dir_;
  std::shared_ptr<arrow::fs::FileSystem> fs_;
  std::string base_;        // The archive's root on fs_.
  std::string uri_prefix_;  // What file URIs start with.
  std::unique_ptr<Archive> archive_;
};

TEST_P(ArchiveTest, RoundTripsManyTypes) {
  const auto table = ManyTypesTable();
  auto file = archive_->WriteTable("sales", 7, "orders", *Stream(table));
  ASSERT_TRUE(file.ok()) << file.status().ToString();

  EXPECT_EQ(file->uri, uri_prefix_ + "/sales/v7/orders.parquet");
  EXPECT_EQ(file->rows, 5);
  EXPECT_EQ(file->bytes, fs_->GetFileInfo(base_ + "/sales/v7/orders.parquet").ValueOrDie().size());
  EXPECT_EQ(Files(), std::vector<std::string>{"sales/v7/orders.parquet"});

  auto read = archive_->ReadTable("sales", 7, "orders");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE((*read)->schema()->Equals(*table->schema()))
      << (*read)->schema()->ToString() << "\nvs\n"
      << table->schema()->ToString();
  EXPECT_TRUE((*read)->Equals(*table)) << (*read)->ToString();
}

TEST_P(ArchiveTest, FilesAreZstdCompressedParquet) {
  Write(1, "t", ManyTypesTable());
  auto input = fs_->OpenInputFile(base_ + "/m/v1/t.parquet");
  ASSERT_TRUE(input.ok());
  auto metadata = parquet::ParquetFileReader::Open(*input)->metadata();
  ASSERT_GE(metadata->num_row_groups(), 1);
  for (int column = 0; column < metadata->num_columns(); ++column) {
    EXPECT_EQ(metadata->RowGroup(0)->ColumnChunk(column)->compression(),
              parquet::Compression::ZSTD);
  }
}

TEST_P(ArchiveTest, StreamsManyBatches) {
  std::vector<std::shared_ptr<arrow::Table>> copies(1000, ManyTypesTable());
  auto table = arrow::ConcatenateTables(copies).ValueOrDie();
  auto file = archive_->WriteTable("m", 1, "big", *Stream(table, 7));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->rows, 5000);
  auto read = archive_->ReadTable("m", 1, "big");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE((*read)->Equals(*table));
}

TEST_P(ArchiveTest, EmptyStreamWritesAnEmptyTableWithItsSchema) {
  const auto table = ManyTypesTable()->Slice(0, 0);
  auto file = archive_->WriteTable("m", 1, "empty", *Stream(table));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->rows, 0);
  auto read = archive_->ReadTable("m", 1, "empty");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ((*read)->num_rows(), 0);
  EXPECT_TRUE((*read)->schema()->Equals(*table->schema()));
}

TEST_P(ArchiveTest, RewritingATableReplacesIt) {
  const auto table = ManyTypesTable();
  Write(1, "t", table);
  Write(1, "t", table->Slice(1, 2));
  auto read = archive_->ReadTable("m", 1, "t");
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE((*read)->Equals(*table->Slice(1, 2)));
  EXPECT_EQ(Files(), std::vector<std::string>{"m/v1/t.parquet"});
}

TEST(ArchiveLocalTest, FileUriWorksAndCreatesTheDirectory) {
  auto temp = TempDir::Make("teatree-archive-test-").ValueOrDie();
  const fs::path dir = temp->path() / "nested" / "by uri";  // A space: percent-encoded.
  const std::string uri = "file://" + dir.parent_path().string() + "/by%20uri";
  auto archive = Archive::Open(uri);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  EXPECT_EQ((*archive)->uri(), uri);
  EXPECT_TRUE(fs::is_directory(dir));

  const auto table = ManyTypesTable();
  auto file = (*archive)->WriteTable("m", 3, "t", *Stream(table));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(fs::exists(dir / "m" / "v3" / "t.parquet"));
  EXPECT_EQ(file->uri, uri + "/m/v3/t.parquet");
  auto read = (*archive)->ReadTable("m", 3, "t");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE((*read)->Equals(*table));

  // The same directory opened as a bare path sees the same archive.
  auto bare = Archive::Open(dir.string() + "/");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_EQ((*bare)->ListVersions("m").ValueOrDie(), std::vector<int64_t>{3});
}

TEST_P(ArchiveTest, ListsVersionsAndTables) {
  const auto table = ManyTypesTable();
  for (int64_t version : {10, 2, 1}) Write(version, "b", table);
  Write(2, "a", table);
  // Things that are not versions or tables.
  MakeDir("m/vx");
  MakeDir("m/v");
  MakeDir("m/v-3");
  Touch("m/v4");  // A file, not a directory.
  Touch("m/v2/.c.parquet.tmp-0123456789abcdef");
  Touch("m/v2/notes.txt");

  auto versions = archive_->ListVersions("m");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  EXPECT_EQ(*versions, (std::vector<int64_t>{1, 2, 10}));
  auto tables = archive_->ListTables("m", 2);
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  EXPECT_EQ(*tables, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(archive_->ListTables("m", 10).ValueOrDie(), std::vector<std::string>{"b"});

  EXPECT_TRUE(archive_->ListVersions("other").ValueOrDie().empty());
  EXPECT_TRUE(archive_->ListTables("m", 5).ValueOrDie().empty());
  EXPECT_TRUE(archive_->ListTables("other", 1).ValueOrDie().empty());
}

TEST_P(ArchiveTest, ReaderFailingMidStreamLeavesNothingBehind) {
  FailingReader failing(ManyTypesTable());
  auto file = archive_->WriteTable("m", 1, "t", failing);
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(file.status().IsIOError()) << file.status().ToString();
  EXPECT_TRUE(Contains(file.status(), "upstream query died")) << file.status().ToString();
  EXPECT_TRUE(Contains(file.status(), "table \"t\" of model \"m\" version 1"));
  EXPECT_TRUE(Files().empty()) << ::testing::PrintToString(Files());
  EXPECT_TRUE(archive_->ListTables("m", 1).ValueOrDie().empty());
}

TEST_P(ArchiveTest, FailedRewriteKeepsThePublishedFile) {
  const auto table = ManyTypesTable();
  Write(1, "t", table);
  FailingReader failing(table->Slice(0, 1));
  ASSERT_FALSE(archive_->WriteTable("m", 1, "t", failing).ok());
  EXPECT_EQ(Files(), std::vector<std::string>{"m/v1/t.parquet"});
  auto read = archive_->ReadTable("m", 1, "t");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE((*read)->Equals(*table));
}

TEST_P(ArchiveTest, CleanTemporariesRemovesOnlyTemporaries) {
  Write(1, "t", ManyTypesTable());
  Touch("m/v1/.t.parquet.tmp-00000000deadbeef");
  Touch("m/v2/.u.parquet.tmp-0123456789abcdef");
  Touch("other/v1/.t.parquet.tmp-00000000deadbeef");

  ASSERT_TRUE(archive_->CleanTemporaries("m").ok());
  EXPECT_EQ(Files(), (std::vector<std::string>{"m/v1/t.parquet",
                                               "other/v1/.t.parquet.tmp-00000000deadbeef"}));
  EXPECT_TRUE(archive_->CleanTemporaries("never-written").ok());
}

TEST_P(ArchiveTest, ReadingWhatWasNeverArchivedIsAKeyErrorNamingIt) {
  Write(1, "t", ManyTypesTable());
  for (auto [model, version, table] : {std::tuple{"m", 1, "u"}, {"m", 2, "t"}, {"x", 1, "t"}}) {
    auto read = archive_->ReadTable(model, version, table);
    ASSERT_FALSE(read.ok());
    EXPECT_TRUE(read.status().IsKeyError()) << read.status().ToString();
    EXPECT_TRUE(Contains(read.status(), std::string("table \"") + table + "\" of model \"" + model +
                                            "\" version " + std::to_string(version)))
        << read.status().ToString();
  }
}

TEST_P(ArchiveTest, RefusesNamesThatEscapeTheLayout) {
  const auto table = ManyTypesTable();
  for (std::string bad : {"", "a/b", "..", "../x", "a..b", ".hidden", "a\\b"}) {
    auto as_table = archive_->WriteTable("m", 1, bad, *Stream(table));
    ASSERT_FALSE(as_table.ok()) << bad;
    EXPECT_TRUE(as_table.status().IsInvalid());
    EXPECT_TRUE(Contains(as_table.status(), "table name \"" + bad + "\" cannot be archived"))
        << as_table.status().ToString();
    auto as_model = archive_->WriteTable(bad, 1, "t", *Stream(table));
    ASSERT_FALSE(as_model.ok()) << bad;
    EXPECT_TRUE(Contains(as_model.status(), "model name \"" + bad + "\""));
    EXPECT_FALSE(archive_->ListVersions(bad).ok());
    EXPECT_FALSE(archive_->ReadTable("m", 1, bad).ok());
    EXPECT_FALSE(archive_->CleanTemporaries(bad).ok());
  }
  auto negative = archive_->WriteTable("m", -1, "t", *Stream(table));
  ASSERT_FALSE(negative.ok());
  EXPECT_TRUE(Contains(negative.status(), "version -1")) << negative.status().ToString();
  EXPECT_TRUE(Files().empty());
}

INSTANTIATE_TEST_SUITE_P(Storage, ArchiveTest, ::testing::Values("local", "s3"),
                         [](const auto& info) { return info.param; });

TEST(ArchiveOpenTest, CheckNamesAMissingBucketAndAnUnreachableServer) {
  auto missing = Archive::Open(SharedS3().ArchiveUrl("no-such-bucket", "archive")).ValueOrDie();
  Status status = missing->Check();
  EXPECT_TRUE(status.IsInvalid()) << status.ToString();
  EXPECT_TRUE(Contains(status, "bucket \"no-such-bucket\" does not exist")) << status.ToString();
  ASSERT_TRUE(SharedS3().CreateBucket("there").ok());
  EXPECT_TRUE(Archive::Open(SharedS3().ArchiveUrl("there", "a")).ValueOrDie()->Check().ok());

  const int port = FreeLoopbackPort().ValueOrDie();
  auto closed = Archive::Open(S3TestServer::ArchiveUrlAt(port, "there", "a")).ValueOrDie();
  status = closed->Check();
  EXPECT_TRUE(status.IsIOError()) << status.ToString();
  EXPECT_TRUE(Contains(status, "is unreachable")) << status.ToString();
}

TEST(ArchiveOpenTest, BadUrisAreInvalidAndNameTheAcceptedForms) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ftp://x", "scheme \"ftp\" is not supported"},
      {"s3://", "names no bucket"},
      {"s3://?endpoint_override=127.0.0.1:9", "names no bucket"},
      {"s3://bucket/x?no_such_option=1", "no_such_option"},
      {"", "it is empty"},
      {"not a uri at all", "neither an absolute path nor a URI"},
      {"relative/dir", "neither an absolute path nor a URI"},
      {"%%%://x", "scheme is malformed"},
      {"://x", "scheme is malformed"},
      {"file://some-host/dir", "file://some-host/dir"},
  };
  for (const auto& [uri, reason] : cases) {
    auto archive = Archive::Open(uri);
    ASSERT_FALSE(archive.ok()) << uri;
    EXPECT_TRUE(archive.status().IsInvalid()) << archive.status().ToString();
    EXPECT_TRUE(Contains(archive.status(), "archive URI \"" + uri + "\" is invalid"))
        << archive.status().ToString();
    EXPECT_TRUE(Contains(archive.status(), reason)) << archive.status().ToString();
    EXPECT_TRUE(Contains(archive.status(), "file:///abs/dir, or s3://bucket/prefix"))
        << archive.status().ToString();
  }
}

TEST(ArchiveOpenTest, ErrorsDoNotRevealPasswords) {
  auto archive = Archive::Open("ftp://user:hunter2@host/dir");
  ASSERT_FALSE(archive.ok());
  EXPECT_FALSE(Contains(archive.status(), "hunter2")) << archive.status().ToString();
  EXPECT_TRUE(Contains(archive.status(), "ftp://user:***@host/dir"));
}

TEST(ArchiveOpenTest, ARegularFileIsNotAnArchiveDirectory) {
  auto dir = TempDir::Make("teatree-archive-test-");
  ASSERT_TRUE(dir.ok());
  std::ofstream((*dir)->path() / "file") << "junk";
  auto archive = Archive::Open(((*dir)->path() / "file").string());
  ASSERT_FALSE(archive.ok());
  EXPECT_TRUE(Contains(archive.status(), ((*dir)->path() / "file").string()))
      << archive.status().ToString();
}

// Opening an S3 archive does no network I/O when the URI names an endpoint, so it succeeds
// even when nothing listens there; the first operation then fails, quickly and clearly.
TEST(ArchiveOpenTest, S3WithAClosedPortOpensAndThenFailsFast) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string uri =
      "s3://bucket/prefix?endpoint_override=127.0.0.1:" + std::to_string(*port) +
      "&scheme=http&region=us-east-1";
  const auto start = std::chrono::steady_clock::now();
  auto archive = Archive::Open(uri);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  const auto list_start = std::chrono::steady_clock::now();
  auto versions = (*archive)->ListVersions("m");
  const auto list_elapsed = std::chrono::steady_clock::now() - list_start;
  ASSERT_FALSE(versions.ok());
  std::cout << "ListVersions against a closed port failed after "
            << std::chrono::duration<double>(list_elapsed).count()
            << " s: " << versions.status().ToString() << std::endl;
  EXPECT_LT(list_elapsed, std::chrono::seconds(30));
  EXPECT_TRUE(Contains(versions.status(), "s3://bucket/prefix/m")) << versions.status().ToString();
}

}  // namespace
}  // namespace teatree
