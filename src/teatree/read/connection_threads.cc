#include <thread>

#include "teatree/read/connection_threads_internal.h"

namespace teatree {

void ConnectionThreads::enqueue(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (running_ >= max_threads_) {
    waiting_.push_back(std::move(fn));
    return;
  }
  ++running_;
  std::thread([this, fn = std::move(fn)]() mutable { Run(std::move(fn)); }).detach();
}

void ConnectionThreads::Run(std::function<void()> fn) {
  // One thread serves its connection, then whatever connections waited for a thread.
  while (fn) {
    fn();
    std::lock_guard lock(mutex_);
    fn = nullptr;
    if (!waiting_.empty()) {
      fn = std::move(waiting_.front());
      waiting_.pop_front();
    } else {
      --running_;
      all_done_.notify_all();
    }
  }
}

void ConnectionThreads::shutdown() {
  std::unique_lock lock(mutex_);
  all_done_.wait(lock, [this] { return running_ == 0; });
}

}  // namespace teatree
