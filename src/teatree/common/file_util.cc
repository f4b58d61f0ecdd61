#include "teatree/common/file_util.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

namespace teatree {
namespace {

/// Large enough that per-call overhead vanishes next to the I/O; small enough for any heap.
constexpr size_t kChunkBytes = size_t{1} << 20;

/// Owns a file descriptor. Close() reports close(2)'s error, which on NFS may be the first
/// sign that a write failed; the destructor closes silently.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Closes now; returns close(2)'s errno, or 0.
  int Close() {
    int fd = std::exchange(fd_, -1);
    return fd >= 0 && ::close(fd) != 0 ? errno : 0;
  }

 private:
  int fd_;
};

std::string Quoted(const std::filesystem::path& path) { return "\"" + path.string() + "\""; }

/// What a user can do about a failed system call, by errno.
std::string_view HintFor(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return " (check that the path exists)";
    case EACCES:
    case EPERM:
      return " (check the permissions of the file and its directory)";
    case ENOSPC:
    case EDQUOT:
      return " (free disk space or raise the quota)";
    case EROFS:
      return " (the filesystem is mounted read-only)";
    default:
      return "";
  }
}

/// The one place an errno becomes a Status: what failed, on which path, why, what to do.
Status ErrnoError(int err, std::string_view action, const std::filesystem::path& path) {
  return Status::IOError("cannot ", action, " ", Quoted(path), ": ", std::strerror(err),
                         HintFor(err));
}

std::filesystem::path ParentDir(const std::filesystem::path& path) {
  std::filesystem::path parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

/// Writes all of `data`, retrying short writes and EINTR.
Status WriteAll(int fd, const char* data, size_t size, const std::filesystem::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

/// Reads up to `size` bytes, retrying EINTR; 0 means end of file.
Result<size_t> ReadSome(int fd, char* data, size_t size, const std::filesystem::path& path) {
  for (;;) {
    ssize_t n = ::read(fd, data, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoError(errno, "read", path);
  }
}

bool CopyFileRangeUnsupported(int err) {
  // EXDEV: across filesystems before Linux 5.19; ENOSYS: old kernel or seccomp filter;
  // EOPNOTSUPP/EINVAL: the filesystem (or the file type) cannot do it.
  return err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL || err == EBADF;
}

/// Copies with copy_file_range until end of file. Returns false, having copied nothing,
/// when the kernel or filesystem cannot do it here, so the caller falls back.
Result<bool> CopyWithCopyFileRange(int in, int out, off_t size, const std::filesystem::path& from,
                                   const std::filesystem::path& to) {
  loff_t in_offset = 0;
  loff_t out_offset = 0;
  for (;;) {
    ssize_t n = ::copy_file_range(in, &in_offset, out, &out_offset, size_t{1} << 30, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (out_offset == 0 && CopyFileRangeUnsupported(errno)) return false;
      return Status::IOError("cannot copy ", Quoted(from), " to ", Quoted(to), ": ",
                             std::strerror(errno), HintFor(errno));
    }
    if (n == 0) {
      // Some filesystems (procfs, sysfs, some FUSE) report 0 instead of an error.
      return out_offset > 0 || size == 0;
    }
  }
}

Status CopyWithReadWrite(int in, int out, const std::filesystem::path& from,
                         const std::filesystem::path& to) {
  std::vector<char> buffer(kChunkBytes);
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(size_t n, ReadSome(in, buffer.data(), buffer.size(), from));
    if (n == 0) return Status::OK();
    ARROW_RETURN_NOT_OK(WriteAll(out, buffer.data(), n, to));
  }
}

/// Fills the empty file `out` from `in`, fastest method first.
Result<CopyMethod> CopyContents(int in, int out, off_t size, const std::filesystem::path& from,
                                const std::filesystem::path& to) {
  // Any FICLONE failure (EOPNOTSUPP on ext4, EXDEV across filesystems, EINVAL on unaligned
  // sizes on some filesystems) just means "no sharing here".
  if (::ioctl(out, FICLONE, in) == 0) return CopyMethod::kReflink;
  ARROW_ASSIGN_OR_RAISE(bool copied, CopyWithCopyFileRange(in, out, size, from, to));
  if (copied) return CopyMethod::kCopyFileRange;
  ARROW_RETURN_NOT_OK(CopyWithReadWrite(in, out, from, to));
  return CopyMethod::kReadWrite;
}

Status SyncPath(const std::filesystem::path& path, int flags, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), flags | O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, std::string("open ") + std::string(what), path);
  if (::fsync(fd.get()) != 0)
    return ErrnoError(errno, std::string("fsync ") + std::string(what), path);
  return Status::OK();
}

/// An OpenSSL digest context, freed on scope exit.
using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string ToHex(const unsigned char* bytes, unsigned int size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size_t{size} * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0xf]);
  }
  return hex;
}

}  // namespace

std::string_view CopyMethodName(CopyMethod method) {
  switch (method) {
    case CopyMethod::kReflink:
      return "reflink";
    case CopyMethod::kCopyFileRange:
      return "copy_file_range";
    case CopyMethod::kReadWrite:
      return "read/write";
  }
  return "unknown";
}

