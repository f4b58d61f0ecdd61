// kill -9 of `teatree apply` at random moments during a 10,000-request stream, 20 times, on
// each engine: every request it reported as committed is present exactly once, nothing is
// lost, the model opens, and version files read from another process are never partial.
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
#include "teatree/engine/arrow/arrow_engine.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine.h"
#include "teatree/manager/model_manager.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr int kRequests = 10'000;
constexpr int kKills = 20;

void WriteRequests(const fs::path& path, const std::string& engine) {
  std::ofstream out(path);
  out << R"({"request_id":"create","model":"crash","op":"create_table","table":"events",)"
      << R"("engine":")" << engine
      << R"(",)"
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

/// The model as its manager would open it after a crash.
std::unique_ptr<Engine> OpenModel(const fs::path& data, const std::string& engine) {
  const EngineOptions options{.model_dir = ModelDir(data, "crash"), .model = "crash"};
  if (engine == "arrow") return ArrowEngine::Open(options).ValueOrDie();
  return DuckEngine::Open(options).ValueOrDie();
}

std::string Count(Engine& model, const std::string& sql) {
  auto rows = model.Query(sql);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? (*rows)->column(0)->GetScalar(0).ValueOrDie()->ToString() : "";
}

/// Opens the model after a crash (DuckDB replays its WAL; the Arrow engine drops what its last
/// manifest does not reference) and checks that every request a killed run reported as
/// committed is there, and that each appended row is there once.
void ExpectCommittedPresent(const fs::path& data, const std::string& engine,
                            const std::set<std::string>& committed) {
  if (!fs::exists(ModelDir(data, "crash") / "rw" / "crash.duckdb") &&
      !fs::exists(ModelDir(data, "crash") / "manifests")) {
    return;
  }
  auto model = OpenModel(data, engine);
  std::set<std::string> present;
  for (const auto& outcome : model->OutcomesSince(0).ValueOrDie()) {
    if (outcome.applied()) present.insert(outcome.request_id);
  }
  for (const auto& id : committed) ASSERT_TRUE(present.count(id)) << id << " was lost";
  if (present.count("create") == 0) return;
  EXPECT_EQ(Count(*model, "SELECT count(*) - count(DISTINCT id) FROM events"), "0")
      << "a row was doubled";
}

class ApplyCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ApplyCrashTest, KillNineNeverLosesOrDoublesACommittedRequest) {
  const std::string engine = GetParam();
  auto dir = TempDir::Make("teatree-crash-test-").ValueOrDie();
  const fs::path data = dir->path() / "data";
  const fs::path requests = dir->path() / "requests.jsonl";
  WriteRequests(requests, engine);
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
    // Every other run dies after its first commit (however slow the start, e.g. under a
    // sanitizer); the others at any moment, the start included.
    if (run % 2 == 1) {
      auto committed_one = [&] {
        std::ifstream in(log);
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        return text.find(R"("status":"applied")") != std::string::npos;
      };
      for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
           std::chrono::steady_clock::now() < until && process->Running() && !committed_one();) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    ASSERT_TRUE(process->Signal(SIGKILL).ok());
    ASSERT_TRUE(process->Wait(std::chrono::seconds(30)).ok());
    auto ids = CommittedIds(log);
    committed.insert(ids.begin(), ids.end());
    ExpectCommittedPresent(data, engine, committed);
  }
  // A last run to completion: everything not yet applied gets applied, the rest is known.
  const fs::path final_log = dir->path() / "final.log";
  auto process = Subprocess::Spawn({.argv = apply, .log_path = final_log}).ValueOrDie();
  ASSERT_EQ(process->Wait(std::chrono::minutes(5)).ValueOrDie(), 0);

  auto model = OpenModel(data, engine);
  EXPECT_EQ(Count(*model, "SELECT count(*) FROM events"), std::to_string(kRequests));
  EXPECT_EQ(Count(*model, "SELECT count(DISTINCT id) FROM events"), std::to_string(kRequests));
  // Every request was applied once; every id reported committed by a killed run is among them.
  int64_t applied = 0;
  for (const auto& outcome : model->OutcomesSince(0).ValueOrDie()) {
    applied += outcome.applied() && outcome.request_id.starts_with("r") ? 1 : 0;
  }
  EXPECT_EQ(applied, kRequests);
  EXPECT_GT(committed.size(), 0u) << "no run got far enough to commit: the test proves little";
  EXPECT_TRUE(reader.failures().empty()) << reader.failures().front();
  EXPECT_GT(reader.reads(), 0);
  // The newest version is published and matches the model.
  auto versions = ListVersionFiles(data, "crash").ValueOrDie();
  ASSERT_FALSE(versions.empty());
  EXPECT_EQ(versions.back(), model->version());
  for (const auto& entry : fs::directory_iterator(ModelDir(data, "crash") / "versions")) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, ApplyCrashTest, ::testing::Values("duckdb", "arrow"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace teatree
