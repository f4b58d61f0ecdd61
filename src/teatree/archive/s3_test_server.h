#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "teatree/common/status.h"

namespace teatree {

class Subprocess;

/// A private S3-protocol server on 127.0.0.1 for tests and benchmarks: moto's server (from
/// the Python test environment scripts/bootstrap makes), a separate process speaking S3 over
/// HTTP, keeping objects in memory. Sets AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for this
/// process when they are unset, as any S3 client needs some. Destruction stops it.
class S3TestServer {
 public:
  /// `python`: the interpreter of the environment moto is installed in. `log` receives the
  /// server's output. `port` 0 picks a free one.
  static Result<std::unique_ptr<S3TestServer>> Start(const std::string& python,
                                                     const std::filesystem::path& log,
                                                     int port = 0);
  ~S3TestServer();
  S3TestServer(const S3TestServer&) = delete;
  S3TestServer& operator=(const S3TestServer&) = delete;

  /// 127.0.0.1:<port>
  std::string endpoint() const;
  /// An archive URL for `bucket`/`prefix` on this server (the bucket must exist).
  std::string ArchiveUrl(const std::string& bucket, const std::string& prefix) const;
  /// The same for a server on 127.0.0.1:`port`, running or not.
  static std::string ArchiveUrlAt(int port, const std::string& bucket, const std::string& prefix);
  /// Creates a bucket.
  Status CreateBucket(const std::string& bucket);
  Subprocess& process() { return *process_; }

 private:
  S3TestServer(std::unique_ptr<Subprocess> process, int port);
  std::unique_ptr<Subprocess> process_;
  int port_;
};

}  // namespace teatree
