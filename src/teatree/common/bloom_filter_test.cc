#include "teatree/common/bloom_filter.h"

#include <gtest/gtest.h>

#include <string>

namespace teatree {

TEST(BloomFilterTest, NeverForgetsAnItem) {
  BloomFilter filter(10'000);
  for (int i = 0; i < 10'000; ++i) filter.Add("request-" + std::to_string(i));
  for (int i = 0; i < 10'000; ++i) EXPECT_TRUE(filter.MayContain("request-" + std::to_string(i)));
  EXPECT_EQ(filter.size(), 10'000);
}

TEST(BloomFilterTest, FewFalsePositivesAtCapacity) {
  BloomFilter filter(10'000);
  for (int i = 0; i < 10'000; ++i) filter.Add("request-" + std::to_string(i));
  int false_positives = 0;
  for (int i = 0; i < 100'000; ++i) {
    false_positives += filter.MayContain("other-" + std::to_string(i)) ? 1 : 0;
  }
  EXPECT_LT(false_positives, 2'000);  // Under 2%; about 1% expected.
}

TEST(BloomFilterTest, EmptyFilterContainsNothing) {
  BloomFilter filter(0);
  EXPECT_EQ(filter.capacity(), 1024);
  EXPECT_FALSE(filter.MayContain(""));
  EXPECT_FALSE(filter.MayContain("r1"));
}

}  // namespace teatree
