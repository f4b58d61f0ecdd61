#include "teatree/engine/arrow/request_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "teatree/common/file_util.h"
#include "teatree/common/json_text.h"

namespace teatree {
namespace {

Status Errno(const char* what, const std::filesystem::path& path) {
  return Status::IOError("cannot ", what, " ", path.string(), ": ", std::strerror(errno));
}

std::string Line(const KnownRequest& request) {
  return DumpJson(nlohmann::json{{"hash", request.payload_hash},
                                 {"outcome", request.outcome.ToJson()}}) +
         "\n";
}

}  // namespace

Result<std::unique_ptr<RequestLog>> RequestLog::Open(const std::filesystem::path& path,
                                                     int64_t published_version) {
  std::map<std::string, KnownRequest> known;
  std::string kept;
  bool dropped = false;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      // A line without its newline was cut short by a crash: it is not there.
      if (in.eof()) {
        dropped = true;
        break;
      }
      auto json = ParseJson(line, "a request log line").ValueOr(nlohmann::json());
      if (!json.is_object() || !json.contains("outcome")) {
        return Status::IOError("damaged request log ", path.string(), ": ", line.substr(0, 80));
      }
      KnownRequest request{json.value("hash", ""), RequestOutcome::FromJson(json["outcome"])};
      if (request.outcome.version > published_version) {
        dropped = true;  // Its batch's manifest never landed: the batch did not commit.
        continue;
      }
      kept += line + "\n";
      known[request.outcome.request_id] = std::move(request);
    }
  }
  if (dropped) ARROW_RETURN_NOT_OK(WriteFileAtomically(path, kept));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", path);
  auto log = std::unique_ptr<RequestLog>(new RequestLog(path, fd));
  log->known_ = std::move(known);
  return log;
}

RequestLog::~RequestLog() { ::close(fd_); }

const KnownRequest* RequestLog::Find(const std::string& request_id) const {
  auto it = known_.find(request_id);
  return it == known_.end() ? nullptr : &it->second;
}

Status RequestLog::Append(const std::vector<KnownRequest>& requests) {
  std::string lines;
  for (const auto& request : requests) lines += Line(request);
  for (size_t done = 0; done < lines.size();) {
    const ssize_t wrote = ::write(fd_, lines.data() + done, lines.size() - done);
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Errno("append to", path_);
    }
    done += static_cast<size_t>(wrote);
  }
  if (::fdatasync(fd_) != 0) return Errno("sync", path_);
  for (const auto& request : requests) known_[request.outcome.request_id] = request;
  return Status::OK();
}

}  // namespace teatree
