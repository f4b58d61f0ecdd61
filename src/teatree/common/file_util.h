#pragma once

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "teatree/common/status.h"

namespace teatree {

/// How CopyFileFast() copied a file, fastest first.
enum class CopyMethod {
  /// The copy shares the source's blocks (ioctl FICLONE on btrfs, XFS, bcachefs, ...): O(1).
  kReflink,
  /// The kernel copied the bytes (copy_file_range): no round trip through user space, and
  /// NFS or overlay filesystems may offload it to the server or share blocks.
  kCopyFileRange,
  /// Plain read()/write() through a user-space buffer.
  kReadWrite,
};

/// "reflink", "copy_file_range" or "read/write".
std::string_view CopyMethodName(CopyMethod method);

/// Copies `from` to `to` (which must not exist): a reflink (ioctl FICLONE) when the filesystem
/// shares blocks, else copy_file_range in a loop, else read/write. The copy gets the source's
/// permission bits. Does not fsync: publish the copy with DurableRename(). On failure `to` is
/// removed. Returns the method used. Thread-safe.
Result<CopyMethod> CopyFileFast(const std::filesystem::path& from, const std::filesystem::path& to);

/// fsync(2) of a file: its data and metadata reach stable storage.
Status SyncFile(const std::filesystem::path& path);

/// fsync(2) of a directory: entries created, renamed or removed in it become durable.
Status SyncDirectory(const std::filesystem::path& dir);

/// Publishes `tmp` as `target` durably: fsync `tmp`, rename it over `target` (atomically
/// replacing any existing file), fsync the directory (both directories if they differ).
/// Both must be on the same filesystem.
Status DurableRename(const std::filesystem::path& tmp, const std::filesystem::path& target);

/// Writes `contents` to `target` atomically and durably: a temporary file beside it, fsync,
/// rename, fsync of the directory. Readers see the old contents or the new, never a mix; the
/// temporary is removed on failure. The file gets mode 0644.
Status WriteFileAtomically(const std::filesystem::path& target, std::string_view contents);

/// Creates an empty file of a name no one else uses, beside `target` (same directory, so
/// DurableRename() can publish it as `target`): ".<name>.tmp-XXXXXX", mode 0644. The caller
/// writes it and removes it if it does not rename it.
Result<std::filesystem::path> CreateTempFileBeside(const std::filesystem::path& target);
/// The whole contents of a (small) file.
Result<std::string> ReadFileToString(const std::filesystem::path& path);

/// SHA-256 of a file's contents as 64 lowercase hex digits, read in large chunks.
Result<std::string> Sha256File(const std::filesystem::path& path);

/// SHA-256 of `data` as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view data);
/// SHA-256 of the parts one after another, as 64 lowercase hex digits.
std::string Sha256Hex(std::initializer_list<std::string_view> parts);

/// Whether this process may create files in `dir` (an existing directory) now.
bool Writable(const std::filesystem::path& dir);

/// The running program's own file (/proc/self/exe).
Result<std::filesystem::path> SelfPath();

/// A program installed beside the running one, under `../libexec/teatree/` of its directory
/// (`make install` lays out bin/ and libexec/teatree/ so, and the build tree likewise), or
/// nullopt when there is none.
std::optional<std::filesystem::path> BundledProgram(const std::string& name);

}  // namespace teatree
