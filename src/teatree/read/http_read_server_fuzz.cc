// libFuzzer target: raw bytes of an HTTP request sent to a real HttpReadServer, started once per
// process on 127.0.0.1 (a free port) over an empty data directory. Properties: the server
// answers within a bounded time; what it sends starts with an HTTP status line; malformed input
// never gets a 500 (a 500 means a handler failed, e.g. threw); and it still answers
// GET /healthz with 200 afterwards.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "teatree/common/arrow_runtime.h"
#include "teatree/common/temp_dir.h"
#include "teatree/read/http_read_server.h"
#include "teatree/read/model_directory.h"

namespace {

// How long one exchange may take: far more than the server needs for any request here, so
// exceeding it means the server hangs.
constexpr int kExchangeSeconds = 10;
// How long a request gets to be answered before the harness closes its sending side.
constexpr int kAnswerMilliseconds = 50;

struct Fixture {
  std::unique_ptr<teatree::TempDir> dir;
  std::unique_ptr<teatree::DataDirReplicas> models;
  std::unique_ptr<teatree::HttpReadServer> server;
  int port = 0;
};

Fixture& Get() {
  // Never destroyed: the server's threads serve until the process exits.
  static Fixture* fixture = [] {
    auto made = new Fixture();
    made->dir = teatree::TempDir::Make("teatree-http-fuzz-").ValueOrDie();
    // The fixture outlives main; its (empty) data directory goes when the process exits.
    static const std::filesystem::path kDir = made->dir->path();
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(kDir, ignored);
    });
    made->models = std::make_unique<teatree::DataDirReplicas>(
        teatree::ModelReadsOptions{.data_dir = made->dir->path()}, nullptr);
    made->server = teatree::HttpReadServer::Start({}, *made->models).ValueOrDie();
    const std::string& url = made->server->url();
    made->port = std::stoi(url.substr(url.rfind(':') + 1));
    return made;
  }();
  return *fixture;
}

[[noreturn]] void Fail(const char* what, std::string_view request, const std::string& response) {
  std::fprintf(stderr, "http_read_server_fuzz: %s\nrequest: %.*s\nresponse: %s\n", what,
               static_cast<int>(request.size()), request.data(), response.c_str());
  std::abort();
}

/// Waits up to `milliseconds` for `fd` to have something to read (data or the end).
bool Readable(int fd, int milliseconds) {
  pollfd one{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&one, 1, milliseconds) > 0;
}

/// Sends `request` and returns the start of the answer (its status line). The server keeps a
/// connection open while a request is incomplete, and does not answer a client that has closed its
/// sending side; so the request first gets `answer_milliseconds` to be answered, then the sending
/// side is closed: a server that was waiting for the rest of the request closes the connection at
/// once, while one stuck on a complete request neither answers nor closes (`*hung`).
std::string Exchange(int port, std::string_view request, int answer_milliseconds, bool* hung) {
  *hung = false;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Fail("socket() failed", request, "");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    Fail("cannot connect to the server", request, "");
  }
  // The server may answer (e.g. 414) and close before reading all of a long request.
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  if (!Readable(fd, answer_milliseconds)) {
    ::shutdown(fd, SHUT_WR);
    if (!Readable(fd, kExchangeSeconds * 1000)) *hung = true;
  }
  std::string response;
  char buffer[256];
  // The status line is all that is checked; the body may stream on (keep-alive).
  while (!*hung && response.find('\n') == std::string::npos && Readable(fd, 1000)) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

/// The status code of an "HTTP/1.x NNN ..." line at the start of `response`, or -1.
int StatusCode(std::string_view response) {
  if (response.size() < 12 || response.substr(0, 7) != "HTTP/1." || response[8] != ' ') return -1;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (response[i] < '0' || response[i] > '9') return -1;
    code = code * 10 + (response[i] - '0');
  }
  return code;
}

}  // namespace

// DuckDB keeps pointers to some of its heap objects inside memory it maps itself, which
// LeakSanitizer does not scan, so those objects look leaked after each query. Leaks whose
// allocation passed through libduckdb are not reported; Teatree's own are.
extern "C" const char* __lsan_default_suppressions() { return "leak:libduckdb.so\n"; }
extern "C" const char* __lsan_default_options() { return "print_suppressions=0"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (auto status = teatree::InitializeArrow(); !status.ok()) status.Abort();
  Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  const int port = Get().port;
  bool hung = false;
  // Without an empty line ending its head, a request cannot be answered yet: the sending side
  // closes at once, and the server must close the connection rather than wait.
  const bool head_complete = request.find("\n\r\n") != std::string_view::npos ||
                             request.find("\n\n") != std::string_view::npos;
  const std::string response =
      Exchange(port, request, head_complete ? kAnswerMilliseconds : 0, &hung);
  if (hung) Fail("no answer in time", request, response);
  // No answer: the request was incomplete and the server closed when the harness did.
  if (!response.empty()) {
    const int code = StatusCode(response);
    if (code < 0) Fail("the answer does not start with a status line", request, response);
    if (code == 500) Fail("a request got 500", request, response);
  }
  const std::string health =
      Exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
               kExchangeSeconds * 1000, &hung);
  if (StatusCode(health) != 200) {
    Fail("/healthz stopped answering after the request", request, health);
  }
  return 0;
}
