// Two stages over a few reusable buffers, so that producing one batch (reading
// a process's memory, reading the store) overlaps consuming the one before
// (writing the store, writing a process's memory).
//
//   BatchPipeline<Batch> p(3, sink);   // sink(Batch&) runs on a thread of its own
//   Batch* b = p.acquire();            // an empty batch, or nullptr after a sink error
//   ...fill *b...; p.publish(b);
//   Status st = p.finish();            // waits for the sink; its first error
//
// The sink sees batches in the order they were published.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/result.h"

namespace frost {

template <typename Batch>
class BatchPipeline {
 public:
  BatchPipeline(size_t depth, std::function<Status(Batch&)> sink) : sink_(std::move(sink)) {
    for (size_t i = 0; i < depth; ++i) {
      owned_.push_back(std::make_unique<Batch>());
      free_.push_back(owned_.back().get());
    }
    thread_ = std::thread([this] { run(); });
  }
  BatchPipeline(const BatchPipeline&) = delete;
  BatchPipeline& operator=(const BatchPipeline&) = delete;
  ~BatchPipeline() { (void)finish(); }

  // An empty batch to fill; nullptr once the sink failed (stop producing).
  Batch* acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty() || error_; });
    if (error_) return nullptr;
    Batch* b = free_.front();
    free_.pop_front();
    return b;
  }

  void publish(Batch* b) {
    std::lock_guard lock(mu_);
    full_.push_back(b);
    cv_.notify_all();
  }

  // Gives back a batch that was acquired and not used.
  void release(Batch* b) {
    std::lock_guard lock(mu_);
    free_.push_back(b);
    cv_.notify_all();
  }

  // Drains what was published, stops the sink thread, returns its first error.
  Status finish() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    if (error_) return *error_;
    return Status::Ok();
  }

 private:
  void run() {
    for (;;) {
      Batch* b = nullptr;
      bool failed = false;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !full_.empty() || closed_; });
        if (full_.empty()) return;
        b = full_.front();
        full_.pop_front();
        failed = error_.has_value();
      }
      // After a failure batches are only recycled, so the producer never blocks.
      Status st = failed ? Status::Ok() : sink_(*b);
      std::lock_guard lock(mu_);
      if (!st.ok() && !error_) error_ = st.error();
      free_.push_back(b);
      cv_.notify_all();
    }
  }

  std::function<Status(Batch&)> sink_;
  std::vector<std::unique_ptr<Batch>> owned_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch*> free_, full_;
  bool closed_ = false;
  std::optional<Error> error_;
  std::thread thread_;
};

}  // namespace frost
