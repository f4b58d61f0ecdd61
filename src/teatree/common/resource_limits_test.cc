#include "teatree/common/resource_limits.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

class ResourceLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("TEATREE_POD_CPU_LIMIT");
    ::unsetenv("TEATREE_POD_MEMORY_LIMIT");
    root_ = TempDir::Make("teatree-cgroup-").ValueOrDie();
  }
  void TearDown() override {
    ::unsetenv("TEATREE_POD_CPU_LIMIT");
    ::unsetenv("TEATREE_POD_MEMORY_LIMIT");
  }
  std::unique_ptr<TempDir> root_;
};

TEST_F(ResourceLimitsTest, ACgroupV2LimitIsRead) {
  Write(root_->path() / "cpu.max", "200000 100000\n");
  Write(root_->path() / "memory.max", "2147483648\n");
  auto limits = DetectResourceLimits(root_->path());
  EXPECT_DOUBLE_EQ(limits.cpus, 2.0);
  EXPECT_EQ(limits.memory_bytes, int64_t{2} << 30);
  EXPECT_EQ(limits.source, "cgroup");
}

TEST_F(ResourceLimitsTest, NoLimitIsNoLimit) {
  Write(root_->path() / "cpu.max", "max 100000\n");
  Write(root_->path() / "memory.max", "max\n");
  Write(root_->path() / "memory" / "memory.limit_in_bytes", "9223372036854771712\n");
  auto limits = DetectResourceLimits(root_->path());
  EXPECT_EQ(limits.cpus, 0);
  EXPECT_EQ(limits.memory_bytes, 0);
  auto plan = PlanManagerMemory(limits);
  EXPECT_EQ(plan.threads, 0);
  EXPECT_TRUE(plan.writer_memory.empty());
}

TEST_F(ResourceLimitsTest, CgroupV1AndThePodsLimitsTheTighterWins) {
  Write(root_->path() / "cpu" / "cpu.cfs_quota_us", "400000\n");
  Write(root_->path() / "cpu" / "cpu.cfs_period_us", "100000\n");
  Write(root_->path() / "memory" / "memory.limit_in_bytes", "4294967296\n");
  auto v1 = DetectResourceLimits(root_->path());
  EXPECT_DOUBLE_EQ(v1.cpus, 4.0);
  EXPECT_EQ(v1.memory_bytes, int64_t{4} << 30);
  ::setenv("TEATREE_POD_CPU_LIMIT", "1500", 1);
  ::setenv("TEATREE_POD_MEMORY_LIMIT", "8589934592", 1);  // Looser than the cgroup's.
  auto both = DetectResourceLimits(root_->path());
  EXPECT_DOUBLE_EQ(both.cpus, 1.5);
  EXPECT_EQ(both.memory_bytes, int64_t{4} << 30);
}

TEST_F(ResourceLimitsTest, DuckDBIsSizedInsideThePod) {
  auto plan = PlanManagerMemory({.cpus = 1.5, .memory_bytes = int64_t{2} << 30});
  EXPECT_EQ(plan.threads, 2);
  EXPECT_EQ(plan.writer_memory, "1024MiB");
  EXPECT_EQ(plan.reads_memory, "409MiB");
  EXPECT_EQ(PlanManagerMemory({.cpus = 0.25, .memory_bytes = int64_t{64} << 20}).threads, 1);
}

}  // namespace
}  // namespace teatree
