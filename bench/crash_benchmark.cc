// What kill -9 costs, counted: for each engine, real processes (the built `teatree` binary)
// are killed again and again while requests go through the real path (a client, JetStream,
// the dispatcher, `teatree manager` or `teatree serve`), then every acknowledged request is
// looked for in the newest published version file, as an outside reader finds it:
// - a manager killed at each fault point (docs/operations.md), --kills times per point;
// - `teatree serve` killed as its manager is about to publish (publish.before_rename:parent)
//   and started again, as a supervisor would;
// - serve's nats-server killed at random moments while a stream of requests is submitted;
// - the manager killed at random moments while a stream of requests is submitted.
// Per row: kills, requests JetStream acknowledged, those whose applied outcome a client can
// read, lost (acknowledged, not in the newest version), duplicated (rows beyond the first
// with one request's key: the table has no primary key, so a request applied twice shows),
// and the recovery time: from the kill until the newest published version holds every
// request acknowledged before it. The goal is 0 lost and 0 duplicated.
//
//   crash_benchmark [--kills N] [--random-kills N] [--nats-kills N] [--requests N]
//                   [--engine duckdb|arrow] [--only manager|serve|nats-server|random]
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "teatree/bus/nats_server.h"
#include "teatree/bus/notes.h"
#include "teatree/bus/subjects.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/temp_dir.h"
#include "teatree/request/codec.h"
#include "teatree/service/client.h"
#include "tests/integration/crash_harness.h"

namespace teatree::bench {
namespace {

using namespace teatree::testing;  // NOLINT(build/namespaces): the shared crash harness.
using SysClock = std::chrono::system_clock;

constexpr const char* kModel = "m";
constexpr const char* kTable = "events";
/// How long a step may take before the run reports it as not recovered.
constexpr auto kPatience = seconds(120);

struct Settings {
  int kills = 3;          // Per fault point.
  int random_kills = 10;  // Manager kills at random moments.
  int nats_kills = 3;     // nats-server kills at random moments.
  int requests = 100;     // Requests queued before each fault-point kill.
  std::vector<std::string> engines = {"duckdb", "arrow"};
  std::string only;  // A process name: run only its rows.
};

/// One row of the table.
struct Row {
  std::string engine, process, point;
  int kills = 0;
  int64_t acknowledged = 0, told = 0, lost = 0, duplicated = 0;
  bool newest_holds_all = false;
  std::vector<double> recovery_ms;
  int not_recovered = 0;  // Kills after which recovery took longer than kPatience.
  std::string error;      // Why the row could not be measured to the end.
};

double MillisecondsBetween(SysClock::time_point from, SysClock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

/// When `file` was last written: the moment a fault point fired (it writes its once-file,
/// then kills).
Result<SysClock::time_point> WrittenAt(const fs::path& file) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) return Status::IOError(file.string(), " is missing");
  return SysClock::time_point(std::chrono::duration_cast<SysClock::duration>(
      seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec)));
}

/// True if `pid` is a child of this process: the run kills only processes it started.
bool IsOurs(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string id, comm, state;
  pid_t parent = 0;
  return (stat >> id >> comm >> state >> parent) && parent == ::getpid();
}

/// Submits append r<key> (id = key) until JetStream acknowledges it, as a client must.
Status SubmitUntilAcked(Client& client, int64_t key) {
  ARROW_ASSIGN_OR_RAISE(Request request, DecodeRequest(AppendRequest(
                                             kModel, "r" + std::to_string(key), key, kTable)));
  Status last;
  for (auto deadline = std::chrono::steady_clock::now() + kPatience;
       std::chrono::steady_clock::now() < deadline;) {
    auto ack = client.Submit(request);
    if (ack.ok()) return Status::OK();
    last = ack.status();
    std::this_thread::sleep_for(milliseconds(100));
  }
  return last.WithMessage("request r", key, " was never acknowledged: ", last.message());
}

Status CreateModel(Client& client, const std::string& engine) {
  ARROW_ASSIGN_OR_RAISE(Request create,
                        DecodeRequest(CreateTableRequest(kModel, "create", kTable, engine, false)));
  ARROW_ASSIGN_OR_RAISE(Outcome outcome, client.SubmitAndWait(create, kPatience));
  if (!outcome.applied()) return Status::Invalid("create_table: ", outcome.note.dump());
  return Status::OK();
}

