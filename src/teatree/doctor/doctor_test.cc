#include "teatree/doctor/doctor.h"

#include <gtest/gtest.h>

#include <sstream>

#include "teatree/doctor/checks_internal.h"

namespace teatree {
namespace {

void ExpectOk(const Result<CheckOutcome>& outcome) {
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_FALSE(outcome->version.empty());
  EXPECT_FALSE(outcome->detail.empty());
}

TEST(DoctorTest, DuckDB) { ExpectOk(CheckDuckDB({})); }
TEST(DoctorTest, Arrow) { ExpectOk(CheckArrow({})); }
TEST(DoctorTest, Flight) { ExpectOk(CheckFlight({})); }
TEST(DoctorTest, DuckDBArrowBridge) { ExpectOk(CheckDuckDBArrow({})); }
TEST(DoctorTest, Nats) { ExpectOk(CheckNats({})); }
TEST(DoctorTest, Sqlite) { ExpectOk(CheckSqlite({})); }
TEST(DoctorTest, PostgresClientWithoutServer) { ExpectOk(CheckPostgres({})); }

TEST(DoctorTest, MissingNatsServerSaysHowToGetIt) {
  auto outcome = CheckNats({.nats_server = "/nonexistent/nats-server"});
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().message().find("scripts/bootstrap"), std::string::npos)
      << outcome.status().message();
}

TEST(DoctorTest, UnreachablePostgresUrlFails) {
  auto outcome = CheckPostgres({.postgres_url = "postgresql://nobody@127.0.0.1:1/none"});
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().message().find("cannot connect to PostgreSQL"), std::string::npos);
}

TEST(DoctorTest, RunDoctorPrintsOneLinePerPartAndNamesFailures) {
  std::ostringstream out;
  Status status = RunDoctor({.nats_server = "/nonexistent/nats-server"}, out);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("nats"), std::string::npos);
  std::string text = out.str();
  for (const auto& check : DoctorChecks()) {
    EXPECT_NE(text.find(check.part), std::string::npos) << check.part;
  }
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(DoctorChecks().size()));
}

TEST(DoctorTest, QuickDemoPrintsPerRegionTotals) {
  std::ostringstream out;
  ASSERT_TRUE(RunQuickDemo(out).ok());
  const std::string text = out.str();
  for (const char* region : {"apac", "eu", "latam", "us"}) {
    EXPECT_NE(text.find(region), std::string::npos) << text;
  }
  EXPECT_NE(text.find("(4 rows)"), std::string::npos) << text;
}

}  // namespace
}  // namespace teatree
