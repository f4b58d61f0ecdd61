#include "teatree/read/read_ticket.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(ReadTicketTest, ParsesSqlAndFunctionTickets) {
  auto sql = ReadTicket::Parse(R"({"model":"sales","sql":"SELECT 1","at_version":12})");
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  EXPECT_EQ(sql->model, "sales");
  EXPECT_EQ(sql->sql, "SELECT 1");
  EXPECT_EQ(sql->at_version, 12);
  auto function = ReadTicket::Parse(R"({"model":"sales","function":"top_n","args":{"n":3}})");
  ASSERT_TRUE(function.ok());
  EXPECT_EQ(function->args["n"], 3);
  EXPECT_EQ(ReadTicket::Parse(function->ToJson())->ToJson(), function->ToJson());
}

TEST(ReadTicketTest, AMinVersionWaitsTenSecondsUnlessTheTicketSays) {
  auto ticket = ReadTicket::Parse(R"({"model":"sales","sql":"SELECT 1","min_version":7})");
  ASSERT_TRUE(ticket.ok()) << ticket.status().ToString();
  ASSERT_TRUE(ticket->min_version.has_value());
  EXPECT_EQ(ticket->min_version->min_version, 7);
  EXPECT_EQ(ticket->min_version->wait, std::chrono::seconds(10));
  ticket = ReadTicket::Parse(R"({"model":"sales","sql":"SELECT 1","min_version":7,"wait_ms":0})");
  ASSERT_TRUE(ticket.ok()) << ticket.status().ToString();
  EXPECT_EQ(ticket->min_version->wait, std::chrono::milliseconds(0));
  // What a server forwards to a model's manager keeps both.
  auto again = ReadTicket::Parse(ticket->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->min_version->min_version, 7);
  EXPECT_EQ(again->min_version->wait, std::chrono::milliseconds(0));
  EXPECT_FALSE(ReadTicket::Parse(R"({"model":"sales","sql":"SELECT 1"})")->min_version);
}

TEST(ReadTicketTest, RefusesMalformedTicketsSayingWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {R"({"sql":"SELECT 1"})", "\"model\" is missing"},
      {R"({"model":"Sales/x","sql":"SELECT 1"})", "model name"},
      {R"({"model":"sales"})", "either \"sql\" or \"function\""},
      {R"({"model":"sales","sql":"SELECT 1","function":"f"})", "either"},
      {R"({"model":"sales","sql":"SELECT 1","at_version":0})", "at_version"},
      {R"({"model":"sales","sql":"SELECT 1","at_version":"7"})", "at_version"},
      {R"({"model":"sales","sql":1})", "\"sql\" must be a string"},
      {R"({"model":"sales","sql":"SELECT 1","limit":5})", "unknown field \"limit\""},
      {R"({"model":"sales","sql":"SELECT 1","min_version":0})", "\"min_version\" must be"},
      {R"({"model":"sales","sql":"SELECT 1","min_version":"3"})", "\"min_version\" must be"},
      {R"({"model":"sales","sql":"SELECT 1","wait_ms":100})", "\"wait_ms\" needs"},
      {R"({"model":"sales","sql":"SELECT 1","min_version":3,"wait_ms":30001})",
       "between 0 and 30000"},
      {R"({"model":"sales","sql":"SELECT 1","min_version":3,"wait_ms":-1})", "wait_ms"},
  };
  for (const auto& [json, expected] : cases) {
    auto ticket = ReadTicket::Parse(json);
    ASSERT_FALSE(ticket.ok()) << json;
    EXPECT_NE(ticket.status().message().find(expected), std::string::npos)
        << json << ": " << ticket.status().ToString();
  }
}

}  // namespace
}  // namespace teatree
