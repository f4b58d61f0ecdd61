#include "teatree/common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

TEST(LoggingTest, JsonLinesNameTheModelAndRequestTheyAreAbout) {
  auto line = nlohmann::json::parse(JsonLogLine(
      spdlog::level::warn, "model sales: refused message request r-7: bad \"x\"", 1733529600123));
  EXPECT_EQ(line["time"], "2024-12-07T00:00:00.123Z");
  EXPECT_EQ(line["level"], "warning");
  EXPECT_EQ(line["model"], "sales");
  EXPECT_EQ(line["request_id"], "r-7");
  EXPECT_EQ(line["message"], "model sales: refused message request r-7: bad \"x\"");
  auto plain = nlohmann::json::parse(JsonLogLine(spdlog::level::info, "dispatcher: started", 0));
  EXPECT_FALSE(plain.contains("model"));
  EXPECT_FALSE(plain.contains("request_id"));
}

// A log file is rotated by size, keeping as many old files as asked, and the level filters.
TEST(LoggingTest, AFileIsRotatedBySizeAndTheLevelFilters) {
  auto dir = TempDir::Make("teatree-logging-test-").ValueOrDie();
  const auto file = dir->path() / "manager.log";
  ASSERT_TRUE(ConfigureLogging({.level = spdlog::level::info,
                                .format = LogFormat::kJson,
                                .file = file,
                                .max_bytes = 4096,
                                .keep = 2})
                  .ok());
  spdlog::debug("model m: not shown");
  for (int i = 0; i < 200; ++i) spdlog::info("model m: line {}", i);
  ASSERT_TRUE(ConfigureLogging({}).ok());  // Back to stderr; closes the file.
  EXPECT_TRUE(std::filesystem::exists(dir->path() / "manager.1.log"));
  EXPECT_TRUE(std::filesystem::exists(dir->path() / "manager.2.log"));
  EXPECT_FALSE(std::filesystem::exists(dir->path() / "manager.3.log"));
  std::ifstream in(file);
  std::string text;
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json["model"], "m");
    text += line;
  }
  EXPECT_GT(lines, 0);
  EXPECT_LE(std::filesystem::file_size(file), 4096u);
  EXPECT_NE(text.find("line 199"), std::string::npos);
  EXPECT_EQ(text.find("not shown"), std::string::npos);
  std::ofstream(dir->path() / "a-file") << "x";
  auto refused = ConfigureLogging({.file = dir->path() / "a-file" / "x.log"});
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("cannot write the log file"), std::string::npos);
}

}  // namespace
}  // namespace teatree
