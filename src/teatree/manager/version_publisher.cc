#include "teatree/manager/version_publisher.h"

#include <arrow/api.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

#include "teatree/archive/archive.h"
#include "teatree/common/fault_point.h"
#include "teatree/common/file_util.h"
#include "teatree/common/sql_quote.h"
#include "teatree/engine/arrow/version_reads.h"
#include "teatree/engine/duckdb/duckdb_database.h"
#include "teatree/engine/engine.h"
#include "teatree/manager/catalog_recorder.h"
#include "teatree/manager/model_manager.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr auto kRetryDelay = std::chrono::seconds(1);
/// Under PublisherOptions::pace_by_cost, publications start at most once per this many
/// times what the last one cost.
constexpr int kCostsPerPublication = 4;
/// The publisher thread's nice value (0 is the default, 19 the lowest priority).
constexpr int kPublisherNice = 10;

/// The checksum file beside a version file, in `sha256sum -c` format.
fs::path ChecksumPath(const fs::path& version_file) { return version_file.string() + ".sha256"; }

}  // namespace

VersionPublisher::VersionPublisher(const PublisherOptions& options, Engine& engine,
                                   std::mutex& writer_mutex, CatalogRecorder& catalog,
                                   Archive* archive, int64_t published)
    : options_(options),
      engine_(engine),
      writer_mutex_(writer_mutex),
      catalog_(catalog),
      archive_(archive),
      published_(published),
      written_(published) {}

VersionPublisher::~VersionPublisher() { (void)Stop(); }

void VersionPublisher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void VersionPublisher::Notify(bool force, bool immediate) {
  std::lock_guard lock(mutex_);
  force_ = force_ || force;
  immediate_ = immediate_ || immediate;
  changed_.notify_all();
}

Status VersionPublisher::WaitWritten(int64_t version, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return written_ >= version || stopping_; }) ||
      written_ < version) {
    return Status::IOError("the file of version ", version, " of model ", options_.model,
                           " is not written yet",
                           last_error_.ok() ? "" : ": " + last_error_.message());
  }
  return Status::OK();
}

int64_t VersionPublisher::published() const {
  std::lock_guard lock(mutex_);
  return published_;
}

Status VersionPublisher::WaitPublished(int64_t version, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return published_ >= version || stopping_; }) ||
      published_ < version) {
    return Status::IOError("version ", version, " of model ", options_.model,
                           " was not published within ", timeout.count(), " ms",
                           last_error_.ok() ? "" : ": " + last_error_.message());
  }
  return Status::OK();
}

Status VersionPublisher::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return last_error_;
    stopping_ = true;
    changed_.notify_all();
  }
  thread_.join();
  std::lock_guard lock(mutex_);
  return last_error_;
}

void VersionPublisher::Run() {
  // Publishing is background work: on a busy machine the threads that apply and acknowledge
  // requests come first (Linux gives each thread its own nice value).
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kPublisherNice);
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || force_ || engine_.version() > published_; });
      const bool pending = force_ || engine_.version() > published_;
      if (!pending && stopping_) return;
      // Coalesce: wait out the interval since the last publication, unless forced.
      auto interval =
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.min_interval);
      if (options_.pace_by_cost && unfinished_.empty()) {
        interval = std::min(interval, kCostsPerPublication * last_cost_);
      }
      changed_.wait_until(lock, last_publish_ + interval,
                          [&] { return stopping_ || force_ || immediate_; });
      force_ = false;
      immediate_ = false;
      last_publish_ = std::chrono::steady_clock::now();
    }
    Status status = PublishOnce();
    std::unique_lock lock(mutex_);
    last_cost_ = std::chrono::steady_clock::now() - last_publish_;
    last_error_ = status;
    changed_.notify_all();
    if (!status.ok()) {
      spdlog::error("model {}: publishing failed, retrying: {}", options_.model, status.message());
      if (stopping_) return;  // Reconciled at the next start.
      changed_.wait_for(lock, kRetryDelay, [&] { return stopping_; });
    }
  }
}

Status VersionPublisher::PublishOnce() {
  // Versions whose file is in place but whose archiving or recording failed (the archive or
  // the catalog did not answer) are finished first: every published version ends archived.
  while (!unfinished_.empty()) {
    ARROW_RETURN_NOT_OK(Finish(*unfinished_.begin()));
    unfinished_.erase(unfinished_.begin());
    unfinished_count_ = static_cast<int64_t>(unfinished_.size());
  }
  Snapshot snapshot;
  {
    std::lock_guard writer(writer_mutex_);
    ARROW_ASSIGN_OR_RAISE(snapshot, engine_.PrepareSnapshot());
  }
  if (snapshot.version == 0) return Status::OK();  // Nothing to publish before the first batch.
  const fs::path target = VersionFilePath(options_.data_dir, options_.model, snapshot.version);
  if (!fs::exists(target)) {
    const fs::path tmp = target.string() + ".tmp";
    std::error_code ignored;
    fs::remove(tmp, ignored);
    ARROW_RETURN_NOT_OK(engine_.WriteVersionFile(snapshot, tmp));
    snapshot.hold.reset();  // The engine may change its files again.
    ARROW_RETURN_NOT_OK(SyncFile(tmp));
    ARROW_ASSIGN_OR_RAISE(std::string checksum, Sha256File(tmp));
    ARROW_RETURN_NOT_OK(WriteFileAtomically(ChecksumPath(target),
                                            checksum + "  " + target.filename().string() + "\n"));
    FaultPoint("publish.before_rename");
    ARROW_RETURN_NOT_OK(DurableRename(tmp, target));
    FaultPoint("publish.after_rename");
  }
  snapshot.hold.reset();  // Also when the file was there already.
  {
    std::lock_guard lock(mutex_);
    written_ = std::max(written_, snapshot.version);
    changed_.notify_all();
  }
  if (Status finished = Finish(snapshot.version); !finished.ok()) {
    unfinished_.insert(snapshot.version);
    unfinished_count_ = static_cast<int64_t>(unfinished_.size());
    return finished;
  }
  ARROW_RETURN_NOT_OK(RemoveExpiredVersions());
  {
    std::lock_guard lock(mutex_);
    published_ = std::max(published_, snapshot.version);
    changed_.notify_all();
  }
  if (options_.on_published) options_.on_published(snapshot.version);
  return Status::OK();
}

