#include "teatree/common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace teatree {
namespace {

/// Owns a socket file descriptor.
class Socket {
 public:
  Socket() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

Result<sockaddr_in> LoopbackAddress(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::Invalid("\"", host, "\" is not an IPv4 address: use one such as 127.0.0.1");
  }
  return addr;
}

}  // namespace

Result<int> FreeLoopbackPort() {
  Socket sock;
  ARROW_ASSIGN_OR_RAISE(sockaddr_in addr, LoopbackAddress("127.0.0.1", 0));
  socklen_t len = sizeof(addr);
  if (sock.fd() < 0 || bind(sock.fd(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(sock.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Status::IOError("cannot find a free loopback port: ", std::strerror(errno));
  }
  return ntohs(addr.sin_port);
}

Status WaitForTcpPort(const std::string& host, int port, std::chrono::milliseconds timeout) {
  ARROW_ASSIGN_OR_RAISE(sockaddr_in addr, LoopbackAddress(host, port));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Socket sock;
    if (connect(sock.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return Status::OK();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::IOError("nothing accepted connections on ", host, ":", port, " within ",
                             timeout.count(), " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string AdvertisedHost(const std::string& listen, const std::string& advertise) {
  std::string host = advertise;
  if (host.empty()) {
    const bool wildcard = listen.empty() || listen == "0.0.0.0" || listen == "::" ||
                          listen == "[::]" || listen == "*";
    host = listen;
    if (wildcard) {
      char name[256] = {0};
      host = ::gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0' ? name : "localhost";
    }
  }
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return host;
}

}  // namespace teatree
