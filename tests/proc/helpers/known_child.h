// A child process whose state the tests know in advance: one of each kind of
// memory area, blocked/ignored/caught/pending signals, a umask, a lowered
// rlimit, a personality flag, no_new_privs, an awkward name and a second
// thread. Built on TestChild.
#pragma once

#include <pthread.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "test_child.h"

namespace frost::testing {

// What the child set up; addresses are in the child.
struct KnownChildLayout {
  int failed_step = 0;  // 0 when every step worked, else the step that failed
  int failed_errno = 0;
  uint64_t file_area = 0;     // kFilePages of `file`, private, from offset kFileOffset
  uint64_t deleted_area = 0;  // 1 page of `deleted_file`, shared, then unlinked
  uint64_t anon_area = 0;     // kAnonPages private anonymous: dontdump, wipeonfork
  uint64_t shared_area = 0;   // kSharedPages shared anonymous
  uint64_t memfd_area = 0;    // kMemfdPages of memfd "frost test", shared
  uint64_t locked_area = 0;   // 1 page, mlocked
  pid_t worker_tid = 0;       // the second thread
};

struct KnownChild {
  static constexpr uint64_t kFilePages = 2, kFileOffset = 4096;
  static constexpr uint64_t kAnonPages = 8, kSharedPages = 4, kMemfdPages = 2;
  // Pages of anon_area the child wrote.
  static constexpr int kAnonTouched[] = {1, 2, 6};
  static constexpr mode_t kUmask = 027;
  static constexpr rlim_t kNofileSoft = 100, kNofileHard = 200;
  static constexpr const char* kName = "f) (x y";  // comm with ")", " (" and spaces
  static constexpr const char* kWorkerName = "frost worker";
  static constexpr const char* kMemfdName = "frost test";
  static constexpr unsigned long kPersonalityFlag = ADDR_NO_RANDOMIZE;
};

namespace known_child_detail {

inline void on_hup(int) {}

inline void* worker(void* arg) {
  ::prctl(PR_SET_NAME, KnownChild::kWorkerName);
  static_cast<std::atomic<pid_t>*>(arg)->store(pid_t(::syscall(SYS_gettid)));
  for (;;) ::pause();
}

inline void* map(size_t len, int prot, int flags, int fd = -1, off_t off = 0) {
  void* p = ::mmap(nullptr, len, prot, flags, fd, off);
  return p == MAP_FAILED ? nullptr : p;
}

// Runs in the child. Each step records itself on failure and stops.
inline KnownChildLayout set_up(const std::string& cwd, const std::string& file,
                               const std::string& deleted_file) {
  KnownChildLayout l;
  const size_t ps = size_t(::sysconf(_SC_PAGESIZE));
  auto fail = [&](int step) {
    l.failed_step = step;
    l.failed_errno = errno;
    return l;
  };
  if (::chdir(cwd.c_str()) != 0) return fail(1);
  ::umask(KnownChild::kUmask);

  int fd = ::open(file.c_str(), O_RDWR);
  void* p = fd < 0 ? nullptr
                   : map(KnownChild::kFilePages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                         KnownChild::kFileOffset);
  if (!p) return fail(2);
  ::close(fd);
  l.file_area = uint64_t(p);

  fd = ::open(deleted_file.c_str(), O_RDWR);
  p = fd < 0 ? nullptr : map(ps, PROT_READ, MAP_SHARED, fd);
  if (!p || ::unlink(deleted_file.c_str()) != 0) return fail(3);
  ::close(fd);
  l.deleted_area = uint64_t(p);

  auto* anon = static_cast<char*>(
      map(KnownChild::kAnonPages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
  size_t anon_len = KnownChild::kAnonPages * ps;
  if (!anon || ::madvise(anon, anon_len, MADV_NOHUGEPAGE) != 0 ||
      ::madvise(anon, anon_len, MADV_DONTDUMP) != 0 || ::madvise(anon, anon_len, MADV_WIPEONFORK) != 0)
    return fail(4);
  for (int page : KnownChild::kAnonTouched) anon[size_t(page) * ps] = 1;
  l.anon_area = uint64_t(anon);

  auto* shared = static_cast<char*>(
      map(KnownChild::kSharedPages * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS));
  if (!shared) return fail(5);
  shared[0] = 1;
  l.shared_area = uint64_t(shared);

  fd = ::memfd_create(KnownChild::kMemfdName, MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, off_t(KnownChild::kMemfdPages * ps)) != 0) return fail(6);
  p = map(KnownChild::kMemfdPages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  if (!p) return fail(6);
  l.memfd_area = uint64_t(p);

  // The raw system call: sanitizer runtimes turn mlock() into a no-op.
  p = map(ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (!p || ::syscall(SYS_mlock, p, ps) != 0) return fail(7);
  l.locked_area = uint64_t(p);

  // Signals: block before anything can arrive; SIGUSR1 is sent to this
  // thread (raise), SIGUSR2 to the process, so they land in SigPnd and ShdPnd.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  if (::sigprocmask(SIG_BLOCK, &block, nullptr) != 0) return fail(8);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, on_hup);
  ::raise(SIGUSR1);
  ::kill(::getpid(), SIGUSR2);

  struct rlimit nofile = {KnownChild::kNofileSoft, KnownChild::kNofileHard};
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) return fail(9);
  if (::personality(0xffffffff) == -1 ||
      ::personality(unsigned(::personality(0xffffffff)) | KnownChild::kPersonalityFlag) == -1)
    return fail(10);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(11);
  if (::prctl(PR_SET_NAME, KnownChild::kName) != 0) return fail(12);

  static std::atomic<pid_t> tid{0};
  pthread_t t;
  if (::pthread_create(&t, nullptr, worker, &tid) != 0) return fail(13);
  while (tid.load() == 0) ::usleep(1000);
  l.worker_tid = tid.load();
  return l;
}

}  // namespace known_child_detail

// Spawns the known child. cwd must exist; file must hold at least
// kFileOffset + kFilePages pages; deleted_file is unlinked by the child.
inline std::unique_ptr<TestChild<KnownChildLayout>> spawn_known_child(
    const std::string& cwd, const std::string& file, const std::string& deleted_file) {
  return TestChild<KnownChildLayout>::spawn(
      [&] { return known_child_detail::set_up(cwd, file, deleted_file); });
}

}  // namespace frost::testing
