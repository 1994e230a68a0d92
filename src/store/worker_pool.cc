#include "store/worker_pool.h"

#include <algorithm>

namespace frost::store {

WorkerPool::WorkerPool() {
  unsigned n = std::min(3u, std::max(1u, std::thread::hardware_concurrency()) - 1);
  for (unsigned i = 0; i < n; i++) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

WorkerPool& WorkerPool::shared() {
  static WorkerPool pool;
  return pool;
}

void WorkerPool::work() {
  std::unique_lock lock(mu_);
  uint64_t seen = generation_;
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    set_cpu_class(class_);
    busy_++;
    while (next_ < n_) {
      size_t i = next_++;
      lock.unlock();
      (*fn_)(i);
      lock.lock();
    }
    if (--busy_ == 0) done_.notify_all();
  }
}

void WorkerPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (threads_.empty() || n < 2) {
    for (size_t i = 0; i < n; i++) fn(i);
    return;
  }
  // One batch at a time: concurrent callers take turns.
  static std::mutex batch_mu;
  std::lock_guard batch(batch_mu);
  std::unique_lock lock(mu_);
  fn_ = &fn;
  class_ = current_cpu_class();
  next_ = 0;
  n_ = n;
  generation_++;
  wake_.notify_all();
  busy_++;
  while (next_ < n_) {
    size_t i = next_++;
    lock.unlock();
    fn(i);
    lock.lock();
  }
  busy_--;
  done_.wait(lock, [&] { return busy_ == 0; });
  fn_ = nullptr;
}

}  // namespace frost::store
