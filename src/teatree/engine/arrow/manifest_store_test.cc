#include "teatree/engine/arrow/manifest_store.h"

#include <arrow/api.h>
#include <arrow/dataset/api.h>
#include <gtest/gtest.h>

#include <fstream>

#include "teatree/common/temp_dir.h"
#include "teatree/request/rows_to_arrow.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

class ManifestStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-manifest-test-").ValueOrDie();
    orders_ = TableSchema::FromJson("orders", nlohmann::json::parse(R"j([
        {"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(12,2)"},
        {"name":"region","type":"VARCHAR"},{"name":"tags","type":"VARCHAR[]"}])j"),
                                    nlohmann::json::array({"id"}))
                  .ValueOrDie();
    store_ = ManifestStore::Open(dir_->path()).ValueOrDie();
  }

  std::shared_ptr<arrow::Table> Rows(const std::string& json) {
    auto batch = RowsToRecordBatch(nlohmann::json::parse(json), orders_).ValueOrDie();
    return arrow::Table::FromRecordBatches({batch}).ValueOrDie();
  }

  /// Publishes version `version` whose orders are `files`.
  void Publish(int64_t version, std::vector<DataFile> files) {
    Manifest manifest{.version = version};
    manifest.tables["orders"] = TableManifest{.schema = orders_, .files = std::move(files)};
    ASSERT_TRUE(store_->Publish(std::move(manifest)).ok());
  }

  std::unique_ptr<TempDir> dir_;
  TableSchema orders_;
  std::unique_ptr<ManifestStore> store_;
};

TEST_F(ManifestStoreTest, PublishedVersionsComeBackAfterReopeningWithTheirRowsAndStats) {
  auto rows = Rows(R"([[1,"12.50","eu",["a"]],[2,null,"us",[]],[3,"0.01",null,null]])");
  auto file = store_->WriteDataFile(orders_, *rows).ValueOrDie();
  EXPECT_EQ(file.rows, 3);
  EXPECT_TRUE(file.path.starts_with("datasets/orders/")) << file.path;
  EXPECT_EQ(file.stats["id"].min, 1);
  EXPECT_EQ(file.stats["id"].max, 3);
  EXPECT_EQ(file.stats["amount"].min, "0.01");
  EXPECT_EQ(file.stats["amount"].nulls, 1);
  EXPECT_EQ(file.stats["region"].max, "us");
  EXPECT_TRUE(file.stats["tags"].min.is_null());
  Publish(1, {file});

  store_ = ManifestStore::Open(dir_->path()).ValueOrDie();
  const Manifest& newest = store_->newest();
  EXPECT_EQ(newest.version, 1);
  ASSERT_EQ(newest.tables.count("orders"), 1u);
  EXPECT_EQ(newest.tables.at("orders").rows(), 3);
  EXPECT_EQ(newest.tables.at("orders").schema, orders_);
  auto dataset = OpenTableDataset(dir_->path(), newest.tables.at("orders")).ValueOrDie();
  auto scanned = dataset->NewScan().ValueOrDie()->Finish().ValueOrDie()->ToTable().ValueOrDie();
  EXPECT_TRUE(scanned->Equals(*rows)) << scanned->ToString() << rows->ToString();
}

