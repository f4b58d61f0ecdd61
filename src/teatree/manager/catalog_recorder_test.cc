#include "teatree/manager/catalog_recorder.h"

#include <gtest/gtest.h>

#include "teatree/common/temp_dir.h"
#include "teatree/control/sqlite_db.h"

namespace teatree {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class CatalogRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-recorder-").ValueOrDie();
    path_ = (dir_->path() / "control.sqlite").string();
    control_ = ControlStore::Open("sqlite://" + path_).ValueOrDie();
  }

  static RequestLogRecord Logged(const std::string& id, int64_t version) {
    return {.request_id = id,
            .model = "sales",
            .op = "append",
            .status = "applied",
            .version = version};
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::unique_ptr<ControlStore> control_;
};

TEST_F(CatalogRecorderTest, WritesStateOutcomesAndContentInOrder) {
  CatalogRecorder recorder(*control_, {.id = "sales"});
  for (int64_t v = 1; v <= 20; ++v) {
    recorder.SetState("applying", v - 1);
    recorder.LogRequests({Logged("r" + std::to_string(v), v)});
    recorder.SetState("idle", v);
  }
  recorder.Published(20, {{.model = "sales", .version = 20, .table_name = "orders", .rows = 7}});
  ASSERT_TRUE(recorder.Flush(seconds(10)).ok());
  EXPECT_EQ(recorder.pending(), 0);
  auto model = control_->GetModel("sales").ValueOrDie();
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(model->status, "idle");
  EXPECT_EQ(model->current_version, 20);
  EXPECT_EQ(model->published_version, 20);
  EXPECT_EQ(control_->ListRequests("sales", 100).ValueOrDie().size(), 20u);
  auto content = control_->ListContent("sales").ValueOrDie();
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0].rows, 7);
}

TEST_F(CatalogRecorderTest, KeepsUpdatesWhileTheCatalogFailsAndWritesThemLater) {
  CatalogRecorder recorder(*control_, {.id = "sales"});
  recorder.SetState("idle", 0);
  ASSERT_TRUE(recorder.Flush(seconds(10)).ok());

  // Another process takes the request table away: logging fails until it is back.
  auto other = SqliteDb::Open(path_).ValueOrDie();
  ASSERT_TRUE(other->Execute("ALTER TABLE request_log RENAME TO request_log_away").ok());
  recorder.LogRequests({Logged("r1", 1)});
  recorder.SetState("idle", 1);
  Status failed = recorder.Flush(milliseconds(300));
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("request_log"), std::string::npos) << failed.message();
  EXPECT_GT(recorder.pending(), 0);

  ASSERT_TRUE(other->Execute("ALTER TABLE request_log_away RENAME TO request_log").ok());
  ASSERT_TRUE(recorder.Flush(seconds(20)).ok());
  EXPECT_EQ(recorder.pending(), 0);
  auto log = control_->ListRequests("sales", 10).ValueOrDie();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].request_id, "r1");
  EXPECT_EQ(control_->GetModel("sales").ValueOrDie()->current_version, 1);
}

}  // namespace
}  // namespace teatree
