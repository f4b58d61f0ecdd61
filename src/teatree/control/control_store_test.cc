#include "teatree/control/control_store.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <latch>
#include <ostream>
#include <thread>

#include "teatree/common/net.h"
#include "teatree/common/temp_dir.h"
#include "teatree/control/pg_connection.h"
#include "teatree/control/postgres_server.h"
#include "teatree/control/sqlite_db.h"
#include "teatree/control/test_util_internal.h"

namespace teatree {

void PrintTo(const ModelRecord& m, std::ostream* os) {
  *os << "{" << m.id << " " << m.engine << " " << m.status << " v" << m.current_version << "/"
      << m.published_version << " " << m.manager_endpoint << " " << m.lease_holder << " "
      << m.created_at << " " << m.updated_at << "}";
}
void PrintTo(const ContentRecord& c, std::ostream* os) {
  *os << "{" << c.model << " v" << c.version << " " << c.table_name << " rows=" << c.rows
      << " bytes=" << c.bytes << " " << c.archive_uri << " " << c.version_file_uri << " "
      << c.checksum << " " << c.created_at << "}";
}
void PrintTo(const RequestLogRecord& r, std::ostream* os) {
  *os << "{" << r.model << "/" << r.request_id << " " << r.op << " " << r.status << " v"
      << r.version << " " << r.duration_ms << "ms '" << r.error << "' " << r.created_at << "}";
}

namespace {

/// How the suite reaches one backend: SQLite in a scratch directory, or a database of its
/// own on a private PostgreSQL server.
struct StoreBackend {
  std::string name;
  /// A URL for a new, empty catalog; `dir` is a scratch directory the test owns.
  std::function<std::string(const std::filesystem::path& dir)> make_url;
  /// Runs SQL on the catalog behind the store's back, to plant states the store never writes.
  std::function<Status(const std::string& url, const std::string& sql)> execute;
  std::function<Result<std::string>(const std::string& url, const std::string& sql)> query_scalar;
};

void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

Result<std::unique_ptr<SqliteDb>> OpenSqliteUrl(const std::string& url) {
  const std::string prefix = "sqlite://";
  if (url.rfind(prefix, 0) != 0) return Status::Invalid("not a sqlite:// URL: ", url);
  return SqliteDb::Open(url.substr(prefix.size()));
}

StoreBackend SqliteBackend() {
  return StoreBackend{"Sqlite",
                      [](const std::filesystem::path& dir) {
                        return "sqlite://" + (dir / "control.sqlite").string();
                      },
                      [](const std::string& url, const std::string& sql) -> Status {
                        ARROW_ASSIGN_OR_RAISE(auto db, OpenSqliteUrl(url));
                        return db->Execute(sql);
                      },
                      [](const std::string& url, const std::string& sql) -> Result<std::string> {
                        ARROW_ASSIGN_OR_RAISE(auto db, OpenSqliteUrl(url));
                        return db->QueryScalar(sql);
                      }};
}

/// One PostgreSQL server for the whole test binary, started on first use; each test gets a
/// database of its own.
PostgresServer& SharedPostgres() {
  static std::unique_ptr<TempDir> dir = [] {
    auto made = TempDir::Make("teatree-postgres-").ValueOrDie();
    // As root the server runs as `postgres`, which must be able to reach its directory.
    std::filesystem::permissions(made->path(), std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
    return made;
  }();
  static std::unique_ptr<PostgresServer> server =
      PostgresServer::Start({.dir = dir->path() / "pg"}).ValueOrDie();
  return *server;
}

StoreBackend PostgresBackend() {
  return StoreBackend{"Postgres",
                      [](const std::filesystem::path&) {
                        static int databases = 0;
                        const std::string name = "catalog_" + std::to_string(++databases);
                        EXPECT_TRUE(SharedPostgres().CreateDatabase(name).ok());
                        return SharedPostgres().url(name);
                      },
                      [](const std::string& url, const std::string& sql) -> Status {
                        ARROW_ASSIGN_OR_RAISE(auto connection, PgConnection::Connect(url));
                        return connection->Execute(sql);
                      },
                      [](const std::string& url, const std::string& sql) -> Result<std::string> {
                        ARROW_ASSIGN_OR_RAISE(auto connection, PgConnection::Connect(url));
                        return connection->QueryScalar(sql);
                      }};
}

ModelRecord MakeModel(const std::string& id) {
  ModelRecord model;
  model.id = id;
  model.status = "idle";
  return model;
}

ContentRecord MakeContent(const std::string& model, int64_t version, const std::string& table) {
  const std::string base = model + "/v" + std::to_string(version) + "/" + table;
  return ContentRecord{model,
                       version,
                       table,
                       /*rows=*/100 * version,
                       /*bytes=*/4096 * version,
                       "file:///archive/" + base + ".parquet",
                       "file:///models/" + base + ".duckdb",
                       "sha256:" + base,
                       /*created_at=*/""};
}

RequestLogRecord MakeRequest(const std::string& model, const std::string& id, int64_t version) {
  return RequestLogRecord{id, model, "append", "applied", version, 1.5, "", ""};
}

std::vector<std::string> RequestIds(const std::vector<RequestLogRecord>& requests) {
  std::vector<std::string> ids;
  ids.reserve(requests.size());
  for (const auto& request : requests) ids.push_back(request.request_id);
  return ids;
}

/// "YYYY-MM-DDTHH:MM:SS.ffffffZ". (Not std::regex: GCC 12 warns inside it under ASan.)
bool IsIso8601Utc(const std::string& text) {
  const std::string pattern = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (text.size() != pattern.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool ok = pattern[i] == 'd' ? std::isdigit(static_cast<unsigned char>(text[i])) != 0
                                      : text[i] == pattern[i];
    if (!ok) return false;
  }
  return true;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class ControlStoreTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Make("teatree-control-store-test-"));
    url_ = GetParam().make_url(dir_->path());
    ASSERT_OK_AND_ASSIGN(store_, ControlStore::Open(url_));
  }

