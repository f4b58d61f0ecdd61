#include "teatree/engine/duckdb/duckdb_reader.h"

#include <arrow/api.h>
#include <arrow/util/byte_size.h>

#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "teatree/common/sql_quote.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/duckdb/duckdb_engine_internal.h"
#include "teatree/engine/duckdb/read_only_sql.h"
#include "teatree/functions/function_registry.h"

namespace teatree {
namespace {

using Clock = std::chrono::steady_clock;

/// Why a read was stopped from outside.
enum class StopReason { kNone, kTimeLimit, kCancelled };

/// A running read the watchdog keeps an eye on.
struct Watch {
  DuckConnection* connection;
  Clock::time_point deadline;  // Clock::time_point::max(): no time limit.
  std::function<bool()> cancelled;
  std::atomic<StopReason> stopped{StopReason::kNone};
};

/// One thread for the process that interrupts reads past their deadline or whose client has
/// gone. Interrupting under the mutex means a read that has unregistered is never touched.
class Watchdog {
 public:
  static Watchdog& Instance() {
    static Watchdog watchdog;
    return watchdog;
  }

  void Add(Watch* watch) {
    std::lock_guard lock(mutex_);
    watches_.push_back(watch);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }

  void Remove(Watch* watch) {
    std::lock_guard lock(mutex_);
    watches_.remove(watch);
  }

  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    constexpr auto kPollInterval = std::chrono::milliseconds(20);
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, kPollInterval, [&] { return stopping_; })) {
      const auto now = Clock::now();
      for (Watch* watch : watches_) {
        if (watch->stopped != StopReason::kNone) continue;
        StopReason reason = now >= watch->deadline                   ? StopReason::kTimeLimit
                            : watch->cancelled && watch->cancelled() ? StopReason::kCancelled
                                                                     : StopReason::kNone;
        if (reason == StopReason::kNone) continue;
        watch->stopped = reason;
        watch->connection->Interrupt();
      }
    }
  }

  std::thread thread_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::list<Watch*> watches_;
  bool stopping_ = false;
};

/// The version in a one-row result of `SELECT version FROM _teatree_version`.
Result<int64_t> VersionIn(const arrow::Table& table) {
  if (table.num_rows() != 1) return Status::Invalid("the model has no version row");
  ARROW_ASSIGN_OR_RAISE(auto scalar, table.column(0)->GetScalar(0));
  ARROW_ASSIGN_OR_RAISE(auto cast, scalar->CastTo(arrow::int64()));
  return std::static_pointer_cast<arrow::Int64Scalar>(cast)->value;
}

Result<std::vector<std::string>> UserTables(DuckConnection& connection) {
  ARROW_ASSIGN_OR_RAISE(auto table,
                        connection.QueryTable("SELECT name FROM _teatree_tables ORDER BY name"));
  std::vector<std::string> names;
  for (const auto& chunk : table->column(0)->chunks()) {
    const auto& strings = static_cast<const arrow::StringArray&>(*chunk);
    for (int64_t i = 0; i < strings.length(); ++i) names.emplace_back(strings.GetView(i));
  }
  return names;
}

}  // namespace

namespace {

/// A connection for reads with what every read runs on it, prepared once.
struct ReadConnection {
  std::unique_ptr<DuckConnection> connection;
  std::unique_ptr<ReadOnlyCheck> check;
  std::unique_ptr<DuckStatement> begin, version, rollback;

  static Result<std::unique_ptr<ReadConnection>> Make(DuckDatabase& db,
                                                      const ReadOnlyCheck::Options& check) {
    auto made = std::make_unique<ReadConnection>();
    ARROW_ASSIGN_OR_RAISE(made->connection, db.Connect());
    DuckConnection& connection = *made->connection;
    ARROW_ASSIGN_OR_RAISE(made->check, ReadOnlyCheck::Make(connection, check));
    ARROW_ASSIGN_OR_RAISE(made->begin, connection.Prepare("BEGIN TRANSACTION"));
    ARROW_ASSIGN_OR_RAISE(made->version,
                          connection.Prepare("SELECT version FROM _teatree_version"));
    ARROW_ASSIGN_OR_RAISE(made->rollback, connection.Prepare("ROLLBACK"));
    return made;
  }

