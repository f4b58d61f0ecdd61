#include "teatree/common/failure.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(FailureTest, AMarkedStatusKeepsItsCodeAndMessage) {
  Status status =
      MarkFailure(Status::IOError("nats://127.0.0.1:1: no servers"), FailureKind::kUnavailable);
  EXPECT_TRUE(status.IsIOError());
  EXPECT_EQ(status.message(), "nats://127.0.0.1:1: no servers");
  EXPECT_EQ(FailureKindOf(status), FailureKind::kUnavailable);
}

TEST(FailureTest, TheMarkSurvivesAnotherMessage) {
  Status status = UsageError("--output json prints JSON");
  Status reworded = status.WithMessage("query: ", status.message());
  EXPECT_TRUE(reworded.IsInvalid());
  EXPECT_EQ(FailureKindOf(reworded), FailureKind::kUsage);
}

TEST(FailureTest, UnmarkedAndOkStatusesHaveNoKind) {
  EXPECT_EQ(FailureKindOf(Status::Invalid("bad")), std::nullopt);
  EXPECT_TRUE(MarkFailure(Status::OK(), FailureKind::kUsage).ok());
  EXPECT_EQ(FailureKindOf(Unavailable("down")), FailureKind::kUnavailable);
  EXPECT_TRUE(Unavailable("down").IsIOError());
}

}  // namespace
}  // namespace teatree
