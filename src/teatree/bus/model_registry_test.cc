#include "teatree/bus/model_registry.h"

#include <thread>

#include "teatree/bus/test_util_internal.h"

namespace teatree {
namespace {

class ModelRegistryTest : public BusTest {};

TEST_F(ModelRegistryTest, ModelsExistOnceCreatedAndSurviveAReopen) {
  auto registry = ModelRegistry::Open(connection()).ValueOrDie();
  EXPECT_FALSE(registry->Exists("sales").ValueOrDie());
  EXPECT_TRUE(registry->Create("sales", "").ValueOrDie());
  EXPECT_FALSE(registry->Create("sales", "arrow").ValueOrDie());  // Exists already.
  EXPECT_TRUE(registry->Create("sensors", "arrow").ValueOrDie());
  ExpectError(registry->Create("Sales/x", "").status(), "model name");
  ExpectError(registry->Create("x", "polars").status(), "use duckdb or arrow");
  auto other = Connect();  // Another process, as it were.
  auto again = ModelRegistry::Open(*other).ValueOrDie();
  EXPECT_TRUE(again->Exists("sales").ValueOrDie());
  EXPECT_EQ(again->List().ValueOrDie(), (std::vector<std::string>{"sales", "sensors"}));
}

TEST_F(ModelRegistryTest, AdmitRefusesUnknownModelsUnlessTheRequestCreatesThem) {
  auto registry = ModelRegistry::Open(connection()).ValueOrDie();
  Status refused = registry->Admit("ghost", /*creates=*/false, "");
  EXPECT_TRUE(refused.IsKeyError());
  ExpectError(refused, "teatree model create --model ghost");
  EXPECT_FALSE(registry->Exists("ghost").ValueOrDie());
  EXPECT_TRUE(registry->Admit("ghost", /*creates=*/true, "").ok());
  EXPECT_TRUE(registry->Admit("ghost", /*creates=*/false, "").ok());
}

TEST_F(ModelRegistryTest, MaxModelsHoldsAgainstConcurrentCreators) {
  auto registry = ModelRegistry::Open(connection()).ValueOrDie();
  ASSERT_TRUE(registry->Create("first", "").ok());
  ASSERT_TRUE(registry->SetMaxModels(5).ok());
  // Eight creators at once, each with its own connection, for twenty new models.
  std::vector<std::thread> creators;
  std::atomic<int> created{0}, refused{0};
  for (int t = 0; t < 8; ++t) {
    creators.emplace_back([&, t] {
      auto connection = Connect();
      auto mine = ModelRegistry::Open(*connection).ValueOrDie();
      for (int i = 0; i < 20; i += 8) {
        auto made = mine->Create("m" + std::to_string(t + i), "");
        if (made.ok() && *made) ++created;
        if (!made.ok()) {
          EXPECT_NE(made.status().message().find("at most 5 models (--max-models)"),
                    std::string::npos)
              << made.status().ToString();
          ++refused;
        }
      }
    });
  }
  for (auto& creator : creators) creator.join();
  EXPECT_EQ(created.load(), 4);
  EXPECT_EQ(registry->List().ValueOrDie().size(), 5u);
  // Raising the bound (or lifting it) makes room again; existing models stay either way.
  ASSERT_TRUE(registry->SetMaxModels(0).ok());
  EXPECT_TRUE(registry->Create("later", "").ValueOrDie());
  ASSERT_TRUE(registry->SetMaxModels(2).ok());
  EXPECT_TRUE(registry->Exists("first").ValueOrDie());
  ExpectError(registry->Create("more", "").status(), "cannot be created");
  EXPECT_EQ(registry->List().ValueOrDie().size(), 6u);
}

}  // namespace
}  // namespace teatree
