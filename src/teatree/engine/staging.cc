#include "teatree/engine/staging.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "teatree/common/failure.h"
#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPartialPrefix = ".upload-";
/// An unfinished upload untouched for this long has lost its client.
constexpr auto kAbandonedAfter = std::chrono::minutes(10);
/// How often (in bytes written) an upload looks at the free space left.
constexpr int64_t kSpaceCheckBytes = int64_t{64} << 20;
/// Uploads are written around the page cache (O_DIRECT) in blocks of this size, aligned to
/// kDirectAlignment: the disk then writes as they arrive, in large requests, and the fsync
/// that makes an upload durable has nothing left to flush. Measured on a virtual disk that
/// wrote back cached pages at 100-190 MB/s: about 1 GB/s.
constexpr size_t kDirectBlock = size_t{4} << 20;
constexpr size_t kDirectAlignment = 4096;

Result<std::string> NewStagedId() {
  unsigned char random[kStagedIdLength / 2];
  if (RAND_bytes(random, sizeof(random)) != 1) {
    return Status::UnknownError("cannot draw a random upload id (OpenSSL RAND_bytes)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char byte : random) {
    id += kHex[byte >> 4];
    id += kHex[byte & 15];
  }
  return id;
}

Status WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::IOError("the upload could not be stored (", std::strerror(errno),
                             "): try again later");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

}  // namespace

fs::path StagingDir(const fs::path& data_dir, const std::string& model) {
  return data_dir / "staging" / model;
}

Result<fs::path> FindStaged(const fs::path& dir, const std::string& id) {
  ARROW_RETURN_NOT_OK(ValidateStagedId(id));
  const fs::path path = dir / id;
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec))) {
    return Status::Invalid("staged upload ", id,
                           " is not here: it was never uploaded to this model, was already "
                           "applied, or waited longer than the server keeps uploads; upload "
                           "the file again and submit a request naming the new id");
  }
  return path;
}

void RemoveStaged(const fs::path& dir, const std::string& id) {
  if (!ValidateStagedId(id).ok()) return;
  std::error_code ignored;
  fs::remove(dir / id, ignored);
}

int SweepStaging(const fs::path& dir, std::chrono::seconds keep) {
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool partial = name.starts_with(kPartialPrefix);
    if (!partial && !ValidateStagedId(name).ok()) continue;
    std::error_code stat_error;
    const auto written = fs::last_write_time(it->path(), stat_error);
    if (stat_error) continue;
    const auto age = now - written;
    if (age >
        (partial ? std::chrono::duration_cast<std::chrono::seconds>(kAbandonedAfter) : keep)) {
      std::error_code ignored;
      if (fs::remove(it->path(), ignored)) ++removed;
    }
  }
  return removed;
}

Result<std::unique_ptr<StagedUpload>> StagedUpload::Begin(const fs::path& dir,
                                                          const StagingLimits& limits) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("the staging area cannot be created: ", ec.message());
  SweepStaging(dir, limits.keep);
  std::string tmp = (dir / (std::string(kPartialPrefix) + "XXXXXX")).string();
  // Filesystems without O_DIRECT (tmpfs) take the upload through the page cache.
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC | O_DIRECT);
  const bool direct = fd >= 0;
  if (!direct && errno == EINVAL) {
    tmp = (dir / (std::string(kPartialPrefix) + "XXXXXX")).string();
    fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  }
  if (fd < 0) {
    return Status::IOError("the staging area cannot take an upload: ", std::strerror(errno));
  }
  auto upload = std::unique_ptr<StagedUpload>(new StagedUpload(dir, tmp, fd, limits));
  upload->direct_ = direct;
  if (upload->block_ == nullptr) return Status::OutOfMemory("no memory for an upload's buffer");
  ARROW_RETURN_NOT_OK(upload->CheckSpace());
  return upload;
}

StagedUpload::StagedUpload(fs::path dir, fs::path tmp, int fd, StagingLimits limits)
    : dir_(std::move(dir)),
      tmp_(std::move(tmp)),
      fd_(fd),
      limits_(limits),
      block_(static_cast<char*>(std::aligned_alloc(kDirectAlignment, kDirectBlock))) {}

StagedUpload::~StagedUpload() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) {
    std::error_code ignored;
    fs::remove(tmp_, ignored);
  }
}

Status StagedUpload::CheckSpace() {
  checked_at_ = bytes_;
  std::error_code ec;
  const auto space = fs::space(dir_, ec);
  if (!ec && static_cast<int64_t>(space.available) < limits_.min_free_bytes) {
    return Unavailable("the server's staging area is short of disk space (",
                       static_cast<int64_t>(space.available >> 20), " MiB free, ",
                       limits_.min_free_bytes >> 20,
                       " MiB must stay free): try again once earlier uploads are applied");
  }
  return Status::OK();
}

Status StagedUpload::Write(std::string_view bytes) {
  if (fd_ < 0) return Status::Invalid("this upload is finished");
  if (bytes_ + static_cast<int64_t>(bytes.size()) > limits_.max_bytes) {
    return Status::CapacityError("the upload is larger than the server takes (",
                                 limits_.max_bytes >> 20,
                                 " MiB, its --max-upload-mb): split the file into parts and "
                                 "upload and submit each");
  }
  bytes_ += static_cast<int64_t>(bytes.size());
  while (!bytes.empty()) {
    const size_t taken = std::min(bytes.size(), kDirectBlock - filled_);
    std::memcpy(block_.get() + filled_, bytes.data(), taken);
    filled_ += taken;
    bytes.remove_prefix(taken);
    if (filled_ == kDirectBlock) {
      ARROW_RETURN_NOT_OK(WriteAll(fd_, {block_.get(), filled_}));
      filled_ = 0;
    }
  }
  if (bytes_ - checked_at_ >= kSpaceCheckBytes) ARROW_RETURN_NOT_OK(CheckSpace());
  return Status::OK();
}

Result<StagedFile> StagedUpload::Finish() {
  if (fd_ < 0) return Status::Invalid("this upload is finished");
  // The last block goes out whole (direct writes are whole blocks of kDirectAlignment), then
  // the file is cut to the bytes received.
  const size_t tail =
      direct_ ? (filled_ + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment : filled_;
  std::memset(block_.get() + filled_, 0, tail - filled_);
  Status written = WriteAll(fd_, {block_.get(), tail});
  if (written.ok() && ::ftruncate(fd_, bytes_) != 0) {
    written = Status::IOError("the upload could not be stored (", std::strerror(errno), ")");
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && written.ok()) {
    written = Status::IOError("the upload could not be stored (", std::strerror(errno), ")");
  }
  ARROW_RETURN_NOT_OK(written);
  ARROW_ASSIGN_OR_RAISE(std::string id, NewStagedId());
  // Durable before its id is handed out: a request that names it may be acknowledged next.
  if (Status renamed = DurableRename(tmp_, dir_ / id); !renamed.ok()) {
    return Status::IOError("the upload could not be stored durably on the server: try again");
  }
  tmp_.clear();
  return StagedFile{.id = std::move(id), .bytes = bytes_};
}

}  // namespace teatree