TEST_F(ManifestStoreTest, PublishingWritesOnlyTheManifestAndNeverGoesBack) {
  auto big = store_->WriteDataFile(orders_, *Rows(R"([[1,"1.00","eu",[]]])")).ValueOrDie();
  Publish(1, {big});
  const auto big_time = fs::last_write_time(dir_->path() / big.path);
  auto small = store_->WriteDataFile(orders_, *Rows(R"([[2,"2.00","us",[]]])")).ValueOrDie();
  Publish(2, {big, small});
  EXPECT_EQ(fs::last_write_time(dir_->path() / big.path), big_time);
  EXPECT_EQ(store_->Versions().ValueOrDie(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(store_->Load(1).ValueOrDie().tables.at("orders").files.size(), 1u);
  Manifest stale{.version = 2};
  EXPECT_NE(store_->Publish(stale).message().find("not after the newest, 2"), std::string::npos);
  EXPECT_TRUE(store_->Load(7).status().IsKeyError());
}

TEST_F(ManifestStoreTest, ACrashLeavesTheLastManifestWholeAndItsLeftoversAreRemoved) {
  auto file = store_->WriteDataFile(orders_, *Rows(R"([[1,"1.00","eu",[]]])")).ValueOrDie();
  Publish(1, {file});
  // What a crash in the middle of the next version leaves: a half-written data file and
  // manifest under temporary names.
  const fs::path half_file = dir_->path() / "datasets" / "orders" / ".123-0.parquet.tmp";
  const fs::path half_manifest = dir_->path() / "manifests" / ".v2.json.tmp-abc123";
  { std::ofstream(half_file) << "PAR1 half"; }
  { std::ofstream(half_manifest) << R"({"version": 2, "tab)"; }
  store_ = ManifestStore::Open(dir_->path()).ValueOrDie();
  EXPECT_EQ(store_->newest().version, 1);
  EXPECT_FALSE(fs::exists(half_file));
  EXPECT_FALSE(fs::exists(half_manifest));
  // A damaged published manifest is an error that names it.
  { std::ofstream(dir_->path() / "manifests" / "v9.json") << "{"; }
  auto damaged = ManifestStore::Open(dir_->path());
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("v9.json"), std::string::npos)
      << damaged.status().ToString();
}

TEST_F(ManifestStoreTest, GarbageCollectionKeepsWhatRetainedVersionsReference) {
  auto first = store_->WriteDataFile(orders_, *Rows(R"([[1,"1.00","eu",[]]])")).ValueOrDie();
  Publish(1, {first});
  auto second = store_->WriteDataFile(orders_, *Rows(R"([[1,"9.00","eu",[]]])")).ValueOrDie();
  Publish(2, {second});  // A rewrite: the first file is no longer in the newest version.
  auto third = store_->WriteDataFile(orders_, *Rows(R"([[2,"2.00","us",[]]])")).ValueOrDie();
  Publish(3, {second, third});
  // Within the retention window every version stays, with its files.
  EXPECT_EQ(store_->CollectGarbage(std::chrono::hours(1)).ValueOrDie(), 0);
  EXPECT_EQ(store_->Versions().ValueOrDie(), (std::vector<int64_t>{1, 2, 3}));
  // A pinned version (one with a version file) stays, with its files, past the window.
  EXPECT_EQ(store_->CollectGarbage(std::chrono::milliseconds(0), /*pinned=*/{1}).ValueOrDie(), 0);
  EXPECT_EQ(store_->Versions().ValueOrDie(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(store_->CollectGarbage(std::chrono::milliseconds(0)).ValueOrDie(), 1);
  EXPECT_FALSE(fs::exists(dir_->path() / first.path));
  EXPECT_TRUE(fs::exists(dir_->path() / second.path));
  EXPECT_TRUE(fs::exists(dir_->path() / third.path));
  EXPECT_EQ(store_->Versions().ValueOrDie(), (std::vector<int64_t>{3}));
}

TEST_F(ManifestStoreTest, HotCopiesHoldTheNewestFilesWithinTheBudgetAndReadAlike) {
  std::vector<DataFile> files;
  for (const char* rows :
       {R"([[1,"1.00","eu",["a"]]])", R"([[2,null,"us",[]],[3,"3.00",null,null]])",
        R"([[4,"4.00","eu",["b","c"]]])"}) {
    files.push_back(store_->WriteDataFile(orders_, *Rows(rows)).ValueOrDie());
  }
  Publish(1, files);
  const TableManifest& orders = store_->newest().tables.at("orders");
  auto scan = [&] {
    auto dataset = OpenTableDataset(dir_->path(), orders).ValueOrDie();
    return dataset->NewScan().ValueOrDie()->Finish().ValueOrDie()->ToTable().ValueOrDie();
  };
  auto copy_of = [&](const DataFile& file) {
    return (dir_->path() / file.path).replace_extension(".arrow");
  };
  const auto from_parquet = scan();
  const auto key_columns = store_->ReadDataFile(files[1], {"region", "id"}).ValueOrDie();

  HotCopies hot = store_->RefreshHotCopies(store_->newest(), int64_t{1} << 30).ValueOrDie();
  EXPECT_EQ(hot.files, 3);
  EXPECT_EQ(hot.written, 3);
  for (const auto& file : files) EXPECT_TRUE(fs::exists(copy_of(file))) << file.path;
  EXPECT_TRUE(scan()->Equals(*from_parquet)) << scan()->ToString();
  EXPECT_TRUE(store_->ReadDataFile(files[1], {"region", "id"}).ValueOrDie()->Equals(*key_columns));
  // Once written, a copy is kept as it is.
  EXPECT_EQ(store_->RefreshHotCopies(store_->newest(), int64_t{1} << 30).ValueOrDie().written, 0);

  // A budget for the two newest: the oldest copy goes.
  const int64_t two_newest =
      static_cast<int64_t>(fs::file_size(copy_of(files[2])) + fs::file_size(copy_of(files[1])));
  hot = store_->RefreshHotCopies(store_->newest(), two_newest).ValueOrDie();
  EXPECT_EQ(hot.files, 2);
  EXPECT_EQ(hot.bytes, two_newest);
  EXPECT_EQ(hot.removed, 1);
  EXPECT_FALSE(fs::exists(copy_of(files[0])));
  EXPECT_TRUE(fs::exists(copy_of(files[2])));
  auto mixed = scan();
  EXPECT_EQ(mixed->num_rows(), 4);
  EXPECT_TRUE(mixed->schema()->Equals(*from_parquet->schema()));

  // A dataset opened before its copies are removed keeps reading them.
  auto dataset = OpenTableDataset(dir_->path(), orders).ValueOrDie();
  EXPECT_EQ(store_->RefreshHotCopies(store_->newest(), 0).ValueOrDie().removed, 2);
  EXPECT_FALSE(fs::exists(copy_of(files[2])));
  auto still = dataset->NewScan().ValueOrDie()->Finish().ValueOrDie()->ToTable().ValueOrDie();
  EXPECT_EQ(still->num_rows(), 4);
  EXPECT_TRUE(scan()->Equals(*from_parquet));

  // A copy a crash interrupted is removed on opening.
  const fs::path half = copy_of(files[0]).string() + ".tmp";
  { std::ofstream(half) << "ARROW1 half"; }
  store_ = ManifestStore::Open(dir_->path()).ValueOrDie();
  EXPECT_FALSE(fs::exists(half));
}

}  // namespace
}  // namespace teatree