  Status Execute(const std::string& sql) { return GetParam().execute(url_, sql); }
  Result<std::string> QueryScalar(const std::string& sql) {
    return GetParam().query_scalar(url_, sql);
  }

  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::unique_ptr<ControlStore> store_;
};

TEST_P(ControlStoreTest, UpsertGetAndListModels) {
  ModelRecord beta = MakeModel("beta");
  beta.engine = "arrow";
  beta.status = "applying";
  beta.current_version = 3;
  beta.published_version = 2;
  beta.manager_endpoint = "grpc://127.0.0.1:7001";
  beta.lease_holder = "manager-beta-1";
  ASSERT_OK(store_->UpsertModel(beta));
  ASSERT_OK(store_->UpsertModel(MakeModel("alpha")));

  ASSERT_OK_AND_ASSIGN(auto stored, store_->GetModel("beta"));
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(IsIso8601Utc(stored->created_at)) << stored->created_at;
  EXPECT_EQ(stored->updated_at, stored->created_at);
  beta.created_at = beta.updated_at = stored->created_at;
  EXPECT_EQ(*stored, beta);

  ASSERT_OK_AND_ASSIGN(auto missing, store_->GetModel("gamma"));
  EXPECT_FALSE(missing.has_value());

  ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels());
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, "alpha");
  EXPECT_EQ(models[0].engine, "duckdb");
  EXPECT_EQ(models[1], *stored);
}

