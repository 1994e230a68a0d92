// A few threads for CPU work the store can split (compressing and checksumming
// a batch of pages). One per core beyond the caller's, at most 3: the caller
// works too, and the disk is the bound beyond that.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/cpu_class.h"

namespace frost::store {

class WorkerPool {
 public:
  WorkerPool();
  ~WorkerPool();
  // Runs fn(i) for every i < n, spread over the pool and the calling thread;
  // returns when all are done. The pool's threads run it at the caller's
  // CPU class (common/cpu_class.h): background work stays background.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);
  static WorkerPool& shared();

 private:
  void work();

  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t next_ = 0, n_ = 0, busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  CpuClass class_ = CpuClass::kNormal;  // the current batch's submitter's
  std::vector<std::thread> threads_;
};

}  // namespace frost::store
