// A process for the ptrace and remote-syscall tests to seize.
//
//   ptrace_target threads   8 spinning threads holding known AVX values in
//                           ymm0-15, a thread blocked in read() on fd 3, a
//                           thread looping in clock_nanosleep, one running
//                           user code only ("busy"), and the main
//                           thread blocked reading commands on stdin.
//   ptrace_target churn     threads created and ending all the time.
//   ptrace_target leaderless  the main thread exits, one other thread stays.
//   ptrace_target vfork     the main thread waits for a vfork child that sleeps.
//
// It prints "ready ..." on stdout once set up, then answers one line per
// command line on stdin:
//   ping    -> "pong <spins> <rt signals received> <sum of their values>"
//   check   -> stops the spinners and checks their registers, and the sleeper:
//              "check spin0=ok ... spin7=ok sleeper_ok=N sleeper_err=M"
//   marker  -> "marker <the string at the marker address>"
//   ro      -> "ro <the string at the read-only page>"
// Whatever the reader thread reads from fd 3 comes out as "read <n> <bytes>".
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr int kSpinners = 8;
constexpr size_t kBigSize = 3 << 20;

struct Spinner {
  int index = 0;
  pthread_t thread{};
  volatile int stop = 0;
  volatile uint64_t spins = 0;
  alignas(32) uint8_t expected[16][32];
  alignas(32) uint8_t actual[16][32];
};

Spinner g_spinners[kSpinners];
alignas(4096) char g_marker[4096] = "frost-marker";
std::atomic<long> g_rt_count{0};
std::atomic<long> g_rt_sum{0};
std::atomic<long> g_sleep_ok{0};
std::atomic<long> g_sleep_err{0};
pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

void say(const std::string& line) {
  pthread_mutex_lock(&g_out);
  std::string l = line + "\n";
  (void)!write(1, l.data(), l.size());
  pthread_mutex_unlock(&g_out);
}

void on_rt(int, siginfo_t* info, void*) {
  g_rt_count.fetch_add(1);
  g_rt_sum.fetch_add(info->si_value.sival_int);
}

// Loads ymm0-15 from `expected`, then spins (counting, yielding through the
// kernel so that seizes often find it inside a system call) until told to
// stop, and stores ymm0-15 to `actual`. Nothing in the loop touches them.
void* spin(void* arg) {
  auto* s = static_cast<Spinner*>(arg);
  std::string name = "spin" + std::to_string(s->index);
  prctl(PR_SET_NAME, name.c_str());
  asm volatile(
      "vmovdqu 0(%[in]), %%ymm0\n\t"
      "vmovdqu 32(%[in]), %%ymm1\n\t"
      "vmovdqu 64(%[in]), %%ymm2\n\t"
      "vmovdqu 96(%[in]), %%ymm3\n\t"
      "vmovdqu 128(%[in]), %%ymm4\n\t"
      "vmovdqu 160(%[in]), %%ymm5\n\t"
      "vmovdqu 192(%[in]), %%ymm6\n\t"
      "vmovdqu 224(%[in]), %%ymm7\n\t"
      "vmovdqu 256(%[in]), %%ymm8\n\t"
      "vmovdqu 288(%[in]), %%ymm9\n\t"
      "vmovdqu 320(%[in]), %%ymm10\n\t"
      "vmovdqu 352(%[in]), %%ymm11\n\t"
      "vmovdqu 384(%[in]), %%ymm12\n\t"
      "vmovdqu 416(%[in]), %%ymm13\n\t"
      "vmovdqu 448(%[in]), %%ymm14\n\t"
      "vmovdqu 480(%[in]), %%ymm15\n\t"
      "1:\n\t"
      "incq (%[spins])\n\t"
      "movl $24, %%eax\n\t"  // sched_yield
      "syscall\n\t"
      "cmpl $0, (%[stop])\n\t"
      "je 1b\n\t"
      "vmovdqu %%ymm0, 0(%[out])\n\t"
      "vmovdqu %%ymm1, 32(%[out])\n\t"
      "vmovdqu %%ymm2, 64(%[out])\n\t"
      "vmovdqu %%ymm3, 96(%[out])\n\t"
      "vmovdqu %%ymm4, 128(%[out])\n\t"
      "vmovdqu %%ymm5, 160(%[out])\n\t"
      "vmovdqu %%ymm6, 192(%[out])\n\t"
      "vmovdqu %%ymm7, 224(%[out])\n\t"
      "vmovdqu %%ymm8, 256(%[out])\n\t"
      "vmovdqu %%ymm9, 288(%[out])\n\t"
      "vmovdqu %%ymm10, 320(%[out])\n\t"
      "vmovdqu %%ymm11, 352(%[out])\n\t"
      "vmovdqu %%ymm12, 384(%[out])\n\t"
      "vmovdqu %%ymm13, 416(%[out])\n\t"
      "vmovdqu %%ymm14, 448(%[out])\n\t"
      "vmovdqu %%ymm15, 480(%[out])\n\t"
      "vzeroupper\n\t"
      :
      : [in] "r"(s->expected), [out] "r"(s->actual), [spins] "r"(&s->spins), [stop] "r"(&s->stop)
      : "rax", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
        "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  return nullptr;
}

// Never enters the kernel of its own accord: seized, it is stopped in user
// code, outside any system call.
void* busy(void*) {
  prctl(PR_SET_NAME, "busy");
  static volatile uint64_t count = 0;
  for (;;) count = count + 1;
}

void* reader(void*) {
  prctl(PR_SET_NAME, "reader");
  char buf[256];
  for (;;) {
    ssize_t n = read(3, buf, sizeof(buf));
    if (n == 0) return nullptr;
    if (n < 0) {
      say("read error " + std::to_string(errno));
      return nullptr;
    }
    say("read " + std::to_string(n) + " " + std::string(buf, size_t(n)));
  }
}

// Sleeps in 200 ms steps. An interrupted sleep must be resumed by the kernel
// (restart_syscall), never end early with EINTR: it counts as an error.
void* sleeper(void*) {
  prctl(PR_SET_NAME, "sleeper");
  sigset_t rt;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN);
  pthread_sigmask(SIG_BLOCK, &rt, nullptr);
  for (;;) {
    timespec ts{0, 200'000'000};
    int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
    (r == 0 ? g_sleep_ok : g_sleep_err).fetch_add(1);
  }
}