TEST_P(ControlStoreTest, APodClassIsSetByItselfAndSurvivesTheManagersUpserts) {
  // Set before the model's manager ever ran: the model gets a row.
  ASSERT_OK(store_->SetPodClass("sales", "medium"));
  ASSERT_OK_AND_ASSIGN(auto fresh, store_->GetModel("sales"));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->pod_class, "medium");
  EXPECT_EQ(fresh->status, "stopped");
  // The manager records its state: the class stays.
  ModelRecord running = MakeModel("sales");
  running.current_version = 4;
  ASSERT_OK(store_->UpsertModel(running));
  ASSERT_OK_AND_ASSIGN(auto after, store_->GetModel("sales"));
  EXPECT_EQ(after->pod_class, "medium");
  EXPECT_EQ(after->current_version, 4);
  ASSERT_OK(store_->SetPodClass("sales", "large"));
  ASSERT_OK_AND_ASSIGN(auto changed, store_->GetModel("sales"));
  EXPECT_EQ(changed->pod_class, "large");
  EXPECT_EQ(changed->current_version, 4);
  // The dispatcher says why a manager does not run yet; the manager's next upsert clears it.
  ASSERT_OK(store_->SetPending("sales", "Unschedulable: 0/3 nodes are available"));
  ASSERT_OK_AND_ASSIGN(auto pending, store_->GetModel("sales"));
  EXPECT_EQ(pending->status, "pending");
  EXPECT_EQ(pending->pending_reason, "Unschedulable: 0/3 nodes are available");
  EXPECT_EQ(pending->pod_class, "large");
  ASSERT_OK(store_->UpsertModel(running));
  ASSERT_OK_AND_ASSIGN(auto started, store_->GetModel("sales"));
  EXPECT_EQ(started->status, "idle");
  EXPECT_EQ(started->pending_reason, "");
  // A model whose class was never set is small.
  ASSERT_OK(store_->UpsertModel(MakeModel("other")));
  EXPECT_EQ(store_->GetModel("other").ValueOrDie()->pod_class, "small");
}

TEST_P(ControlStoreTest, UpdateChangesUpdatedAtButNotCreatedAt) {
  ModelRecord model = MakeModel("sales");
  ASSERT_OK(store_->UpsertModel(model));
  ASSERT_OK_AND_ASSIGN(auto first, store_->GetModel("sales"));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  model.status = "error";
  model.current_version = 7;
  model.lease_holder = "manager-2";
  model.created_at = "1999-01-01T00:00:00.000000Z";  // the store owns timestamps
  ASSERT_OK(store_->UpsertModel(model));
  ASSERT_OK_AND_ASSIGN(auto second, store_->GetModel("sales"));
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(second->created_at, first->created_at);
  EXPECT_GT(second->updated_at, first->updated_at);
  EXPECT_EQ(second->status, "error");
  EXPECT_EQ(second->current_version, 7);
  EXPECT_EQ(second->lease_holder, "manager-2");
  ASSERT_OK_AND_ASSIGN(auto models, store_->ListModels());
  EXPECT_EQ(models.size(), 1u);
}

TEST_P(ControlStoreTest, RecordContentReplayChangesNothing) {
  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  ASSERT_OK(store_->UpsertModel(MakeModel("other")));
  std::vector<ContentRecord> rows = {MakeContent("sales", 2, "orders"),
                                     MakeContent("sales", 1, "orders"),
                                     MakeContent("sales", 1, "customers")};
  ASSERT_OK(store_->RecordContent(rows));
  ASSERT_OK(store_->RecordContent({MakeContent("other", 1, "orders")}));
  ASSERT_OK_AND_ASSIGN(auto first, store_->ListContent("sales"));
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].table_name, "customers");  // ordered by version, then table_name
  EXPECT_EQ(first[1].table_name, "orders");
  EXPECT_EQ(first[2].version, 2);
  ContentRecord expected = rows[0];
  expected.created_at = first[2].created_at;
  EXPECT_EQ(first[2], expected);
  EXPECT_TRUE(IsIso8601Utc(expected.created_at)) << expected.created_at;

  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_OK(store_->RecordContent(rows));  // a replay
  ASSERT_OK_AND_ASSIGN(auto replayed, store_->ListContent("sales"));
  EXPECT_EQ(replayed, first);

  rows[0].checksum = "sha256:rewritten";  // an upsert updates, keeping created_at
  ASSERT_OK(store_->RecordContent({rows[0]}));
  ASSERT_OK_AND_ASSIGN(auto updated, store_->ListContent("sales"));
  ASSERT_EQ(updated.size(), 3u);
  EXPECT_EQ(updated[2].checksum, "sha256:rewritten");
  EXPECT_EQ(updated[2].created_at, first[2].created_at);
}

