// Eight threads working while frozen. Producers 0-2 and consumers 3-5 share a
// bounded queue (std::mutex + two std::condition_variable); threads 6 and 7
// play strict ping-pong through a third mutex and condition variable. Every
// item a thread handles also runs a chunk of an AVX recurrence whose 4 lanes
// stay in ymm registers for the whole chunk, so a freeze almost always lands
// with live ymm state, threads blocked in futexes and threads mid-handoff.
// Each thread counts its items in a thread_local counter and publishes it in a
// mutex-protected table. After SIGUSR1 the work goes on until every thread has
// advanced (at least 200 ms), then everything is stopped, joined and checked
// exactly: no timing decides correctness.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

extern "C" {
#include "st_common.h"
}

namespace {

constexpr int kThreads = 8, kProducers = 3, kQueueCap = 8;
constexpr uint64_t kStepsPerItem = 4096;
bool g_avx;

// The recurrence: per lane x = (a*x + c) mod m, computed in doubles. With
// m < 2^20 every product and sum is an exact integer below 2^53 and
// floor(y / m) is exact (the quotient is far from the next integer in ulps),
// so the result is bit-exact and an integer affine map can jump n steps
// ahead in O(log n): verification stays cheap however long the run was.
struct Lanes { double a[4], c[4], m[4], x[4]; };

Lanes lanes_for(int t) {
  static const double ms[4] = {1048573, 1048571, 1048559, 999983};
  Lanes l;
  for (int i = 0; i < 4; i++) {
    l.m[i] = ms[i];
    l.a[i] = 48271 + 1000 * t + 7 * i;
    l.c[i] = 12345 + 100 * t + i;
    l.x[i] = 1 + 31 * t + 5 * i;
  }
  return l;
}

__attribute__((target("avx"))) void run_avx(Lanes &l, uint64_t steps) {
  __m256d a = _mm256_loadu_pd(l.a), c = _mm256_loadu_pd(l.c), m = _mm256_loadu_pd(l.m);
  __m256d x = _mm256_loadu_pd(l.x);  // stays in a ymm register for the whole loop
  for (uint64_t s = 0; s < steps; s++) {
    __m256d y = _mm256_add_pd(_mm256_mul_pd(x, a), c);
    __m256d q = _mm256_floor_pd(_mm256_div_pd(y, m));
    x = _mm256_sub_pd(y, _mm256_mul_pd(q, m));
  }
  _mm256_storeu_pd(l.x, x);
}

// Fallback without AVX: the same math two lanes at a time. GCC's intrinsics
// cannot be inlined into a no-avx function of a file built with -mavx, so this
// uses vector extensions; floor is a truncation (values are positive, < 2^31).
// Caveat: -mavx lets GCC use VEX anywhere in this file (static init, main),
// so on a real non-AVX CPU the program may die with SIGILL before getting here.
typedef double v2d __attribute__((vector_size(16)));
typedef long long v2l __attribute__((vector_size(16)));
__attribute__((target("no-avx"))) void run_sse2(Lanes &l, uint64_t steps) {
  for (int h = 0; h < 4; h += 2) {
    v2d a = {l.a[h], l.a[h + 1]}, c = {l.c[h], l.c[h + 1]}, m = {l.m[h], l.m[h + 1]};
    v2d x = {l.x[h], l.x[h + 1]};
    for (uint64_t s = 0; s < steps; s++) {
      v2d y = x * a + c;
      v2d q = __builtin_convertvector(__builtin_convertvector(y / m, v2l), v2d);
      x = y - q * m;
    }
    l.x[h] = x[0];
    l.x[h + 1] = x[1];
  }
}

// Scalar recomputation by jump-ahead: compose x -> a*x + c (mod m) n times.
uint64_t lcg_jump(uint64_t a, uint64_t c, uint64_t m, uint64_t x, uint64_t n) {
  uint64_t A = 1, C = 0;
  while (n) {
    if (n & 1) { A = a * A % m; C = (a * C + c) % m; }
    c = (a * c + c) % m;
    a = a * a % m;
    n >>= 1;
  }
  return (A * x + C) % m;
}

struct {  // items handled per thread, published after each item
  std::mutex mu;
  std::condition_variable cv;
  uint64_t items[kThreads] = {};
} table;

struct {  // bounded FIFO; items are (producer << 32 | seq)
  std::mutex mu;
  std::condition_variable not_full, not_empty;
  std::deque<uint64_t> q;
  uint64_t produced[kProducers] = {}, produced_sum = 0;  // produced[p] is also p's next seq
  uint64_t next_pop[kProducers] = {};                    // FIFO: next seq expected from p
  uint64_t consumed[kThreads] = {}, consumed_sum = 0;
  std::string err;
} queue;

struct {  // strict alternation between threads 6 (side 0) and 7 (side 1)
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;
  uint64_t rally = 0;
  std::string err;
} pingpong;

std::atomic<bool> stop{false};
// Both are addressed %fs-relative: a wrong fs base after a restore would make
// a thread read another block (owner differs) or garbage (count differs).
thread_local uint64_t tl_items;  // this thread's own count, compared with the table
thread_local volatile int tl_owner = -1;

struct Worker {
  std::thread th;
  Lanes lanes;
  uint64_t tl_final = 0;
  std::string err;
} workers[kThreads];

bool produce(int p) {
  std::unique_lock lk(queue.mu);
  queue.not_full.wait(lk, [] { return stop || queue.q.size() < kQueueCap; });
  if (stop) return false;
  uint64_t v = (uint64_t)p << 32 | queue.produced[p]++;
  queue.q.push_back(v);
  queue.produced_sum += v;
  queue.not_empty.notify_one();
  return true;
}

bool consume(int t) {
  std::unique_lock lk(queue.mu);
  queue.not_empty.wait(lk, [] { return stop || !queue.q.empty(); });
  if (stop) return false;
  uint64_t v = queue.q.front();
  queue.q.pop_front();
  uint64_t p = v >> 32, seq = v & 0xffffffffu;
  if (p >= kProducers || seq != queue.next_pop[p]++)
    queue.err = "popped item " + std::to_string(p) + ":" + std::to_string(seq) + " out of order";
  queue.consumed[t]++;
  queue.consumed_sum += v;
  queue.not_full.notify_one();
  return true;
}

bool hit(int side) {
  std::unique_lock lk(pingpong.mu);
  pingpong.cv.wait(lk, [side] { return stop || pingpong.turn == side; });
  if (stop) return false;
  if ((int)(pingpong.rally % 2) != side) pingpong.err = "turn out of step with rally count";
  pingpong.rally++;
  pingpong.turn = 1 - side;
  pingpong.cv.notify_all();
  return true;
}

void worker_main(int t) {
  Worker &w = workers[t];
  tl_owner = t;
  for (;;) {
    // First the handoff (false once stopping), then the math, then the count,
    // so a stop never falls between an item and its count.
    bool go = t < kProducers ? produce(t) : t < 6 ? consume(t) : hit(t - 6);
    if (!go) break;
    (g_avx ? run_avx : run_sse2)(w.lanes, kStepsPerItem);
    tl_items++;
    std::lock_guard lk(table.mu);
    table.items[t] = tl_items;
    table.cv.notify_all();
  }
  w.tl_final = tl_items;
  if (tl_owner != t) w.err = "thread_local owner " + std::to_string(tl_owner);
}

// Waits until every thread has handled more than base[i] items, at least
// until `min` has passed and at most until `max`; returns the counts seen.
bool wait_progress(const uint64_t *base, uint64_t *seen, std::chrono::milliseconds min, std::chrono::seconds max) {
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(min);
  std::unique_lock lk(table.mu);
  bool ok = table.cv.wait_until(lk, start + max, [&] {
    for (int i = 0; i < kThreads; i++)
      if (table.items[i] <= base[i]) return false;
    return true;
  });
  for (int i = 0; i < kThreads; i++) seen[i] = table.items[i];
  return ok;
}

}  // namespace