std::string hex(const uint8_t* p, size_t n) {
  std::string out;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    snprintf(b, sizeof(b), "%02x", p[i]);
    out += b;
  }
  return out;
}

std::string check() {
  std::string out = "check";
  for (Spinner& s : g_spinners) {
    s.stop = 1;
    pthread_join(s.thread, nullptr);
    std::string verdict = "ok";
    for (int r = 0; r < 16; ++r) {
      if (memcmp(s.expected[r], s.actual[r], 32) != 0) {
        verdict = "bad:ymm" + std::to_string(r) + ":" + hex(s.actual[r], 32);
        break;
      }
    }
    out += " spin" + std::to_string(s.index) + "=" + verdict;
  }
  out += " sleeper_ok=" + std::to_string(g_sleep_ok.load());
  out += " sleeper_err=" + std::to_string(g_sleep_err.load());
  return out;
}

std::string read_command() {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = read(0, &c, 1);
    if (n < 0 && errno == EINTR) return "EINTR";  // must not happen: read restarts
    if (n <= 0) _exit(0);
    if (c == '\n') return line;
    line += c;
  }
}

uint64_t total_spins() {
  uint64_t sum = 0;
  for (Spinner& s : g_spinners) sum += s.spins;
  return sum;
}

void* page_with(const char* text, int prot) {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  strcpy(static_cast<char*>(p), text);
  mprotect(p, 4096, prot);
  return p;
}

int run_threads() {
  // Blocked everywhere (threads inherit the mask): they stay pending.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, SIGRTMIN + 1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGRTMIN, &sa, nullptr);

  void* none_page = page_with("behind PROT_NONE", PROT_NONE);
  void* ro_page = page_with("read-only", PROT_READ);
  auto* big = static_cast<uint8_t*>(
      mmap(nullptr, kBigSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t i = 0; i < kBigSize; ++i) big[i] = uint8_t(i % 251);

  for (int i = 0; i < kSpinners; ++i) {
    Spinner& s = g_spinners[i];
    s.index = i;
    for (int r = 0; r < 16; ++r) memset(s.expected[r], (i << 4) | r, 32);
    pthread_create(&s.thread, nullptr, spin, &s);
  }
  pthread_t t;
  pthread_create(&t, nullptr, reader, nullptr);
  pthread_create(&t, nullptr, sleeper, nullptr);
  pthread_create(&t, nullptr, busy, nullptr);
  for (Spinner& s : g_spinners) {
    while (s.spins == 0) usleep(1000);
  }
  char ready[256];
  snprintf(ready, sizeof(ready), "ready %p %p %p %p", static_cast<void*>(g_marker), none_page,
           ro_page, static_cast<void*>(big));
  say(ready);
  for (;;) {
    std::string cmd = read_command();
    if (cmd == "ping") {
      say("pong " + std::to_string(total_spins()) + " " + std::to_string(g_rt_count.load()) + " " +
          std::to_string(g_rt_sum.load()));
    } else if (cmd == "check") {
      say(check());
    } else if (cmd == "marker") {
      say(std::string("marker ") + g_marker);
    } else if (cmd == "ro") {
      say(std::string("ro ") + static_cast<char*>(ro_page));
    } else {
      say("unknown " + cmd);
    }
  }
}

// --- churn: threads come and go -----------------------------------------------

std::atomic<long> g_created{0};

void* short_lived(void*) {
  for (int i = 0; i < 50; ++i) sched_yield();
  return nullptr;
}

void* spawner(void*) {
  prctl(PR_SET_NAME, "spawner");
  for (;;) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, short_lived, nullptr) == 0) g_created.fetch_add(1);
    pthread_attr_destroy(&attr);
    // Keep a handful alive at once, not thousands.
    if (g_created.load() % 8 == 0) usleep(200);
  }
}

int run_churn() {
  pthread_t t;
  pthread_create(&t, nullptr, spawner, nullptr);
  pthread_create(&t, nullptr, spawner, nullptr);
  while (g_created.load() < 100) usleep(1000);
  say("ready");
  for (;;) {
    std::string cmd = read_command();
    say(cmd == "ping" ? "pong " + std::to_string(g_created.load()) : "unknown " + cmd);
  }
}

}  // namespace

// --- leaderless: the main thread exits, another runs on -------------------------

void* orphan(void*) {
  for (;;) pause();
}

int run_leaderless() {
  pthread_t t;
  pthread_create(&t, nullptr, orphan, nullptr);
  say("ready");
  pthread_exit(nullptr);
}

// --- vfork: the main thread waits for a vfork child that sleeps ---------------------

int run_vfork() {
  say("ready");
  if (vfork() == 0) {
    char line[64];  // a vfork child shares the parent's memory: no allocation here
    int n = snprintf(line, sizeof(line), "child %d\n", int(getpid()));
    (void)!write(1, line, size_t(n));
    sleep(60);
    _exit(0);
  }
  for (;;) pause();
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "threads";
  if (mode == "churn") return run_churn();
  if (mode == "leaderless") return run_leaderless();
  if (mode == "vfork") return run_vfork();
  return run_threads();
}
