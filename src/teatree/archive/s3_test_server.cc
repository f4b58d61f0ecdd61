#include "teatree/archive/s3_test_server.h"

#include <arrow/filesystem/s3fs.h>
#include <stdlib.h>

#include "teatree/archive/s3_runtime.h"
#include "teatree/common/net.h"
#include "teatree/common/subprocess.h"

namespace teatree {

S3TestServer::S3TestServer(std::unique_ptr<Subprocess> process, int port)
    : process_(std::move(process)), port_(port) {}

S3TestServer::~S3TestServer() { (void)process_->Stop(std::chrono::seconds(5)); }

Result<std::unique_ptr<S3TestServer>> S3TestServer::Start(const std::string& python,
                                                          const std::filesystem::path& log,
                                                          int port) {
  if (python.empty()) {
    return Status::Invalid(
        "no Python test environment: run scripts/bootstrap, which installs "
        "moto, the S3-protocol server the tests use");
  }
  ::setenv("AWS_ACCESS_KEY_ID", "teatree-test", /*overwrite=*/0);
  ::setenv("AWS_SECRET_ACCESS_KEY", "teatree-test", /*overwrite=*/0);
  if (port == 0) {
    ARROW_ASSIGN_OR_RAISE(port, FreeLoopbackPort());
  }
  ARROW_ASSIGN_OR_RAISE(auto process,
                        Subprocess::Spawn({.argv = {python, "-m", "moto.server", "-H", "127.0.0.1",
                                                    "-p", std::to_string(port)},
                                           .log_path = log}));
  Status ready = WaitForTcpPort("127.0.0.1", port, std::chrono::seconds(30));
  if (!ready.ok()) {
    return ready.WithMessage("the S3 test server (moto) did not start: ", ready.message(), "; see ",
                             log.string());
  }
  return std::unique_ptr<S3TestServer>(new S3TestServer(std::move(process), port));
}

std::string S3TestServer::endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

std::string S3TestServer::ArchiveUrl(const std::string& bucket, const std::string& prefix) const {
  return ArchiveUrlAt(port_, bucket, prefix);
}

std::string S3TestServer::ArchiveUrlAt(int port, const std::string& bucket,
                                       const std::string& prefix) {
  return "s3://" + bucket + "/" + prefix + "?endpoint_override=127.0.0.1:" + std::to_string(port) +
         "&scheme=http&region=us-east-1";
}

Status S3TestServer::CreateBucket(const std::string& bucket) {
  ARROW_RETURN_NOT_OK(EnsureS3Runtime());
  ARROW_ASSIGN_OR_RAISE(
      auto options, arrow::fs::S3Options::FromUri("s3://" + bucket + "?endpoint_override=" +
                                                  endpoint() + "&scheme=http&region=us-east-1"));
  options.allow_bucket_creation = true;
  ARROW_ASSIGN_OR_RAISE(auto fs, arrow::fs::S3FileSystem::Make(options));
  return fs->CreateDir(bucket);
}

}  // namespace teatree