TEST_P(ControlStoreTest, FailedBatchIsRolledBack) {
  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  // The first row is written before the second fails: the transaction guard must undo it.
  Status content =
      store_->RecordContent({MakeContent("sales", 1, "orders"), MakeContent("ghost", 1, "t")});
  ASSERT_TRUE(content.IsInvalid()) << content;
  EXPECT_TRUE(Contains(content.message(), "model \"ghost\" is not in control catalog")) << content;
  EXPECT_TRUE(Contains(content.message(), "UpsertModel() it before recording its content"))
      << content;
  ASSERT_OK_AND_ASSIGN(auto content_rows, store_->ListContent("sales"));
  EXPECT_TRUE(content_rows.empty());

  Status requests =
      store_->LogRequests({MakeRequest("sales", "r1", 1), MakeRequest("ghost", "r2", 1)});
  ASSERT_TRUE(requests.IsInvalid()) << requests;
  EXPECT_TRUE(Contains(requests.message(), "\"ghost\"")) << requests;
  ASSERT_OK_AND_ASSIGN(auto request_rows, store_->ListRequests("sales", 10));
  EXPECT_TRUE(request_rows.empty());

  // The store is still usable afterwards: the failed transaction did not linger.
  ASSERT_OK(store_->LogRequests({MakeRequest("sales", "r1", 1)}));
  ASSERT_OK_AND_ASSIGN(request_rows, store_->ListRequests("sales", 10));
  EXPECT_EQ(request_rows.size(), 1u);
}

TEST_P(ControlStoreTest, RequestLogIsNewestFirstAndReplaysNeitherDuplicateNorOverwrite) {
  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  ASSERT_OK(store_->UpsertModel(MakeModel("other")));
  ASSERT_OK(store_->LogRequests({MakeRequest("sales", "a", 1), MakeRequest("sales", "b", 1)}));
  ASSERT_OK(store_->LogRequests({MakeRequest("sales", "c", 2), MakeRequest("other", "a", 1)}));
  ASSERT_OK_AND_ASSIGN(auto first, store_->ListRequests("sales", 10));
  EXPECT_EQ(RequestIds(first), (std::vector<std::string>{"c", "b", "a"}));
  RequestLogRecord expected = MakeRequest("sales", "c", 2);
  expected.created_at = first[0].created_at;
  EXPECT_EQ(first[0], expected);
  EXPECT_TRUE(IsIso8601Utc(expected.created_at)) << expected.created_at;

  RequestLogRecord changed = MakeRequest("sales", "a", 9);
  changed.status = "rejected";
  changed.error = "should not overwrite";
  ASSERT_OK(store_->LogRequests({changed, MakeRequest("sales", "c", 2)}));
  ASSERT_OK_AND_ASSIGN(auto replayed, store_->ListRequests("sales", 10));
  EXPECT_EQ(replayed, first);

  // A repeated id inside one batch keeps its first record; later requests still go on top.
  RequestLogRecord repeat = MakeRequest("sales", "d", 3);
  repeat.status = "duplicate";
  ASSERT_OK(store_->LogRequests({MakeRequest("sales", "d", 3), repeat}));
  ASSERT_OK_AND_ASSIGN(auto latest, store_->ListRequests("sales", 2));
  EXPECT_EQ(RequestIds(latest), (std::vector<std::string>{"d", "c"}));
  EXPECT_EQ(latest[0].status, "applied");
  ASSERT_OK_AND_ASSIGN(auto other, store_->ListRequests("other", 10));
  EXPECT_EQ(RequestIds(other), (std::vector<std::string>{"a"}));

  auto bad_limit = store_->ListRequests("sales", 0);
  ASSERT_TRUE(bad_limit.status().IsInvalid());
  EXPECT_TRUE(Contains(bad_limit.status().message(), "limit 0")) << bad_limit.status();
}