  Result<int64_t> ReadVersion() {
    ARROW_ASSIGN_OR_RAISE(auto table, version->Query());
    return VersionIn(*table);
  }
};

/// Connections for reads, made on demand up to a maximum; Acquire() waits when all are busy.
class ConnectionPool {
 public:
  ConnectionPool(std::shared_ptr<DuckDatabase> db, int capacity, ReadOnlyCheck::Options check)
      : db_(std::move(db)), capacity_(capacity), check_(std::move(check)) {}

  Result<std::unique_ptr<ReadConnection>> Acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || created_ < capacity_; });
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    ++created_;
    lock.unlock();
    auto connection = ReadConnection::Make(*db_, check_);
    if (!connection.ok()) Forget();
    return connection;
  }

  void Release(std::unique_ptr<ReadConnection> connection) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    available_.notify_one();
  }

  /// Makes room for a new connection in place of one that was dropped.
  void Forget() {
    std::lock_guard lock(mutex_);
    --created_;
    available_.notify_one();
  }

 private:
  std::shared_ptr<DuckDatabase> db_;
  const int capacity_;
  const ReadOnlyCheck::Options check_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<ReadConnection>> idle_;
  int created_ = 0;
};

/// A pooled connection for one read and the version it reads: a version file's is fixed; the
/// live model's comes from a read-only transaction that the read then runs in. Gives the
/// connection back on destruction.
class Session {
 public:
  /// `fixed_version` > 0: a version file's, no transaction needed.
  static Result<std::unique_ptr<Session>> Begin(ConnectionPool& pool, int64_t fixed_version) {
    ARROW_ASSIGN_OR_RAISE(auto connection, pool.Acquire());
    auto session = std::unique_ptr<Session>(new Session(pool, std::move(connection)));
    session->version_ = fixed_version;
    if (fixed_version == 0) {
      ARROW_RETURN_NOT_OK(session->read_->begin->Execute());
      session->open_ = true;
      ARROW_ASSIGN_OR_RAISE(session->version_, session->read_->ReadVersion());
    }
    return session;
  }
  ~Session() {
    // A failed rollback leaves the connection unusable: drop it instead of pooling it.
    if (open_ && !read_->rollback->Execute().ok()) {
      read_.reset();
      pool_.Forget();
      return;
    }
    pool_.Release(std::move(read_));
  }
  DuckConnection& connection() { return *read_->connection; }
  ReadOnlyCheck& check() { return *read_->check; }
  int64_t version() const { return version_; }

 private:
  Session(ConnectionPool& pool, std::unique_ptr<ReadConnection> read)
      : pool_(pool), read_(std::move(read)) {}
  ConnectionPool& pool_;
  std::unique_ptr<ReadConnection> read_;
  bool open_ = false;
  int64_t version_ = 0;
};

/// A read's stream: enforces the limits and releases everything when destroyed.
class RunningRead final : public arrow::RecordBatchReader {
 public:
  RunningRead(std::shared_ptr<DuckReader> owner, std::unique_ptr<Session> session,
              const ReadRequest& request)
      : owner_(std::move(owner)), session_(std::move(session)), limits_(request.limits) {
    watch_.connection = &session_->connection();
    watch_.deadline =
        limits_.timeout.count() > 0 ? Clock::now() + limits_.timeout : Clock::time_point::max();
    watch_.cancelled = request.cancelled;
    Watchdog::Instance().Add(&watch_);
  }

  ~RunningRead() override {
    rows_.reset();
    Watchdog::Instance().Remove(&watch_);
  }

  Status Start(const FunctionSql& call) {
    auto rows = session_->connection().Stream(call.sql, call.params);
    if (!rows.ok()) return Explain(rows.status());
    rows_ = std::move(rows).ValueUnsafe();
    return Status::OK();
  }