/// True once the newest version file holds every id below `acknowledged`.
bool NewestHoldsAll(const fs::path& data, int64_t acknowledged) {
  if (acknowledged == 0) return true;
  const std::string n = std::to_string(acknowledged);
  auto found =
      NewestVersionScalar(data, kModel, "SELECT count(DISTINCT id) FROM events WHERE id < " + n);
  return found.ok() && *found == n;
}

/// Records the time from `killed` until the newest version holds every id below
/// `acknowledged` (and `also`, when given, holds).
void TimeRecovery(const fs::path& data, int64_t acknowledged, SysClock::time_point killed, Row& row,
                  const std::function<bool()>& also = {}) {
  const bool recovered =
      Eventually([&] { return (!also || also()) && NewestHoldsAll(data, acknowledged); }, kPatience,
                 milliseconds(20));
  if (!recovered) ++row.not_recovered;
  row.recovery_ms.push_back(MillisecondsBetween(killed, SysClock::now()));
}

/// The acknowledged requests (r0…r<acknowledged-1>) whose applied outcome the notification
/// stream holds, read as a client replaying it would; waits up to `patience` for the last.
Result<int64_t> CountTold(Client& client, int64_t acknowledged, milliseconds patience) {
  ARROW_ASSIGN_OR_RAISE(auto notes,
                        NoteSubscription::Replay(client.connection(), NoteSubject(kModel)));
  std::set<int64_t> told;
  for (auto deadline = std::chrono::steady_clock::now() + patience;
       static_cast<int64_t>(told.size()) < acknowledged &&
       std::chrono::steady_clock::now() < deadline;) {
    ARROW_ASSIGN_OR_RAISE(auto note, notes->Next(milliseconds(500)));
    if (!note) continue;
    auto json = nlohmann::json::parse(note->body, nullptr, false);
    if (!json.is_object() || json.value("type", "") != "outcome" ||
        json.value("status", "") != "applied") {
      continue;
    }
    const std::string id = json.value("request_id", "");
    if (id.size() < 2 || id[0] != 'r') continue;
    const int64_t key = std::strtoll(id.c_str() + 1, nullptr, 10);
    if (key < acknowledged) told.insert(key);
  }
  return static_cast<int64_t>(told.size());
}

/// Fills the counts of `row` from the newest version file and the notification stream,
/// once everything acknowledged had its chance to be applied and published.
Status Account(const fs::path& data, Client& client, Row& row) {
  const int64_t n = row.acknowledged;
  row.newest_holds_all =
      Eventually([&] { return NewestHoldsAll(data, n); }, kPatience, milliseconds(100));
  const std::string sql = "SELECT count(*) FILTER (WHERE id < " + std::to_string(n) +
                          ") || ' ' || count(DISTINCT id) FILTER (WHERE id < " + std::to_string(n) +
                          ") FROM events";
  ARROW_ASSIGN_OR_RAISE(std::string counts, NewestVersionScalar(data, kModel, sql));
  int64_t rows = 0, distinct = 0;
  if (std::sscanf(counts.c_str(), "%ld %ld", &rows, &distinct) != 2) {
    return Status::Invalid("unexpected counts: ", counts);
  }
  row.lost = n - distinct;
  row.duplicated = rows - distinct;
  // Outcomes of requests redelivered after a crash come after the queue's ack wait (30 s
  // under serve).
  ARROW_ASSIGN_OR_RAISE(row.told, CountTold(client, n, seconds(60)));
  return Status::OK();
}

/// A private nats-server and a client of it, in a fresh directory removed afterwards.
struct World {
  std::unique_ptr<TempDir> dir;
  fs::path data;
  std::unique_ptr<NatsServer> nats;
  std::unique_ptr<Client> client;

  static Result<World> Make(bool with_nats) {
    World world;
    ARROW_ASSIGN_OR_RAISE(world.dir, TempDir::Make("teatree-crash-bench-"));
    world.data = world.dir->path() / "data";
    if (with_nats) {
      ARROW_ASSIGN_OR_RAISE(world.nats,
                            NatsServer::Start({.store_dir = world.dir->path() / "nats"}));
      ARROW_ASSIGN_OR_RAISE(world.client, Client::Connect({.nats = {.url = world.nats->url()}}));
    }
    return world;
  }

  std::unique_ptr<DispatcherThread> StartDispatcher(const std::vector<std::string>& args) {
    return std::make_unique<DispatcherThread>(nats->url(), data, args,
                                              DispatcherThread::FastOptions(nats->url(), data));
  }
};