Result<CopyMethod> CopyFileFast(const std::filesystem::path& from,
                                const std::filesystem::path& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoError(errno, "open the copy source", from);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return ErrnoError(errno, "stat the copy source", from);
  if (!S_ISREG(st.st_mode)) {
    return Status::Invalid("cannot copy ", Quoted(from), ": not a regular file");
  }
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777));
  if (!out.valid()) {
    if (errno == EEXIST) {
      return Status::AlreadyExists("cannot copy ", Quoted(from), " to ", Quoted(to),
                                   ": the target exists (remove it first, or copy to a new "
                                   "name and publish with DurableRename)");
    }
    return ErrnoError(errno, "create the copy target", to);
  }
  Result<CopyMethod> method = CopyContents(in.get(), out.get(), st.st_size, from, to);
  if (int err = out.Close(); err != 0 && method.ok()) {
    method = ErrnoError(err, "close the copy target", to);
  }
  if (!method.ok()) ::unlink(to.c_str());  // Never leave a partial copy behind.
  return method;
}

Status SyncFile(const std::filesystem::path& path) { return SyncPath(path, 0, "file"); }

Status SyncDirectory(const std::filesystem::path& dir) {
  return SyncPath(dir, O_DIRECTORY, "directory");
}

Status DurableRename(const std::filesystem::path& tmp, const std::filesystem::path& target) {
  ARROW_RETURN_NOT_OK(SyncFile(tmp));
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    return Status::IOError("cannot rename ", Quoted(tmp), " to ", Quoted(target), ": ",
                           std::strerror(err),
                           err == EXDEV ? " (both must be on the same filesystem)" : HintFor(err));
  }
  const std::filesystem::path target_dir = ParentDir(target);
  ARROW_RETURN_NOT_OK(SyncDirectory(target_dir));
  const std::filesystem::path tmp_dir = ParentDir(tmp);
  if (tmp_dir.lexically_normal() != target_dir.lexically_normal()) {
    ARROW_RETURN_NOT_OK(SyncDirectory(tmp_dir));
  }
  return Status::OK();
}

Status WriteFileAtomically(const std::filesystem::path& target, std::string_view contents) {
  std::string tmp =
      (ParentDir(target) / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "create a temporary file beside", target);
  Status status = WriteAll(fd.get(), contents.data(), contents.size(), tmp);
  if (status.ok() && ::fchmod(fd.get(), 0644) != 0) status = ErrnoError(errno, "chmod", tmp);
  if (int err = fd.Close(); err != 0 && status.ok()) status = ErrnoError(err, "close", tmp);
  if (status.ok()) status = DurableRename(tmp, target);
  if (!status.ok()) ::unlink(tmp.c_str());  // ENOENT once the rename happened: harmless.
  return status;
}

Result<std::filesystem::path> CreateTempFileBeside(const std::filesystem::path& target) {
  std::string tmp =
      (ParentDir(target) / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "create a temporary file beside", target);
  Status status;
  if (::fchmod(fd.get(), 0644) != 0) status = ErrnoError(errno, "chmod", tmp);
  if (int err = fd.Close(); err != 0 && status.ok()) status = ErrnoError(err, "close", tmp);
  if (!status.ok()) ::unlink(tmp.c_str());
  ARROW_RETURN_NOT_OK(status);
  return std::filesystem::path(tmp);
}

Result<std::string> Sha256File(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open for hashing", path);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);  // Only a hint.
  DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (context == nullptr || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
    return Status::UnknownError("cannot start SHA-256 (OpenSSL) for ", Quoted(path));
  }
  std::vector<char> buffer(kChunkBytes);
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(size_t n, ReadSome(fd.get(), buffer.data(), buffer.size(), path));
    if (n == 0) break;
    if (EVP_DigestUpdate(context.get(), buffer.data(), n) != 1) {
      return Status::UnknownError("SHA-256 (OpenSSL) failed while hashing ", Quoted(path));
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(context.get(), digest, &size) != 1) {
    return Status::UnknownError("SHA-256 (OpenSSL) failed while hashing ", Quoted(path));
  }
  return ToHex(digest, size);
}

std::string Sha256Hex(std::string_view data) { return Sha256Hex({data}); }

std::string Sha256Hex(std::initializer_list<std::string_view> parts) {
  DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  bool ok = context != nullptr && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(context.get(), part.data(), part.size()) == 1;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!ok || EVP_DigestFinal_ex(context.get(), digest, &size) != 1) {
    // SHA-256 over memory fails only if OpenSSL itself is broken (e.g. a FIPS provider that
    // failed its self-test); there is no sensible value to return.
    std::fprintf(stderr, "teatree: OpenSSL cannot compute SHA-256\n");
    std::abort();
  }
  return ToHex(digest, size);
}

Result<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read ", path.string());
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read ", path.string());
  return contents.str();
}

bool Writable(const std::filesystem::path& dir) {
  std::error_code error;
  return std::filesystem::is_directory(dir, error) && ::access(dir.c_str(), W_OK | X_OK) == 0;
}

Result<std::filesystem::path> SelfPath() {
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    return Status::IOError("cannot find the running program (/proc/self/exe): ", error.message());
  }
  return self;
}

std::optional<std::filesystem::path> BundledProgram(const std::string& name) {
  auto self = SelfPath();
  if (!self.ok()) return std::nullopt;
  const auto program =
      (self->parent_path() / ".." / "libexec" / "teatree" / name).lexically_normal();
  std::error_code error;
  if (!std::filesystem::exists(program, error)) return std::nullopt;
  return program;
}

}  // namespace teatree