TEST_P(ControlStoreTest, RecordsAreValidatedBeforeWriting) {
  Status no_id = store_->UpsertModel(MakeModel(""));
  ASSERT_TRUE(no_id.IsInvalid()) << no_id;
  EXPECT_TRUE(Contains(no_id.message(), "empty id")) << no_id;

  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  RequestLogRecord unknown = MakeRequest("sales", "r1", 1);
  unknown.status = "done";
  Status status = store_->LogRequests({unknown});
  ASSERT_TRUE(status.IsInvalid()) << status;
  EXPECT_TRUE(Contains(status.message(), "status \"done\": use applied, rejected or duplicate"))
      << status;

  Status no_table = store_->RecordContent({MakeContent("sales", 1, "")});
  ASSERT_TRUE(no_table.IsInvalid()) << no_table;
  EXPECT_TRUE(Contains(no_table.message(), "needs both a model and a table_name")) << no_table;
}

TEST_P(ControlStoreTest, MigrationsAreAppliedOnce) {
  ASSERT_OK_AND_ASSIGN(int version, store_->SchemaVersion());
  EXPECT_EQ(version, kControlSchemaVersion);
  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  ASSERT_OK_AND_ASSIGN(std::string applied_at,
                       QueryScalar("SELECT applied_at FROM schema_migrations WHERE version = 1"));
  store_.reset();

  for (int reopen = 0; reopen < 2; ++reopen) {
    ASSERT_OK_AND_ASSIGN(store_, ControlStore::Open(url_));
    ASSERT_OK_AND_ASSIGN(version, store_->SchemaVersion());
    EXPECT_EQ(version, kControlSchemaVersion);
    ASSERT_OK_AND_ASSIGN(auto model, store_->GetModel("sales"));
    EXPECT_TRUE(model.has_value()) << "data must survive a reopen";
    EXPECT_EQ(QueryScalar("SELECT COUNT(*) FROM schema_migrations").ValueOrDie(),
              std::to_string(kControlSchemaVersion));
    EXPECT_EQ(
        QueryScalar("SELECT applied_at FROM schema_migrations WHERE version = 1").ValueOrDie(),
        applied_at);
    store_.reset();
  }
}

