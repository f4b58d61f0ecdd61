#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace teatree {

/// cpp-httplib's task queue for the HTTP read server: a thread per connection, up to
/// `max_threads` at once, so that long-lived connections (event streams, results streamed to
/// slow clients, idle keep-alive connections) never hold a fixed pool's workers while
/// /healthz waits behind them. Past the cap, connections wait in arrival order for a thread.
/// Thread-safe; shutdown() waits for every connection's thread to finish.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(size_t max_threads) : max_threads_(max_threads) {}
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void Run(std::function<void()> fn);

  const size_t max_threads_;
  // State below is protected by mutex_.
  std::mutex mutex_;
  std::condition_variable all_done_;
  size_t running_ = 0;
  std::deque<std::function<void()>> waiting_;
};

}  // namespace teatree