  std::shared_ptr<arrow::Schema> schema() const override { return rows_->schema(); }

  Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    if (watch_.stopped != StopReason::kNone) return Explain(Status::OK());
    Status status = rows_->ReadNext(out);
    if (!status.ok()) return Explain(status);
    if (*out == nullptr) return Status::OK();
    for (const auto& column : (*out)->columns()) bytes_ += arrow::util::TotalBufferSize(*column);
    if (limits_.max_result_bytes > 0 && bytes_ > limits_.max_result_bytes) {
      out->reset();
      return Status::Invalid("query stopped: its result is larger than the limit of ",
                             limits_.max_result_bytes,
                             " bytes; select fewer rows or columns (WHERE, LIMIT)");
    }
    return Status::OK();
  }

 private:
  /// Turns an interrupt into what caused it.
  Status Explain(const Status& status) const {
    switch (watch_.stopped.load()) {
      case StopReason::kTimeLimit:
        return Status::Invalid("query stopped: it ran longer than the time limit of ",
                               limits_.timeout.count(),
                               " ms; narrow it (WHERE, LIMIT) or ask for a longer limit");
      case StopReason::kCancelled:
        return Status::Cancelled("query cancelled: the client went away");
      case StopReason::kNone:
        break;
    }
    return status;
  }

  std::shared_ptr<DuckReader> owner_;  // Keeps the database open while the read streams.
  std::unique_ptr<Session> session_;
  ReadLimits limits_;
  Watch watch_;
  std::unique_ptr<arrow::RecordBatchReader> rows_;
  int64_t bytes_ = 0;
};

}  // namespace

struct DuckReader::Impl {
  DuckReaderOptions options;
  FunctionRegistry builtins = FunctionRegistry::WithBuiltins();
  std::unique_ptr<ConnectionPool> pool;
  int64_t fixed_version = 0;  // A version file's; 0 for the live model.

  /// The function a read calls, if it may: a function that writes only for an engine.
  Result<const ModelFunction*> FindFunction(const ReadRequest& request) const;
  /// The statement and parameters a read runs, checked read-only.
  Result<FunctionSql> Plan(Session& session, const ReadRequest& request);
  /// Runs a native function for a read.
  Result<std::shared_ptr<arrow::Table>> RunNative(Session& session, const ModelFunction& function,
                                                  const ReadRequest& request) const;
};

Result<const ModelFunction*> DuckReader::Impl::FindFunction(const ReadRequest& request) const {
  const FunctionRegistry& registry = options.functions ? *options.functions : builtins;
  ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, registry.Lookup(request.function));
  if (function->write && !request.writing) {
    return Status::Invalid("function ", request.function, " writes table ", function->write->table,
                           ": invoke it through the request queue (teatree submit ... invoke)");
  }
  return function;
}

Result<std::shared_ptr<arrow::Table>> DuckReader::Impl::RunNative(
    Session& session, const ModelFunction& function, const ReadRequest& request) const {
  ARROW_ASSIGN_OR_RAISE(auto args, BindArguments(function, request.args));
  StepRecorder steps;
  std::unique_ptr<FunctionContext> context;
  if (options.native_context) {
    context = options.native_context(std::move(args), steps);
  } else {
    ARROW_ASSIGN_OR_RAISE(auto tables, UserTables(session.connection()));
    context = std::make_unique<DuckFunctionContext>(session.connection(), std::move(tables),
                                                    std::move(args), steps);
  }
  return RunNativeFunction(function, *context);
}

Result<FunctionSql> DuckReader::Impl::Plan(Session& session, const ReadRequest& request) {
  if (request.sql.empty() == request.function.empty()) {
    return Status::Invalid("a read needs either sql or function (not both)");
  }
  FunctionSql call{request.sql, {}};
  if (!request.function.empty()) {
    ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, FindFunction(request));
    ARROW_ASSIGN_OR_RAISE(auto args, BindArguments(*function, request.args));
    ARROW_ASSIGN_OR_RAISE(auto tables, UserTables(session.connection()));
    ARROW_ASSIGN_OR_RAISE(call, FunctionCallSql(*function, args, tables));
  }
  ARROW_RETURN_NOT_OK(session.check().Check(call.sql, session.version()));
  return call;
}

DuckReader::DuckReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DuckReader::~DuckReader() = default;

std::string ConfineFileAccessSql(const std::vector<std::filesystem::path>& allowed_dirs,
                                 const std::filesystem::path& temp_dir, bool lock) {
  std::string allowed;
  for (const auto& dir : allowed_dirs) {
    std::string path = std::filesystem::absolute(dir).lexically_normal().string();
    if (!path.ends_with('/')) path += '/';
    allowed += (allowed.empty() ? "" : ", ") + SqlStringLiteral(path);
  }
  const std::string temp = std::filesystem::absolute(temp_dir).lexically_normal().string();
  return "SET temp_directory = " + SqlStringLiteral(temp) + "; SET allowed_directories = [" +
         allowed + "]; SET enable_external_access = false; " +
         (lock ? kReadSettingsSql : kUnlockedReadSettingsSql);
}

