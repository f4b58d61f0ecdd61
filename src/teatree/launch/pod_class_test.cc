#include "teatree/launch/pod_class.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(PodClassTest, QuantitiesReadAsKubernetesWritesThem) {
  EXPECT_EQ(ParseQuantity("2", true).ValueOrDie(), 2000);
  EXPECT_EQ(ParseQuantity("500m", true).ValueOrDie(), 500);
  EXPECT_EQ(ParseQuantity("1.5", true).ValueOrDie(), 1500);
  EXPECT_EQ(ParseQuantity("4Gi", false).ValueOrDie(), int64_t{4} << 30);
  EXPECT_EQ(ParseQuantity("512Mi", false).ValueOrDie(), int64_t{512} << 20);
  EXPECT_EQ(ParseQuantity("2G", false).ValueOrDie(), 2000000000);
  EXPECT_EQ(ParseQuantity("2147483648", false).ValueOrDie(), int64_t{2} << 30);
  for (const char* bad : {"", "Gi", "-1", "4GB", "0", "1..2"}) {
    auto parsed = ParseQuantity(bad, false);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("4Gi"), std::string::npos);
  }
  EXPECT_EQ(CpuQuantity(4000), "4");
  EXPECT_EQ(CpuQuantity(250), "250m");
  EXPECT_EQ(ByteQuantity(int64_t{16} << 30), "16Gi");
  EXPECT_EQ(ByteQuantity(int64_t{1536} << 20), "1536Mi");
  EXPECT_EQ(ByteQuantity(1000), "1000");
}

TEST(PodClassTest, TheDesignClassesAreTheDefaults) {
  PodClasses classes;
  EXPECT_EQ(classes.Names(), (std::vector<std::string>{"large", "medium", "small", "xlarge"}));
  auto small = classes.Find("small").ValueOrDie();
  EXPECT_EQ(small.cpu_millis, 2000);
  EXPECT_EQ(small.memory_bytes, int64_t{2} << 30);
  EXPECT_EQ(classes.Find("medium")->memory_bytes, int64_t{4} << 30);
  EXPECT_EQ(classes.Find("large")->cpu_millis, 8000);
  EXPECT_EQ(classes.Find("xlarge")->memory_bytes, int64_t{64} << 30);
}

TEST(PodClassTest, TheTableIsConfigurable) {
  PodClasses classes;
  const int64_t storage = classes.Find("medium")->storage_bytes;
  ASSERT_TRUE(classes.Set("medium=3,6Gi").ok());
  EXPECT_EQ(classes.Find("medium")->cpu_millis, 3000);
  EXPECT_EQ(classes.Find("medium")->storage_bytes, storage);  // Kept: not given.
  ASSERT_TRUE(classes.Set("tiny=500m,512Mi,1Gi").ok());
  EXPECT_EQ(classes.Find("tiny")->storage_bytes, int64_t{1} << 30);
  for (const char* bad : {"tiny", "=1,1Gi", "tiny=1", "Tiny=1,1Gi", "tiny=1,1Gi,1Gi,1"}) {
    EXPECT_FALSE(classes.Set(bad).ok()) << bad;
  }
  auto missing = classes.Find("huge");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("large, medium, small, tiny, xlarge"),
            std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace teatree