TEST_P(ControlStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  const int newer = kControlSchemaVersion + 1;
  ASSERT_OK(Execute("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                    std::to_string(newer) + ", '2099-01-01T00:00:00.000000Z')"));
  auto reopened = ControlStore::Open(url_);
  ASSERT_FALSE(reopened.ok());
  const std::string expected = "was written by a newer Teatree (schema " + std::to_string(newer) +
                               " > " + std::to_string(kControlSchemaVersion) + "): upgrade teatree";
  EXPECT_TRUE(Contains(reopened.status().message(), expected)) << reopened.status();
  EXPECT_TRUE(Contains(reopened.status().message(), "control catalog ")) << reopened.status();
}

TEST_P(ControlStoreTest, UrlReopensTheSameCatalog) {
  ASSERT_OK(store_->UpsertModel(MakeModel("sales")));
  ASSERT_OK_AND_ASSIGN(auto again, ControlStore::Open(store_->url()));
  ASSERT_OK_AND_ASSIGN(auto model, again->GetModel("sales"));
  EXPECT_TRUE(model.has_value());
  EXPECT_EQ(again->url(), store_->url());
}

TEST_P(ControlStoreTest, ConcurrentOpensOfANewCatalogMigrateOnce) {
  // The dispatcher, managers and CLI may all start at once on a fresh data directory.
  const std::filesystem::path fresh_dir = dir_->path() / "fresh";
  ASSERT_TRUE(std::filesystem::create_directory(fresh_dir));
  const std::string fresh_url = GetParam().make_url(fresh_dir);
  constexpr int kOpeners = 6;
  std::latch start(kOpeners);
  std::vector<Status> results(kOpeners);
  std::vector<std::thread> threads;
  threads.reserve(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto store = ControlStore::Open(fresh_url);
      results[i] =
          store.ok() ? (*store)->UpsertModel(MakeModel("m" + std::to_string(i))) : store.status();
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(
      GetParam().query_scalar(fresh_url, "SELECT COUNT(*) FROM schema_migrations").ValueOrDie(),
      std::to_string(kControlSchemaVersion));
  EXPECT_EQ(GetParam().query_scalar(fresh_url, "SELECT COUNT(*) FROM goal_model").ValueOrDie(),
            std::to_string(kOpeners));
}

/// Writes a model, its content and its requests `rounds` times; returns the first error.
Status WriteRounds(ControlStore& store, const std::string& model, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    ModelRecord record = MakeModel(model);
    record.current_version = round;
    ARROW_RETURN_NOT_OK(store.UpsertModel(record));
    ModelRecord shared = MakeModel("shared");
    shared.lease_holder = model;
    ARROW_RETURN_NOT_OK(store.UpsertModel(shared));
    ARROW_RETURN_NOT_OK(
        store.LogRequests({MakeRequest(model, "r" + std::to_string(round), round)}));
    ARROW_RETURN_NOT_OK(store.RecordContent({MakeContent(model, round, "t")}));
    ARROW_RETURN_NOT_OK(store.ListRequests(model, 5).status());
  }
  return Status::OK();
}

TEST_P(ControlStoreTest, ConcurrentWritersNeitherLockNorLoseWrites) {
  // Two threads with a store each (as two processes would have) and two sharing store_.
  constexpr int kRounds = 25;
  const std::vector<std::string> models = {"own_a", "own_b", "shared_a", "shared_b"};
  std::vector<Status> results(models.size());
  std::vector<std::thread> threads;
  threads.reserve(models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    threads.emplace_back([&, i] {
      if (i >= 2) {
        results[i] = WriteRounds(*store_, models[i], kRounds);
        return;
      }
      auto own = ControlStore::Open(url_);
      results[i] = own.ok() ? WriteRounds(**own, models[i], kRounds) : own.status();
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t i = 0; i < models.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << models[i] << ": " << results[i].ToString();
    ASSERT_OK_AND_ASSIGN(auto requests, store_->ListRequests(models[i], 1000));
    EXPECT_EQ(requests.size(), size_t{kRounds}) << models[i];
    ASSERT_OK_AND_ASSIGN(auto content, store_->ListContent(models[i]));
    EXPECT_EQ(content.size(), size_t{kRounds}) << models[i];
    ASSERT_OK_AND_ASSIGN(auto model, store_->GetModel(models[i]));
    ASSERT_TRUE(model.has_value());
    EXPECT_EQ(model->current_version, kRounds - 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Sqlite, ControlStoreTest, ::testing::Values(SqliteBackend()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Postgres, ControlStoreTest, ::testing::Values(PostgresBackend()),
                         [](const auto& info) { return info.param.name; });

// ControlStore::Open's URL dispatch, before any backend is involved.

TEST(ControlStoreUrlTest, AcceptsSqliteUrlsAndBarePaths) {
  ASSERT_OK_AND_ASSIGN(auto dir, TempDir::Make("teatree-control-url-test-"));
  const std::filesystem::path absolute = dir->path() / "control.sqlite";
  const std::string canonical = "sqlite://" + absolute.string();
  ASSERT_OK_AND_ASSIGN(auto by_url, ControlStore::Open(canonical));
  EXPECT_EQ(by_url->url(), canonical);
  ASSERT_OK(by_url->UpsertModel(MakeModel("sales")));

  ASSERT_OK_AND_ASSIGN(auto by_path, ControlStore::Open(absolute.string()));
  EXPECT_EQ(by_path->url(), canonical);
  const std::string relative =
      std::filesystem::relative(absolute, std::filesystem::current_path()).string();
  ASSERT_OK_AND_ASSIGN(auto by_relative, ControlStore::Open("sqlite://" + relative));
  EXPECT_EQ(by_relative->url(), "sqlite://" + relative);
  for (ControlStore* store : {by_path.get(), by_relative.get()}) {
    ASSERT_OK_AND_ASSIGN(auto model, store->GetModel("sales"));
    EXPECT_TRUE(model.has_value()) << store->url() << " is not the same catalog";
  }
}

TEST(ControlStoreUrlTest, RejectsOtherUrlsNamingTheUrlAndTheAcceptedForms) {
  struct Case {
    std::string url;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "control catalog URL is empty: use sqlite:///absolute/path.sqlite"},
      {"mysql://root:hunter2@db/teatree",
       "URL \"mysql://root:***@db/teatree\" has unknown scheme \"mysql\": use sqlite:///"},
      {"sqlite://", "URL \"sqlite://\" names no file"},
      {"sqlite:control.sqlite", "URL \"sqlite:control.sqlite\" lacks \"//\" after \"sqlite:\""},
  };
  for (const auto& c : cases) {
    auto store = ControlStore::Open(c.url);
    ASSERT_FALSE(store.ok()) << c.url;
    EXPECT_TRUE(store.status().IsInvalid()) << store.status();
    EXPECT_TRUE(Contains(store.status().message(), c.expected)) << store.status();
    EXPECT_FALSE(Contains(store.status().message(), "hunter2")) << store.status();
  }
}

TEST(ControlStoreUrlTest, UnreachablePostgresqlIsAClearErrorWithoutThePassword) {
  ASSERT_OK_AND_ASSIGN(int port, FreeLoopbackPort());
  const std::string url =
      "postgresql://alice:secret@127.0.0.1:" + std::to_string(port) + "/teatree";
  auto store = ControlStore::Open(url);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), "is unreachable")) << store.status();
  EXPECT_TRUE(Contains(store.status().message(), "alice:***@127.0.0.1")) << store.status();
  EXPECT_FALSE(Contains(store.status().message(), "secret")) << store.status();
}

TEST(ControlStoreUrlTest, WrongPostgresqlPasswordIsAClearErrorWithoutThePassword) {
  auto dir = TempDir::Make("teatree-postgres-auth-").ValueOrDie();
  std::filesystem::permissions(dir->path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  auto server =
      PostgresServer::Start({.dir = dir->path() / "pg", .password = "right-one"}).ValueOrDie();
  ASSERT_TRUE(ControlStore::Open(server->url()).ok());
  std::string wrong = server->url();
  wrong.replace(wrong.find("right-one"), 9, "wrong-one");
  auto store = ControlStore::Open(wrong);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), "password authentication failed"))
      << store.status();
  EXPECT_FALSE(Contains(store.status().message(), "wrong-one")) << store.status();
}

TEST(ControlStoreUrlTest, MissingDirectoryIsNamed) {
  ASSERT_OK_AND_ASSIGN(auto dir, TempDir::Make("teatree-control-url-test-"));
  const std::filesystem::path missing = dir->path() / "not" / "there";
  auto store = ControlStore::Open("sqlite://" + (missing / "control.sqlite").string());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(),
                       "directory " + missing.string() + " does not exist; create it first"))
      << store.status();
  EXPECT_FALSE(std::filesystem::exists(missing)) << "the store must not create directories";
}

}  // namespace
}  // namespace teatree