Result<std::shared_ptr<DuckReader>> DuckReader::OpenFile(const std::filesystem::path& file,
                                                         const DuckReaderOptions& options) {
  DuckDatabaseOptions db_options{.path = file.string(), .read_only = true};
  if (!options.memory_limit.empty()) db_options.settings["memory_limit"] = options.memory_limit;
  ARROW_ASSIGN_OR_RAISE(auto db, DuckDatabase::Open(db_options));
  {
    // A linked version file of an Arrow-engine model has views over the model's Parquet files
    // (D/models/<m>/datasets/, beside versions/): DuckDB may read there and nowhere else.
    const auto model_dir = std::filesystem::absolute(file).parent_path().parent_path();
    ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
    ARROW_RETURN_NOT_OK(
        connection->Execute(ConfineFileAccessSql({model_dir / "datasets"}, model_dir / "tmp")));
  }
  auto reader = Make(std::move(db), options);
  // Nothing changes a version file: its version is read once.
  ARROW_ASSIGN_OR_RAISE(auto session, Session::Begin(*reader->impl_->pool, 0));
  reader->impl_->fixed_version = session->version();
  return reader;
}

std::shared_ptr<DuckReader> DuckReader::Make(std::shared_ptr<DuckDatabase> db,
                                             const DuckReaderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->pool = std::make_unique<ConnectionPool>(
      std::move(db), options.connections,
      ReadOnlyCheck::Options{.tables_dropped_at = options.tables_dropped_at});
  return std::shared_ptr<DuckReader>(new DuckReader(std::move(impl)));
}

Result<ReadStream> DuckReader::Read(const ReadRequest& request) {
  ARROW_ASSIGN_OR_RAISE(auto session, Session::Begin(*impl_->pool, impl_->fixed_version));
  if (!request.function.empty() && request.sql.empty()) {
    ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, impl_->FindFunction(request));
    if (function->native) {
      ARROW_ASSIGN_OR_RAISE(auto result, impl_->RunNative(*session, *function, request));
      return ReadStream{.version = session->version(),
                        .reader = std::make_unique<arrow::TableBatchReader>(std::move(result))};
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto call, impl_->Plan(*session, request));
  ReadStream stream{.version = session->version()};
  auto read = std::make_unique<RunningRead>(shared_from_this(), std::move(session), request);
  ARROW_RETURN_NOT_OK(read->Start(call));
  stream.reader = std::move(read);
  return stream;
}

Result<std::shared_ptr<arrow::Schema>> DuckReader::Describe(const ReadRequest& request) {
  ARROW_ASSIGN_OR_RAISE(auto session, Session::Begin(*impl_->pool, impl_->fixed_version));
  if (!request.function.empty() && request.sql.empty()) {
    ARROW_ASSIGN_OR_RAISE(const ModelFunction* function, impl_->FindFunction(request));
    if (function->native) {
      // A native function's columns are known once it ran.
      ARROW_ASSIGN_OR_RAISE(auto result, impl_->RunNative(*session, *function, request));
      return result->schema();
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto call, impl_->Plan(*session, request));
  // Describe binds without parameter values: a parameter's type is what the query makes it.
  return session->connection().Describe(call.sql);
}

Result<std::vector<TableInfo>> DuckReader::ListTables(int64_t* version) {
  ARROW_ASSIGN_OR_RAISE(auto session, Session::Begin(*impl_->pool, impl_->fixed_version));
  DuckConnection& connection = session->connection();
  if (version != nullptr) *version = session->version();
  ARROW_ASSIGN_OR_RAISE(auto names, UserTables(connection));
  std::vector<TableInfo> tables;
  for (const auto& name : names) {
    ARROW_ASSIGN_OR_RAISE(auto count,
                          connection.QueryTable("SELECT count(*) FROM " + SqlIdentifier(name)));
    ARROW_ASSIGN_OR_RAISE(auto scalar, count->column(0)->GetScalar(0));
    tables.push_back({name, std::static_pointer_cast<arrow::Int64Scalar>(scalar)->value});
  }
  return tables;
}

}  // namespace teatree
