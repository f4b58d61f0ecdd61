#include "teatree/common/subprocess.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

using std::chrono::seconds;

TEST(SubprocessTest, ReportsExitCode) {
  auto process = Subprocess::Spawn({.argv = {"sh", "-c", "exit 3"}});
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  auto code = (*process)->Wait(seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 3);
  EXPECT_FALSE((*process)->Running());
}

TEST(SubprocessTest, MissingProgramIsAnErrorAtSpawn) {
  auto process = Subprocess::Spawn({.argv = {"/nonexistent/program"}});
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.status().message().find("cannot run /nonexistent/program"), std::string::npos);
}

TEST(SubprocessTest, StopTerminatesALongRunningChild) {
  auto process = Subprocess::Spawn({.argv = {"sleep", "60"}});
  ASSERT_TRUE(process.ok());
  EXPECT_TRUE((*process)->Running());
  auto code = (*process)->Stop(seconds(5));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGTERM);
}

TEST(SubprocessTest, KillNineIsReportedAsSignal) {
  auto process = Subprocess::Spawn({.argv = {"sleep", "60"}});
  ASSERT_TRUE(process.ok());
  ASSERT_TRUE((*process)->Signal(SIGKILL).ok());
  auto code = (*process)->Wait(seconds(5));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(SubprocessTest, OutputGoesToTheLogFile) {
  auto dir = TempDir::Make("teatree-subprocess-test-");
  ASSERT_TRUE(dir.ok());
  auto log = (*dir)->path() / "out.log";
  auto process = Subprocess::Spawn(
      {.argv = {"sh", "-c", "echo to-stdout; echo to-stderr >&2"}, .log_path = log});
  ASSERT_TRUE(process.ok());
  ASSERT_TRUE((*process)->Wait(seconds(10)).ok());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "to-stdout\nto-stderr\n");
}

}  // namespace
}  // namespace teatree