/// A manager killed at `point`, settings.kills times: each time, settings.requests requests
/// are queued while no manager runs, the point is armed, and the dispatcher starts a manager
/// that takes them all in one batch and dies at the point; its successor recovers.
Status ManagerAtPoint(const Settings& settings, const std::string& point, Row& row) {
  ARROW_ASSIGN_OR_RAISE(World world, World::Make(/*with_nats=*/true));
  const fs::path fired = world.dir->path() / "fault-fired";
  ARROW_RETURN_NOT_OK(WriteFileAtomically(fired, ""));  // Disarmed until removed.
  FaultEnvironment fault(point, fired);
  std::vector<std::string> args = kFastManagerArgs;
  args.insert(args.end(), {"--batch-size", "1000"});
  auto dispatcher = world.StartDispatcher(args);
  ARROW_RETURN_NOT_OK(CreateModel(*world.client, row.engine));
  ARROW_RETURN_NOT_OK(dispatcher->Stop());
  for (int kill = 0; kill < settings.kills; ++kill) {
    for (int i = 0; i < settings.requests; ++i) {
      ARROW_RETURN_NOT_OK(SubmitUntilAcked(*world.client, row.acknowledged++));
    }
    fs::remove(fired);
    dispatcher = world.StartDispatcher(args);
    if (!Eventually([&] { return fs::exists(fired); }, kPatience, milliseconds(10))) {
      return Status::Invalid(point, " was never reached");
    }
    ++row.kills;
    ARROW_ASSIGN_OR_RAISE(auto killed, WrittenAt(fired));
    TimeRecovery(world.data, row.acknowledged, killed, row);
    ARROW_RETURN_NOT_OK(dispatcher->Stop());
  }
  // Requests whose acknowledgement a kill cut off come back to a manager, answered as
  // duplicates: one runs while the outcomes are counted.
  dispatcher = world.StartDispatcher(args);
  ARROW_RETURN_NOT_OK(Account(world.data, *world.client, row));
  return dispatcher->Stop();
}

/// Submits r<next>, r<next+1>, … in a thread, one at a time and each until acknowledged,
/// pacing itself to about `per_second`; acknowledged() counts those done.
class Submitter {
 public:
  Submitter(Client& client, int per_second) : client_(client), per_second_(per_second) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Submitter() { (void)Stop(); }

  int64_t acknowledged() const { return acknowledged_; }
  Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  void Loop() {
    const auto start = std::chrono::steady_clock::now();
    while (!stop_ && status_.ok()) {
      status_ = SubmitUntilAcked(client_, acknowledged_);
      if (status_.ok()) ++acknowledged_;
      std::this_thread::sleep_until(start + milliseconds(acknowledged_ * 1000 / per_second_));
    }
  }

  Client& client_;
  const int per_second_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acknowledged_{0};
  Status status_;
  std::thread thread_;
};

/// The manager killed by pid (kill -9) settings.random_kills times at random moments while
/// requests stream in; each kill waits for the previous one's recovery and for its successor
/// to hold the lease.
Status ManagerAtRandom(const Settings& settings, Row& row) {
  ARROW_ASSIGN_OR_RAISE(World world, World::Make(/*with_nats=*/true));
  auto dispatcher = world.StartDispatcher(kFastManagerArgs);
  ARROW_RETURN_NOT_OK(CreateModel(*world.client, row.engine));
  std::mt19937 random(20261207);
  {
    Submitter submitter(*world.client, 200);
    for (int kill = 0; kill < settings.random_kills; ++kill) {
      std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<>(100, 700)(random)));
      pid_t pid = 0;
      Eventually([&] { return (pid = LeaseHolderPid(world.client->connection(), kModel)) != 0; },
                 kPatience, milliseconds(20));
      if (pid == 0 || !IsOurs(pid)) return Status::Invalid("no manager of ours holds the lease");
      if (::kill(pid, SIGKILL) != 0) return Status::IOError("kill ", pid, ": ", strerror(errno));
      const auto killed = SysClock::now();
      ++row.kills;
      TimeRecovery(world.data, submitter.acknowledged(), killed, row);
      Eventually(
          [&] {
            const pid_t next = LeaseHolderPid(world.client->connection(), kModel);
            return next != 0 && next != pid;
          },
          kPatience, milliseconds(20));
    }
    ARROW_RETURN_NOT_OK(submitter.Stop());
    row.acknowledged = submitter.acknowledged();
  }
  ARROW_RETURN_NOT_OK(Account(world.data, *world.client, row));
  return dispatcher->Stop();
}

