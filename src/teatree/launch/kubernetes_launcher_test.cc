#include "teatree/launch/kubernetes_launcher.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

using Args = std::vector<std::string>;

TEST(KubernetesLauncherTest, PodsGetNoneOfServesOwnFilesAndAddresses) {
  auto [kept, dropped] = KubernetesLauncher::PodArgs(
      {"--batch-size", "512", "--listen", "127.0.0.1", "--control", "sqlite:///d/control.sqlite",
       "--mirror-versions", "--token-file", "/etc/tokens", "--archive", "s3://b/p"});
  EXPECT_EQ(kept, (Args{"--batch-size", "512", "--mirror-versions", "--archive", "s3://b/p"}));
  EXPECT_EQ(dropped, (Args{"--listen", "--control", "--token-file"}));
  // One PostgreSQL catalog for every pod is passed on.
  auto [pg, none] = KubernetesLauncher::PodArgs({"--control", "postgresql://pg:5432/teatree"});
  EXPECT_EQ(pg, (Args{"--control", "postgresql://pg:5432/teatree"}));
  EXPECT_TRUE(none.empty());
}

TEST(KubernetesLauncherTest, AVolumeGrowsByHalfOnceItIsFourFifthsFull) {
  constexpr int64_t kGi = int64_t{1} << 30;
  EXPECT_EQ(GrownVolumeSize(20 * kGi, 15 * kGi, 20 * kGi), 0);  // 75%: room enough.
  EXPECT_EQ(GrownVolumeSize(20 * kGi, 16 * kGi, 20 * kGi), 30 * kGi);
  // The filesystem may be larger than asked for (storage rounds up): grown from what it is.
  EXPECT_EQ(GrownVolumeSize(20 * kGi, 19 * kGi, 21 * kGi), 32 * kGi);
  EXPECT_EQ(GrownVolumeSize(20 * kGi, 0, 0), 0);  // Nothing known.
}

TEST(KubernetesLauncherTest, NamesAreValidForKubernetes) {
  EXPECT_EQ(ManagerPodName("sales_eu"), "teatree-manager-sales-eu");
  EXPECT_EQ(ModelVolumeName("sales"), "teatree-model-sales");
}

}  // namespace
}  // namespace teatree
