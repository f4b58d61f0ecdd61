#include "teatree/common/file_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "teatree/common/temp_dir.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

/// Random bytes, so that no filesystem can compress or deduplicate the copy away.
std::string RandomBytes(size_t size) {
  std::mt19937_64 random(42);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

std::vector<std::string> ListNames(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Make("teatree-file-util-test-");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    dir_ = std::move(*dir);
  }
  fs::path Path(const std::string& name) const { return dir_->path() / name; }

  std::unique_ptr<TempDir> dir_;
};

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FileUtilTest, Sha256FileMatchesSha256HexAcrossChunks) {
  // Larger than one read chunk, and not a multiple of it.
  const std::string data = RandomBytes((size_t{3} << 20) + 12345);
  WriteAll(Path("data"), data);
  auto hash = Sha256File(Path("data"));
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, Sha256Hex(data));

  WriteAll(Path("abc"), "abc");
  EXPECT_EQ(Sha256File(Path("abc")).ValueOrDie(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FileUtilTest, Sha256FileOfMissingFileNamesThePath) {
  auto hash = Sha256File(Path("missing"));
  ASSERT_FALSE(hash.ok());
  EXPECT_TRUE(hash.status().IsIOError());
  EXPECT_NE(hash.status().message().find(Path("missing").string()), std::string::npos);
  EXPECT_NE(hash.status().message().find("No such file"), std::string::npos);
}

TEST_F(FileUtilTest, CopyFileFastCopiesAMultiMegabyteFileByteForByte) {
  const std::string data = RandomBytes((size_t{8} << 20) + 7);
  WriteAll(Path("source"), data);
  ASSERT_EQ(::chmod(Path("source").c_str(), 0640), 0);

  auto method = CopyFileFast(Path("source"), Path("copy"));
  ASSERT_TRUE(method.ok()) << method.status().ToString();
  // Which method depends on the filesystem (ext4: copy_file_range; btrfs/XFS: reflink).
  std::cout << "CopyFileFast used " << CopyMethodName(*method) << " in " << dir_->path()
            << std::endl;
  EXPECT_EQ(fs::file_size(Path("copy")), data.size());
  EXPECT_EQ(Sha256File(Path("copy")).ValueOrDie(), Sha256Hex(data));
  EXPECT_EQ(fs::status(Path("copy")).permissions() & fs::perms::all,
            fs::status(Path("source")).permissions() & fs::perms::all);
}

TEST_F(FileUtilTest, CopyFileFastAcrossFilesystems) {
  // /dev/shm is tmpfs: from the temp dir's filesystem the kernel refuses copy_file_range
  // (EXDEV), which exercises the fallback.
  std::string shm = "/dev/shm/teatree-file-util-test-XXXXXX";
  if (::mkdtemp(shm.data()) == nullptr) GTEST_SKIP() << "no writable /dev/shm";
  RemoveOnExit cleanup{shm};
  const std::string data = RandomBytes((size_t{2} << 20) + 3);
  WriteAll(Path("source"), data);
  auto method = CopyFileFast(Path("source"), fs::path(shm) / "copy");
  ASSERT_TRUE(method.ok()) << method.status().ToString();
  std::cout << "CopyFileFast across filesystems used " << CopyMethodName(*method) << std::endl;
  EXPECT_EQ(Sha256File(fs::path(shm) / "copy").ValueOrDie(), Sha256Hex(data));
}

TEST_F(FileUtilTest, CopyFileFastCopiesAnEmptyFile) {
  WriteAll(Path("empty"), "");
  auto method = CopyFileFast(Path("empty"), Path("copy"));
  ASSERT_TRUE(method.ok()) << method.status().ToString();
  EXPECT_TRUE(fs::exists(Path("copy")));
  EXPECT_EQ(fs::file_size(Path("copy")), 0u);
}

TEST_F(FileUtilTest, CopyFileFastRefusesToOverwrite) {
  WriteAll(Path("source"), "new");
  WriteAll(Path("target"), "old");
  auto method = CopyFileFast(Path("source"), Path("target"));
  ASSERT_FALSE(method.ok());
  EXPECT_TRUE(method.status().IsAlreadyExists()) << method.status().ToString();
  EXPECT_NE(method.status().message().find(Path("target").string()), std::string::npos);
  EXPECT_EQ(ReadAll(Path("target")), "old");
}

TEST_F(FileUtilTest, CopyFileFastFromMissingSourceNamesThePath) {
  auto method = CopyFileFast(Path("missing"), Path("copy"));
  ASSERT_FALSE(method.ok());
  EXPECT_TRUE(method.status().IsIOError());
  EXPECT_NE(method.status().message().find("\"" + Path("missing").string() + "\""),
            std::string::npos)
      << method.status().message();
  EXPECT_NE(method.status().message().find("No such file or directory"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("copy")));
}

TEST_F(FileUtilTest, CopyFileFastRefusesADirectory) {
  fs::create_directory(Path("dir"));
  auto method = CopyFileFast(Path("dir"), Path("copy"));
  ASSERT_FALSE(method.ok());
  EXPECT_NE(method.status().message().find("not a regular file"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("copy")));
}

TEST_F(FileUtilTest, CopyMethodNames) {
  EXPECT_EQ(CopyMethodName(CopyMethod::kReflink), "reflink");
  EXPECT_EQ(CopyMethodName(CopyMethod::kCopyFileRange), "copy_file_range");
  EXPECT_EQ(CopyMethodName(CopyMethod::kReadWrite), "read/write");
}

TEST_F(FileUtilTest, WriteFileAtomicallyCreatesAndReplacesLeavingNoTemporaries) {
  ASSERT_TRUE(WriteFileAtomically(Path("manifest.json"), "{\"v\":1}").ok());
  EXPECT_EQ(ReadAll(Path("manifest.json")), "{\"v\":1}");
  ASSERT_TRUE(WriteFileAtomically(Path("manifest.json"), "{\"v\":2}").ok());
  EXPECT_EQ(ReadAll(Path("manifest.json")), "{\"v\":2}");
  EXPECT_EQ(ListNames(dir_->path()), std::vector<std::string>{"manifest.json"});
  EXPECT_EQ(fs::status(Path("manifest.json")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
}

TEST_F(FileUtilTest, WriteFileAtomicallyIntoMissingDirectoryFailsNamingIt) {
  Status status = WriteFileAtomically(Path("no-such-dir") / "file", "x");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(Path("no-such-dir").string()), std::string::npos);
  EXPECT_TRUE(ListNames(dir_->path()).empty());
}

TEST_F(FileUtilTest, DurableRenameReplacesAnExistingTarget) {
  WriteAll(Path("v2.tmp"), "version 2");
  WriteAll(Path("v"), "version 1");
  ASSERT_TRUE(DurableRename(Path("v2.tmp"), Path("v")).ok());
  EXPECT_EQ(ReadAll(Path("v")), "version 2");
  EXPECT_EQ(ListNames(dir_->path()), std::vector<std::string>{"v"});
}

TEST_F(FileUtilTest, DurableRenameAcrossDirectories) {
  fs::create_directory(Path("staging"));
  WriteAll(Path("staging") / "file", "data");
  ASSERT_TRUE(DurableRename(Path("staging") / "file", Path("file")).ok());
  EXPECT_EQ(ReadAll(Path("file")), "data");
  EXPECT_TRUE(fs::is_empty(Path("staging")));
}

TEST_F(FileUtilTest, DurableRenameOfMissingFileNamesIt) {
  Status status = DurableRename(Path("missing"), Path("target"));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(Path("missing").string()), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("target")));
}

TEST_F(FileUtilTest, SyncFileAndDirectory) {
  WriteAll(Path("file"), "x");
  EXPECT_TRUE(SyncFile(Path("file")).ok());
  EXPECT_TRUE(SyncDirectory(dir_->path()).ok());
  Status status = SyncDirectory(Path("file"));  // Not a directory.
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(Path("file").string()), std::string::npos);
  EXPECT_NE(status.message().find("Not a directory"), std::string::npos);
  EXPECT_FALSE(SyncFile(Path("missing")).ok());
}

}  // namespace
}  // namespace teatree