/// `teatree serve` in `world.data` and a client of its nats-server.
struct Served {
  std::unique_ptr<Subprocess> serve;
  std::unique_ptr<Client> client;

  static Result<Served> Start(const World& world, const std::string& log) {
    Served served;
    // A manager idle for a second stops, so that the run can hold the model's lease between
    // kills.
    ARROW_ASSIGN_OR_RAISE(served.serve,
                          StartServe(world.data, world.dir->path() / log, {"--idle-stop-s", "1"}));
    if (!served.serve->Running()) return Status::IOError("teatree serve exited; see ", log);
    ARROW_ASSIGN_OR_RAISE(auto url, ServedNatsUrl(world.data));
    ARROW_ASSIGN_OR_RAISE(served.client, Client::Connect({.nats = {.url = url}}));
    return served;
  }
};

/// Queues `count` requests while the run holds the model's lease (no manager can take them),
/// removes `fired` (arming its fault point), then lets the lease go: one batch takes them all.
Status QueueThenArm(Client& client, int count, const fs::path& fired, Row& row) {
  std::unique_ptr<Lease> held;
  Eventually(
      [&] {
        auto lease = Lease::Acquire(client.connection(), kModel, "crash_benchmark",
                                    {.ttl = milliseconds(1000)});
        if (lease.ok()) held = std::move(*lease);
        return held != nullptr;
      },
      kPatience, milliseconds(50));
  if (!held) return Status::IOError("the lease of the model stayed held by a manager");
  for (int i = 0; i < count; ++i) ARROW_RETURN_NOT_OK(SubmitUntilAcked(client, row.acknowledged++));
  fs::remove(fired);
  return held->Release();
}

/// `teatree serve` killed (kill -9, by its own manager: publish.before_rename:parent) as its
/// manager is about to publish a committed batch, then started again at once.
Status ServeAtPublish(const Settings& settings, Row& row) {
  ARROW_ASSIGN_OR_RAISE(World world, World::Make(/*with_nats=*/false));
  const fs::path fired = world.dir->path() / "fault-fired";
  ARROW_RETURN_NOT_OK(WriteFileAtomically(fired, ""));
  FaultEnvironment fault("publish.before_rename:parent", fired);
  ARROW_ASSIGN_OR_RAISE(Served served, Served::Start(world, "serve0.log"));
  ARROW_RETURN_NOT_OK(CreateModel(*served.client, row.engine));
  for (int kill = 0; kill < settings.kills; ++kill) {
    ARROW_RETURN_NOT_OK(QueueThenArm(*served.client, settings.requests, fired, row));
    if (!Eventually([&] { return !served.serve->Running(); }, kPatience, milliseconds(5))) {
      return Status::Invalid("serve was not killed at publish.before_rename");
    }
    ++row.kills;
    ARROW_ASSIGN_OR_RAISE(auto killed, WrittenAt(fired));
    served.client.reset();
    ARROW_ASSIGN_OR_RAISE(served,
                          Served::Start(world, "serve" + std::to_string(kill + 1) + ".log"));
    TimeRecovery(world.data, row.acknowledged, killed, row);
  }
  ARROW_RETURN_NOT_OK(Account(world.data, *served.client, row));
  return served.serve->Stop(seconds(30)).status();
}

/// Serve's nats-server killed (kill -9) at random moments while requests stream in; serve
/// starts it again. Recovery also waits for JetStream to acknowledge a request again.
Status NatsAtRandom(const Settings& settings, Row& row) {
  ARROW_ASSIGN_OR_RAISE(World world, World::Make(/*with_nats=*/false));
  ARROW_ASSIGN_OR_RAISE(Served served, Served::Start(world, "serve.log"));
  ARROW_RETURN_NOT_OK(CreateModel(*served.client, row.engine));
  std::mt19937 random(20261208);
  {
    Submitter submitter(*served.client, 200);
    for (int kill = 0; kill < settings.nats_kills; ++kill) {
      std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<>(500, 1500)(random)));
      const pid_t nats = ChildNamed(served.serve->pid(), "nats-server");
      if (nats == 0) return Status::Invalid("serve runs no nats-server");
      if (::kill(nats, SIGKILL) != 0) return Status::IOError("kill ", nats, ": ", strerror(errno));
      const auto killed = SysClock::now();
      const int64_t before = submitter.acknowledged();
      ++row.kills;
      // Acknowledged again: past the request in flight at the kill, and one more.
      TimeRecovery(world.data, before, killed, row,
                   [&] { return submitter.acknowledged() >= before + 2; });
    }
    ARROW_RETURN_NOT_OK(submitter.Stop());
    row.acknowledged = submitter.acknowledged();
  }
  ARROW_RETURN_NOT_OK(Account(world.data, *served.client, row));
  return served.serve->Stop(seconds(30)).status();
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank: the smallest value with at least p of them at or below it.
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