Status VersionPublisher::Finish(int64_t version) {
  const fs::path file = VersionFilePath(options_.data_dir, options_.model, version);
  ARROW_ASSIGN_OR_RAISE(
      auto db, DuckDatabase::Open(
                   {.path = file.string(), .read_only = true, .settings = {{"threads", "1"}}}));
  ARROW_ASSIGN_OR_RAISE(auto connection, db->Connect());
  ARROW_ASSIGN_OR_RAISE(auto tables,
                        connection->QueryTable("SELECT name FROM _teatree_tables ORDER BY name"));
  std::string checksum;
  {
    std::ifstream in(ChecksumPath(file));
    in >> checksum;
  }
  std::vector<ContentRecord> records;
  for (int64_t i = 0; i < tables->num_rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto scalar, tables->column(0)->GetScalar(i));
    const std::string table = scalar->ToString();
    ContentRecord record{.model = options_.model,
                         .version = version,
                         .table_name = table,
                         .version_file_uri = "file://" + fs::absolute(file).string(),
                         .checksum = checksum};
    if (archive_ != nullptr) {
      // Streamed, chunk by chunk, into the Parquet writer: a table is never held whole (a
      // manager in a pod must stay inside its memory limit whatever the table's size).
      ARROW_ASSIGN_OR_RAISE(auto rows, connection->Stream("SELECT * FROM " + SqlIdentifier(table)));
      ARROW_ASSIGN_OR_RAISE(auto archived,
                            archive_->WriteTable(options_.model, version, table, *rows));
      record.rows = archived.rows;
      record.bytes = archived.bytes;
      record.archive_uri = archived.uri;
      FaultPoint("archive.upload");  // One table archived, the others not yet.
    } else {
      // Without an archive only the row count is needed: let DuckDB count, not materialize.
      ARROW_ASSIGN_OR_RAISE(auto count,
                            connection->QueryTable("SELECT count(*) FROM " + SqlIdentifier(table)));
      ARROW_ASSIGN_OR_RAISE(auto scalar, count->column(0)->GetScalar(0));
      record.rows = std::static_pointer_cast<arrow::Int64Scalar>(scalar)->value;
    }
    records.push_back(std::move(record));
  }
  if (archive_ != nullptr && options_.mirror_versions) ARROW_RETURN_NOT_OK(Mirror(version, file));
  catalog_.Published(version, std::move(records));
  return Status::OK();
}

Status VersionPublisher::Mirror(int64_t version, const fs::path& file) {
  // What leaves the machine is self-contained: an Arrow-engine version is exported for it.
  ARROW_ASSIGN_OR_RAISE(auto shipped, ShippableVersionFile(file));
  Status mirrored = [&]() -> Status {
    fs::path checksum = ChecksumPath(file);
    if (shipped.temporary) {
      ARROW_ASSIGN_OR_RAISE(auto sha256, Sha256File(shipped.path));
      checksum = shipped.path.string() + ".sha256";
      ARROW_RETURN_NOT_OK(
          WriteFileAtomically(checksum, sha256 + "  " + std::string(kMirroredVersionFile) + "\n"));
    }
    const std::string name = kMirroredVersionFile;
    ARROW_RETURN_NOT_OK(archive_->PutFile(options_.model, version, name, shipped.path).status());
    return archive_->PutFile(options_.model, version, name + ".sha256", checksum).status();
  }();
  if (shipped.temporary) {
    std::error_code ignored;
    fs::remove(shipped.path, ignored);
    fs::remove(shipped.path.string() + ".sha256", ignored);
  }
  return mirrored;
}

Status VersionPublisher::RemoveExpiredVersions() {
  ARROW_ASSIGN_OR_RAISE(auto versions, ListVersionFiles(options_.data_dir, options_.model));
  // Keep the newest keep_versions; an older one goes once its successor has been published
  // for longer than the grace period, so readers of it have time to move on.
  const size_t keep = static_cast<size_t>(std::max(options_.keep_versions, 1));
  for (size_t i = 0; i + keep < versions.size(); ++i) {
    const fs::path file = VersionFilePath(options_.data_dir, options_.model, versions[i]);
    const fs::path successor = VersionFilePath(options_.data_dir, options_.model, versions[i + 1]);
    std::error_code ec;
    auto age = fs::file_time_type::clock::now() - fs::last_write_time(successor, ec);
    if (ec || age < options_.retention_grace) continue;
    fs::remove(ChecksumPath(file), ec);
    fs::remove(file, ec);
  }
  return Status::OK();
}

}  // namespace teatree