int main() {
  st_begin("mt_avx");  // blocks SIGUSR1 first: the workers inherit the mask
  __builtin_cpu_init();
  g_avx = __builtin_cpu_supports("avx");
  if (!g_avx) fprintf(stderr, "mt_avx: CPU without AVX, using SSE2 math instead\n");
  for (int t = 0; t < kThreads; t++) {
    workers[t].lanes = lanes_for(t);
    workers[t].th = std::thread(worker_main, t);
  }
  uint64_t zero[kThreads] = {}, before[kThreads], after[kThreads];
  if (!wait_progress(zero, before, std::chrono::milliseconds(0), std::chrono::seconds(60)))
    st_fail("not every thread worked before READY");
  st_ready();
  st_wait_usr1();
  { std::lock_guard lk(table.mu); std::copy(table.items, table.items + kThreads, before); }
  if (!wait_progress(before, after, std::chrono::milliseconds(200), std::chrono::seconds(60)))
    st_fail("not every thread made progress after SIGUSR1");

  stop = true;  // set, then notify under each mutex so no waiter misses it
  { std::lock_guard lk(queue.mu); queue.not_full.notify_all(); queue.not_empty.notify_all(); }
  { std::lock_guard lk(pingpong.mu); pingpong.cv.notify_all(); }
  for (auto &w : workers) w.th.join();

  if (st_sabotage()) table.items[3]++;  // one recorded count no longer matches
  for (int t = 0; t < kThreads; t++) {
    const Worker &w = workers[t];
    uint64_t n = table.items[t];
    if (!w.err.empty()) st_fail("thread %d: %s", t, w.err.c_str());
    if (w.tl_final != n)
      st_fail("thread %d: thread_local count %llu != recorded %llu", t, (unsigned long long)w.tl_final,
              (unsigned long long)n);
    if (n <= before[t]) st_fail("thread %d: no progress after SIGUSR1 (%llu items)", t, (unsigned long long)n);
    Lanes init = lanes_for(t);
    for (int i = 0; i < 4; i++) {
      uint64_t want = lcg_jump((uint64_t)init.a[i], (uint64_t)init.c[i], (uint64_t)init.m[i],
                               (uint64_t)init.x[i], n * kStepsPerItem);
      if (w.lanes.x[i] != (double)want)
        st_fail("thread %d lane %d: %.17g after %llu steps, scalar says %llu", t, i, w.lanes.x[i],
                (unsigned long long)(n * kStepsPerItem), (unsigned long long)want);
    }
  }

  // Queue: nothing lost or duplicated. In FIFO order what remains from each
  // producer must be exactly its seqs not yet popped, and the sums must add up.
  if (!queue.err.empty()) st_fail("queue: %s", queue.err.c_str());
  uint64_t in_queue_sum = 0, consumed_n = 0, produced_n = 0, next[kProducers];
  std::copy(queue.next_pop, queue.next_pop + kProducers, next);
  for (uint64_t v : queue.q) {
    in_queue_sum += v;
    uint64_t p = v >> 32;
    if (p >= kProducers || (v & 0xffffffffu) != next[p]++) st_fail("queue: stray item %#llx", (unsigned long long)v);
  }
  for (int p = 0; p < kProducers; p++) {
    produced_n += queue.produced[p];
    if (next[p] != queue.produced[p]) st_fail("queue: producer %d made %llu items, %llu accounted for", p,
                                              (unsigned long long)queue.produced[p], (unsigned long long)next[p]);
    if (queue.produced[p] != table.items[p]) st_fail("queue: producer %d pushed %llu, recorded %llu", p,
                                                     (unsigned long long)queue.produced[p], (unsigned long long)table.items[p]);
  }
  for (int c = kProducers; c < 6; c++) {
    consumed_n += queue.consumed[c];
    if (queue.consumed[c] != table.items[c]) st_fail("queue: consumer %d popped %llu, recorded %llu", c,
                                                     (unsigned long long)queue.consumed[c], (unsigned long long)table.items[c]);
  }
  if (queue.produced_sum != queue.consumed_sum + in_queue_sum || produced_n != consumed_n + queue.q.size())
    st_fail("queue: produced %llu (sum %#llx) != consumed %llu + queued %zu (sum %#llx + %#llx)",
            (unsigned long long)produced_n, (unsigned long long)queue.produced_sum, (unsigned long long)consumed_n,
            queue.q.size(), (unsigned long long)queue.consumed_sum, (unsigned long long)in_queue_sum);
  if (queue.q.size() > kQueueCap) st_fail("queue: %zu items over capacity %d", queue.q.size(), kQueueCap);

  // Ping-pong: strict alternation, side 0 served first.
  if (!pingpong.err.empty()) st_fail("pingpong: %s", pingpong.err.c_str());
  uint64_t h0 = table.items[6], h1 = table.items[7];
  if (pingpong.rally != h0 + h1 || h0 - h1 > 1 || pingpong.turn != (int)(pingpong.rally % 2))
    st_fail("pingpong: rally %llu, turn %d, hits %llu/%llu", (unsigned long long)pingpong.rally, pingpong.turn,
            (unsigned long long)h0, (unsigned long long)h1);
  return st_finish();
}