void PrintRow(const Row& row) {
  const bool met = row.error.empty() && row.lost == 0 && row.duplicated == 0 &&
                   row.newest_holds_all && row.not_recovered == 0;
  std::printf("| %s | %s | %s | %d | %ld | %ld | %ld | %ld | %s | %.0f | %.0f | %s |\n",
              row.engine.c_str(), row.process.c_str(), row.point.c_str(), row.kills,
              row.acknowledged, row.told, row.lost, row.duplicated,
              row.newest_holds_all ? "yes" : "**no**", Percentile(row.recovery_ms, 0.5),
              Percentile(row.recovery_ms, 1.0), met ? "met" : "**not met**");
  if (row.not_recovered > 0) {
    std::printf("|   | %d kill(s) not recovered within %ld s |\n", row.not_recovered,
                static_cast<long>(kPatience.count()));
  }
  if (!row.error.empty()) std::printf("|   | error: %s |\n", row.error.c_str());
  std::fflush(stdout);
}

using Case = std::function<Status(const Settings&, Row&)>;

struct Planned {
  std::string process, point;
  Case run;
};

std::vector<Planned> Plan() {
  std::vector<Planned> plan;
  for (const char* point : {"manager.after_commit", "manager.before_ack", "publish.before_rename",
                            "publish.after_rename", "archive.upload", "catalog.write"}) {
    plan.push_back({"manager", point, [point](const Settings& settings, Row& row) {
                      return ManagerAtPoint(settings, point, row);
                    }});
  }
  plan.push_back({"manager", "random (stream)", ManagerAtRandom});
  plan.push_back({"serve", "publish.before_rename:parent", ServeAtPublish});
  plan.push_back({"nats-server", "random (stream)", NatsAtRandom});
  return plan;
}

Result<Settings> ParseFlags(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Status::Invalid("flag ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--kills") {
      settings.kills = std::stoi(value);
    } else if (flag == "--random-kills") {
      settings.random_kills = std::stoi(value);
    } else if (flag == "--nats-kills") {
      settings.nats_kills = std::stoi(value);
    } else if (flag == "--requests") {
      settings.requests = std::stoi(value);
    } else if (flag == "--engine") {
      settings.engines = {value};
    } else if (flag == "--only") {
      settings.only = value;
    } else {
      return Status::Invalid("unknown flag ", flag,
                             ": use --kills, --random-kills, --nats-kills, --requests, --engine "
                             "or --only");
    }
  }
  return settings;
}

int Run(int argc, char** argv) {
  auto settings = ParseFlags(argc, argv);
  if (!settings.ok()) {
    std::fprintf(stderr, "%s\n", settings.status().message().c_str());
    return 2;
  }
  std::printf(
      "kill -9 of real processes; recovery = kill -> the newest published version holds "
      "every request acknowledged before the kill. Goal: 0 lost, 0 duplicated.\n\n");
  std::printf(
      "| engine | process | killed at | kills | acknowledged | told | lost | duplicated "
      "| newest has all | recovery p50 ms | max ms | goal |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  bool all_met = true;
  for (const auto& engine : settings->engines) {
    for (const auto& planned : Plan()) {
      if (!settings->only.empty() && planned.process != settings->only &&
          planned.point.find(settings->only) == std::string::npos) {
        continue;
      }
      Row row{.engine = engine, .process = planned.process, .point = planned.point};
      if (Status status = planned.run(*settings, row); !status.ok()) row.error = status.ToString();
      PrintRow(row);
      all_met = all_met && row.error.empty() && row.lost == 0 && row.duplicated == 0 &&
                row.newest_holds_all && row.not_recovered == 0;
    }
  }
  return all_met ? 0 : 1;
}

}  // namespace
}  // namespace teatree::bench

int main(int argc, char** argv) {
  if (!teatree::InitializeArrow().ok()) return 1;
  // The dispatcher runs in this process: its notes on each crash would drown the table.
  spdlog::set_level(spdlog::level::err);
  const int code = teatree::bench::Run(argc, argv);
  teatree::ShutdownArrow();
  return code;
}
