#include "teatree/cli/exit_code.h"

#include <arrow/flight/types.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <regex>
#include <sstream>

#include "teatree/common/failure.h"

namespace teatree::cli {
namespace {

namespace flight = arrow::flight;

TEST(ExitCodeTest, EachKindOfFailureHasItsCode) {
  EXPECT_EQ(ExitCodeOf(Status::OK()), ExitCode::kOk);
  EXPECT_EQ(ExitCodeOf(UsageError("submit takes --file or an op")), ExitCode::kUsage);
  EXPECT_EQ(ExitCodeOf(Unavailable("no outcome within 60000 ms")), ExitCode::kUnavailable);
  EXPECT_EQ(ExitCodeOf(Status::KeyError("model shop does not exist")), ExitCode::kNotFound);
  // Unmarked errors are plain errors, whatever their code: a refused query is Invalid too.
  EXPECT_EQ(ExitCodeOf(Status::Invalid("only SELECT is allowed")), ExitCode::kError);
  EXPECT_EQ(ExitCodeOf(Status::IOError("disk full")), ExitCode::kError);
}

TEST(ExitCodeTest, AReadServerThatIsDownOrTimedOutIsUnavailable) {
  EXPECT_EQ(ExitCodeOf(flight::MakeFlightError(flight::FlightStatusCode::Unavailable,
                                               "failed to connect to all addresses")),
            ExitCode::kUnavailable);
  EXPECT_EQ(ExitCodeOf(flight::MakeFlightError(flight::FlightStatusCode::TimedOut,
                                               "version 9 not published within 10000 ms")),
            ExitCode::kUnavailable);
  EXPECT_EQ(ExitCodeOf(flight::MakeFlightError(flight::FlightStatusCode::Unauthenticated, "no")),
            ExitCode::kError);
}

/// The exit code `teatree` would give for `args` parsed by an app with one required flag.
ExitCode ParseExit(std::vector<std::string> args) {
  CLI::App app{"test", "teatree"};
  app.set_version_flag("--version", "teatree 0");
  std::string model;
  app.add_option("--model", model)->required();
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order.
  std::ostringstream out, err;
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return ExitCodeOfParse(app.exit(e, out, err));
  }
  return ExitCode::kOk;
}

TEST(ExitCodeTest, ParseErrorsAreUsageButHelpAndVersionAreNot) {
  EXPECT_EQ(ParseExit({"--model", "shop"}), ExitCode::kOk);
  EXPECT_EQ(ParseExit({}), ExitCode::kUsage);                             // RequiredError
  EXPECT_EQ(ParseExit({"--model", "shop", "--nope"}), ExitCode::kUsage);  // ExtrasError
  EXPECT_EQ(ParseExit({"--help"}), ExitCode::kOk);
  EXPECT_EQ(ParseExit({"--version"}), ExitCode::kOk);
}

TEST(ExitCodeTest, DocsListEveryCodeWithItsName) {
  std::ifstream in(TEATREE_DOCS_CLI);
  ASSERT_TRUE(in) << TEATREE_DOCS_CLI;
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& [code, name] : kExitCodes) {
    // A table row: | 3 | rejected | ...
    const std::regex row("\\|\\s*" + std::to_string(ToInt(code)) + "\\s*\\|\\s*" +
                         std::string(name) + "\\s*\\|");
    EXPECT_TRUE(std::regex_search(text.str(), row))
        << "docs/cli.md has no row for exit code " << ToInt(code) << " (" << name << ")";
  }
}

}  // namespace
}  // namespace teatree::cli
