// The HTTP read server under greedy clients, beside the same server idle in the same run:
// - /healthz latency (p50, p99) on an idle server, then while 500 idle connections, 100
//   notification streams and 50 clients that stopped reading a large result are open
//   (goal: p99 under 50 ms);
// - the process's resident memory while ten clients stall on a large result each, beside
//   the size of one such result (goal: bounded, far below ten results).
// Clients come from different loopback addresses (127.0.0.2, 127.0.0.3, …), as distinct
// clients would, since one address may hold only max_streams_per_client streams.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/published_model.h"
#include "teatree/bus/nats_connection.h"
#include "teatree/bus/nats_server.h"
#include "teatree/common/arrow_runtime.h"
#include "teatree/common/temp_dir.h"
#include "teatree/read/http_read_server.h"
#include "teatree/read/model_directory.h"

namespace teatree::bench {
namespace {

constexpr int64_t kRows = 2'000'000;  // The large result: about 90 MB of JSON.
constexpr int kIdle = 500, kStreams = 100, kSlow = 50, kStalled = 10, kProbes = 2000;

using Clock = std::chrono::steady_clock;

/// A TCP connection to the server from loopback address 127.0.0.`host`; -1 on failure.
int Connect(int port, int host) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK + static_cast<uint32_t>(host - 1));
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A small receive buffer, as a slow client on a real network would have.
  const int buffer = 64 << 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

/// One GET /healthz on a new connection, in milliseconds; negative when it failed.
double ProbeHealth(int port) {
  const auto start = Clock::now();
  const int fd = Connect(port, 1);
  if (fd < 0) return -1;
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string answer;
  if (SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
    char buffer[512];
    for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, got);
  }
  close(fd);
  if (!answer.starts_with("HTTP/1.1 200")) return -1;
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Latency {
  double p50 = 0, p99 = 0;
  int failed = 0;
};

Latency MeasureHealth(int port) {
  std::vector<double> times;
  Latency latency;
  for (int i = 0; i < kProbes; ++i) {
    const double ms = ProbeHealth(port);
    if (ms < 0) {
      ++latency.failed;
    } else {
      times.push_back(ms);
    }
  }
  std::sort(times.begin(), times.end());
  if (!times.empty()) {
    latency.p50 = times[times.size() / 2];
    latency.p99 = times[std::min(times.size() - 1, times.size() * 99 / 100)];
  }
  return latency;
}

/// The process's resident set, in MB.
double RssMb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

std::string LargeQuery() {
  const std::string body = R"({"sql":"SELECT * FROM big"})";
  return "POST /v1/models/bench/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// Opens `count` connections from distinct addresses starting at 127.0.0.`first`, sends each
/// `request` (none when empty), and never reads.
std::vector<int> OpenClients(int port, int count, int first, const std::string& request) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = Connect(port, first + i);
    if (fd < 0) continue;
    if (!request.empty()) SendAll(fd, request);
    fds.push_back(fd);
  }
  return fds;
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds) close(fd);
  fds.clear();
}

int Run() {
  auto dir = OrDie(TempDir::Make("teatree-bench-http-"));
  PublishComputedTable(dir->path(), "bench", "big",
                       "SELECT range AS id, (range * 1.5)::DOUBLE AS amount, "
                       "'region-' || (range % 1000) AS region FROM range(" +
                           std::to_string(kRows) + ")");
  auto nats_server = OrDie(NatsServer::Start({.store_dir = dir->path() / "nats"}));
  auto nats = OrDie(NatsConnection::Connect({.url = nats_server->url()}));
  SingleModel models(OrDie(ModelReads::Replica({.data_dir = dir->path(), .model = "bench"})));
  auto server = OrDie(HttpReadServer::Start({.nats = nats.get()}, models));
  const std::string url = server->url();
  const int port = std::stoi(url.substr(url.rfind(':') + 1));

  // The size of one large result, read whole by a well-behaved client.
  int64_t result_bytes = 0;
  {
    const int fd = Connect(port, 1);
    SendAll(fd, LargeQuery());
    char buffer[1 << 16];
    for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
      result_bytes += got;
      if (std::string_view(buffer, got).ends_with("0\r\n\r\n")) break;  // The last chunk.
    }
    close(fd);
  }

  const Latency idle = MeasureHealth(port);

  // Greedy clients: idle connections, notification streams, slow readers of large results.
  std::vector<int> idle_fds = OpenClients(port, kIdle, 2, "");
  std::vector<int> streams = OpenClients(
      port, kStreams, 2 + kIdle, "GET /v1/models/bench/notifications HTTP/1.1\r\nHost: x\r\n\r\n");
  std::vector<int> slow = OpenClients(port, kSlow, 2 + kIdle + kStreams, LargeQuery());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const Latency busy = MeasureHealth(port);
  CloseAll(idle_fds);
  CloseAll(streams);
  CloseAll(slow);
  std::this_thread::sleep_for(std::chrono::seconds(2));

  // Memory while ten clients stall on a large result each.
  const double rss_before = RssMb();
  std::vector<int> stalled = OpenClients(port, kStalled, 2, LargeQuery());
  double rss_peak = rss_before;
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    rss_peak = std::max(rss_peak, RssMb());
  }
  CloseAll(stalled);

  const double result_mb = static_cast<double>(result_bytes) / (1 << 20);
  std::printf("HTTP read server, %d probes of /healthz each (one connection per probe)\n", kProbes);
  std::printf("  idle server:                 p50 %.2f ms, p99 %.2f ms, failed %d\n", idle.p50,
              idle.p99, idle.failed);
  std::printf(
      "  with %d idle connections, %d notification streams, %d stalled readers:\n"
      "                               p50 %.2f ms, p99 %.2f ms, failed %d  (p99 %.2fx idle)\n",
      kIdle, kStreams, kSlow, busy.p50, busy.p99, busy.failed,
      idle.p99 > 0 ? busy.p99 / idle.p99 : 0.0);
  std::printf(
      "  %d clients stalled on a %.1f MB result each: RSS %.1f MB -> %.1f MB (+%.1f MB, "
      "%.3fx of one result)\n",
      kStalled, result_mb, rss_before, rss_peak, rss_peak - rss_before,
      result_mb > 0 ? (rss_peak - rss_before) / result_mb : 0.0);
  server.reset();
  return busy.failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace teatree::bench

int main() {
  // Each client connection costs a descriptor here and one in the server.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  if (!teatree::InitializeArrow().ok()) return 1;
  const int code = teatree::bench::Run();
  teatree::ShutdownArrow();
  return code;
}
