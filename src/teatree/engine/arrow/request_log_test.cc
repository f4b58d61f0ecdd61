#include "teatree/engine/arrow/request_log.h"

#include <gtest/gtest.h>

#include <fstream>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

KnownRequest Applied(const std::string& id, int64_t version) {
  RequestOutcome outcome{
      .request_id = id, .op = Op::kAppend, .status = "applied", .version = version, .rows = 2};
  return {"hash-" + id, outcome};
}

TEST(RequestLogTest, RemembersAnsweredRequestsAcrossReopening) {
  auto dir = TempDir::Make("teatree-request-log-test-").ValueOrDie();
  const auto path = dir->path() / "requests.jsonl";
  {
    auto log = RequestLog::Open(path, 0).ValueOrDie();
    EXPECT_EQ(log->Find("a"), nullptr);
    ASSERT_TRUE(log->Append({Applied("a", 1), Applied("b", 1)}).ok());
    ASSERT_TRUE(log->Append({Applied("c", 2)}).ok());
    EXPECT_EQ(log->Find("b")->payload_hash, "hash-b");
  }
  auto log = RequestLog::Open(path, 2).ValueOrDie();
  EXPECT_EQ(log->size(), 3u);
  const KnownRequest* c = log->Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome.version, 2);
  EXPECT_EQ(c->outcome.rows, 2);
  EXPECT_EQ(c->outcome.status, "applied");
}

TEST(RequestLogTest, ForgetsBatchesWhoseManifestNeverLandedAndTornLines) {
  auto dir = TempDir::Make("teatree-request-log-test-").ValueOrDie();
  const auto path = dir->path() / "requests.jsonl";
  {
    auto log = RequestLog::Open(path, 0).ValueOrDie();
    ASSERT_TRUE(log->Append({Applied("a", 1)}).ok());
    ASSERT_TRUE(log->Append({Applied("b", 2)}).ok());  // Version 2's manifest: never published.
  }
  { std::ofstream(path, std::ios::app) << R"({"hash":"h","outcome":{"request_id":"c")"; }
  {
    auto log = RequestLog::Open(path, 1).ValueOrDie();
    EXPECT_NE(log->Find("a"), nullptr);
    EXPECT_EQ(log->Find("b"), nullptr);  // Applied again when redelivered.
    EXPECT_EQ(log->Find("c"), nullptr);
    ASSERT_TRUE(log->Append({Applied("b", 2)}).ok());
  }
  auto log = RequestLog::Open(path, 2).ValueOrDie();
  EXPECT_EQ(log->size(), 2u);
  EXPECT_EQ(log->Find("b")->outcome.version, 2);
}

}  // namespace
}  // namespace teatree
