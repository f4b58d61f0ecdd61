#include "teatree/engine/staging.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "teatree/common/file_util.h"
#include "teatree/common/temp_dir.h"
#include "teatree/request/names.h"

namespace teatree {
namespace {

namespace fs = std::filesystem;

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir::Make("teatree-staging-test-").ValueOrDie();
    staging_ = StagingDir(dir_->path(), "sales");
  }

  /// The names in the staging directory.
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(staging_, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    return names;
  }

  std::unique_ptr<TempDir> dir_;
  fs::path staging_;
};

TEST_F(StagingTest, AFinishedUploadIsFoundByItsIdAndRemoved) {
  auto upload = StagedUpload::Begin(staging_, {}).ValueOrDie();
  ASSERT_TRUE(upload->Write("id,amount\n").ok());
  ASSERT_TRUE(upload->Write("1,2.5\n").ok());
  const StagedFile staged = upload->Finish().ValueOrDie();
  EXPECT_TRUE(ValidateStagedId(staged.id).ok()) << staged.id;
  EXPECT_EQ(staged.bytes, 16);
  EXPECT_EQ(Files(), std::vector<std::string>{staged.id});  // No temporary file is left.
  const fs::path path = FindStaged(staging_, staged.id).ValueOrDie();
  EXPECT_EQ(ReadFileToString(path).ValueOrDie(), "id,amount\n1,2.5\n");
  // Ids differ from upload to upload.
  auto other = StagedUpload::Begin(staging_, {}).ValueOrDie();
  EXPECT_NE(other->Finish().ValueOrDie().id, staged.id);
  RemoveStaged(staging_, staged.id);
  auto gone = FindStaged(staging_, staged.id);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("upload the file again"), std::string::npos);
  // The refusal does not say where the server keeps uploads.
  EXPECT_EQ(gone.status().message().find(dir_->path().string()), std::string::npos);
}

// Uploads are written in whole aligned blocks (O_DIRECT where the filesystem has it) and cut
// to their size: whatever the pieces they arrive in, the file holds exactly those bytes.
TEST_F(StagingTest, AnUploadHoldsExactlyItsBytesWhateverThePieces) {
  for (const size_t size :
       {size_t{0}, size_t{1}, size_t{4096}, size_t{4} << 20, (size_t{9} << 20) + 4097}) {
    SCOPED_TRACE(size);
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7919) >> 3);
    auto upload = StagedUpload::Begin(staging_, {}).ValueOrDie();
    for (size_t at = 0, piece = 1; at < size; at += piece, piece = piece * 3 + 1) {
      ASSERT_TRUE(upload->Write(std::string_view(bytes).substr(at, piece)).ok());
    }
    const StagedFile staged = upload->Finish().ValueOrDie();
    EXPECT_EQ(staged.bytes, static_cast<int64_t>(size));
    EXPECT_TRUE(ReadFileToString(FindStaged(staging_, staged.id).ValueOrDie()).ValueOrDie() ==
                bytes);
  }
}

TEST_F(StagingTest, AnUploadOverTheLimitOrCutOffLeavesNothing) {
  {
    auto upload = StagedUpload::Begin(staging_, {.max_bytes = 10}).ValueOrDie();
    ASSERT_TRUE(upload->Write("12345678").ok());
    Status over = upload->Write("901");
    ASSERT_TRUE(over.IsCapacityError()) << over.ToString();
    EXPECT_NE(over.message().find("--max-upload-mb"), std::string::npos) << over.message();
  }
  {
    auto upload = StagedUpload::Begin(staging_, {}).ValueOrDie();
    ASSERT_TRUE(upload->Write("half a file").ok());
    // The client went away: never finished.
  }
  EXPECT_TRUE(Files().empty());
  // Not enough disk space left: refused up front.
  auto full = StagedUpload::Begin(staging_, {.min_free_bytes = int64_t{1} << 62});
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("short of disk space"), std::string::npos);
  EXPECT_TRUE(Files().empty());
}

TEST_F(StagingTest, IdsThatAreNotUploadIdsNameNothing) {
  fs::create_directories(staging_);
  ASSERT_TRUE(WriteFileAtomically(dir_->path() / "secret", "x").ok());
  for (const std::string& id :
       {std::string("../../secret"), std::string("secret"), std::string(), std::string(32, 'g')}) {
    EXPECT_FALSE(FindStaged(staging_, id).ok()) << id;
    RemoveStaged(staging_, id);
  }
  EXPECT_TRUE(fs::exists(dir_->path() / "secret"));
}

TEST_F(StagingTest, TheSweepRemovesOldUploadsAndAbandonedPartsOnly) {
  auto keep = StagedUpload::Begin(staging_, {}).ValueOrDie()->Finish().ValueOrDie();
  auto old = StagedUpload::Begin(staging_, {}).ValueOrDie()->Finish().ValueOrDie();
  ASSERT_TRUE(WriteFileAtomically(staging_ / ".upload-abcdef", "abandoned").ok());
  ASSERT_TRUE(WriteFileAtomically(staging_ / "notes.txt", "not an upload").ok());
  const auto two_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(staging_ / old.id, two_days_ago);
  fs::last_write_time(staging_ / ".upload-abcdef", two_days_ago);
  EXPECT_EQ(SweepStaging(staging_, std::chrono::hours(24)), 2);
  auto files = Files();
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{keep.id, "notes.txt"}));
}

}  // namespace
}  // namespace teatree
