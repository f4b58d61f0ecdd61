// kill -9 of `teatree apply` at random moments during a 10,000-request stream, 20 times:
// every request it reported as committed is present exactly once, nothing is lost, the model
// opens, and version files read from another process are never partial.
#include <arrow/api.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "teatree/common/subprocess.h"
#include "teatree/common/temp_dir.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/manager/model_manager.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr int kRequests = 10'000;
constexpr int kKills = 20;

void WriteRequests(const fs::path& path) {
  std::ofstream out(path);
  out << R"({"request_id":"create","model":"crash","op":"create_table","table":"events",)"
         R"("schema":[{"name":"id","type":"BIGINT"},{"name":"v","type":"DOUBLE"}],)"
         R"("primary_key":["id"]})"
      << "\n";
  for (int i = 0; i < kRequests; ++i) {
    out << R"({"request_id":"r)" << i << R"(","model":"crash","op":"append","table":"events",)"
        << R"("rows":[[)" << i << "," << i * 0.5 << "]]}\n";
  }
}

/// Request ids the run reported as applied (lines are printed only after their commit).
std::set<std::string> CommittedIds(const fs::path& log) {
  std::set<std::string> ids;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object()) continue;  // A line cut by the kill.
    if (json.value("status", "") == "applied") ids.insert(json.value("request_id", ""));
  }
  return ids;
}

/// Opens every version file it finds, read-only, in a loop, counting failures.
class VersionReader {
 public:
  explicit VersionReader(fs::path data_dir) : data_dir_(std::move(data_dir)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~VersionReader() {
    stop_ = true;
    thread_.join();
  }
  int reads() const { return reads_; }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  void Run() {
    while (!stop_) {
      auto versions = ListVersionFiles(data_dir_, "crash");
      if (!versions.ok() || versions->empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      const fs::path file = VersionFilePath(data_dir_, "crash", versions->back());
      auto db = DuckDatabase::Open({.path = file.string(), .read_only = true});
      Status status = db.status();
      if (status.ok()) {
        auto connection = (*db)->Connect();
        status = connection.ok() ? (*connection)->QueryTable("SELECT count(*) FROM events").status()
                                 : connection.status();
      }
      if (!status.ok() && fs::exists(file)) failures_.push_back(status.message());
      ++reads_;
    }
  }

  fs::path data_dir_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reads_{0};
  std::vector<std::string> failures_;
  std::thread thread_;
};

/// Opens the model after a crash (DuckDB replays its WAL) and checks that every request a
/// killed run reported as committed is there, and that each appended row is there once.
void ExpectCommittedPresent(const fs::path& data, const std::set<std::string>& committed) {
  const fs::path rw = ModelDir(data, "crash") / "rw" / "crash.duckdb";
  if (!fs::exists(rw)) return;
  auto db = DuckDatabase::Open({.path = rw.string()});
  ASSERT_TRUE(db.ok()) << "model does not open after kill -9: " << db.status().ToString();
  auto connection = (*db)->Connect().ValueOrDie();
  auto ids = connection
                 ->QueryTable(
                     "SELECT request_id FROM _teatree_requests WHERE status = "
                     "'applied'")
                 .ValueOrDie();
  std::set<std::string> present;
  for (const auto& chunk : ids->column(0)->chunks()) {
    auto column = std::static_pointer_cast<arrow::StringArray>(chunk);
    for (int64_t i = 0; i < column->length(); ++i) present.insert(column->GetString(i));
  }
  for (const auto& id : committed) ASSERT_TRUE(present.count(id)) << id << " was lost";
  if (present.count("create") == 0) return;
  auto counts =
      connection->QueryTable("SELECT count(*) - count(DISTINCT id) FROM events").ValueOrDie();
  EXPECT_EQ(counts->column(0)->GetScalar(0).ValueOrDie()->ToString(), "0") << "a row was doubled";
}

TEST(ApplyCrashTest, KillNineNeverLosesOrDoublesACommittedRequest) {
  auto dir = TempDir::Make("teatree-crash-test-").ValueOrDie();
  const fs::path data = dir->path() / "data";
  const fs::path requests = dir->path() / "requests.jsonl";
  WriteRequests(requests);
  const std::vector<std::string> apply = {TEATREE_BIN,    "apply",  "--data-dir",
                                          data.string(),  "--file", requests.string(),
                                          "--batch-size", "64"};
  std::mt19937 random(20261123);
  std::uniform_int_distribution<int> delay_ms(30, 600);
  std::set<std::string> committed;
  VersionReader reader(data);
  for (int run = 0; run < kKills; ++run) {
    const fs::path log = dir->path() / ("run" + std::to_string(run) + ".log");
    auto process = Subprocess::Spawn({.argv = apply, .log_path = log}).ValueOrDie();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    ASSERT_TRUE(process->Signal(SIGKILL).ok());
    ASSERT_TRUE(process->Wait(std::chrono::seconds(30)).ok());
    auto ids = CommittedIds(log);
    committed.insert(ids.begin(), ids.end());
    ExpectCommittedPresent(data, committed);
  }
  // A last run to completion: everything not yet applied gets applied, the rest is known.
  const fs::path final_log = dir->path() / "final.log";
  auto process = Subprocess::Spawn({.argv = apply, .log_path = final_log}).ValueOrDie();
  ASSERT_EQ(process->Wait(std::chrono::minutes(5)).ValueOrDie(), 0);

  auto db = DuckDatabase::Open({.path = (ModelDir(data, "crash") / "rw" / "crash.duckdb").string(),
                                .read_only = true})
                .ValueOrDie();
  auto connection = db->Connect().ValueOrDie();
  auto counts =
      connection->QueryTable("SELECT count(*), count(DISTINCT id) FROM events").ValueOrDie();
  EXPECT_EQ(counts->column(0)->GetScalar(0).ValueOrDie()->ToString(), std::to_string(kRequests));
  EXPECT_EQ(counts->column(1)->GetScalar(0).ValueOrDie()->ToString(), std::to_string(kRequests));
  // Every id reported committed by a killed run is among the applied requests.
  auto applied = connection
                     ->QueryTable(
                         "SELECT count(*) FROM _teatree_requests WHERE status = "
                         "'applied' AND request_id LIKE 'r%'")
                     .ValueOrDie();
  EXPECT_EQ(applied->column(0)->GetScalar(0).ValueOrDie()->ToString(), std::to_string(kRequests));
  EXPECT_GT(committed.size(), 0u) << "no run got far enough to commit: the test proves little";
  EXPECT_TRUE(reader.failures().empty()) << reader.failures().front();
  EXPECT_GT(reader.reads(), 0);
  // The newest version is published and matches the model.
  auto versions = ListVersionFiles(data, "crash").ValueOrDie();
  ASSERT_FALSE(versions.empty());
  auto version = connection->QueryTable("SELECT version FROM _teatree_version").ValueOrDie();
  EXPECT_EQ(std::to_string(versions.back()),
            version->column(0)->GetScalar(0).ValueOrDie()->ToString());
  for (const auto& entry : fs::directory_iterator(ModelDir(data, "crash") / "versions")) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace teatree
