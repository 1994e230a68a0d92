// Reading a live process from /proc: maps/smaps, status/stat/limits and the
// small files, pagemap, and the compat constants checked against the running
// kernel. Literal-text tests pin the tricky lines; live tests read this
// process and a child with known state (helpers/known_child.h).
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/kernel_compat.h"
#include "helpers/known_child.h"
#include "proc/pagemap.h"
#include "proc/proc_maps.h"
#include "proc/proc_status.h"

namespace frost::proc {
namespace {

using testing::KnownChild;
using testing::KnownChildLayout;

const uint64_t kPage = uint64_t(::sysconf(_SC_PAGESIZE));

// A scratch directory whose name has spaces, removed at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/frost proc test XXXXXX";
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Creates a file of `pages` pages, page i filled with byte i + 1.
  std::string make_file(const std::string& name, uint64_t pages) const {
    std::string p = path_ + "/" + name;
    std::ofstream f(p, std::ios::binary);
    for (uint64_t i = 0; i < pages; i++) f << std::string(kPage, char(i + 1));
    return p;
  }

 private:
  std::string path_;
};

// The area containing addr, or nullptr.
const MemoryArea* find_area(const std::vector<MemoryArea>& areas, uint64_t addr) {
  for (const auto& a : areas)
    if (a.start <= addr && addr < a.end) return &a;
  return nullptr;
}

const MemoryArea* find_kind(const std::vector<MemoryArea>& areas, AreaKind kind) {
  for (const auto& a : areas)
    if (a.kind == kind) return &a;
  return nullptr;
}

uint64_t sigbit(int sig) { return 1ull << (sig - 1); }

// An anonymous private mapping owned by a test.
struct Mapping {
  explicit Mapping(uint64_t pages, int prot = PROT_READ | PROT_WRITE)
      : len(pages * kPage),
        p(static_cast<char*>(::mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))) {
    ::madvise(p, len, MADV_NOHUGEPAGE);  // 4 KiB pages, whatever THP is set to
  }
  ~Mapping() { ::munmap(p, len); }
  uint64_t addr(uint64_t page = 0) const { return uint64_t(p) + page * kPage; }
  size_t len;
  char* p;
};

// --- the compat header against the running kernel -----------------------------

TEST(ProcKernelCompat, PrctlMmMapHasTheKernelsSize) {
  unsigned int size = 0;
  ASSERT_EQ(::prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0), 0) << strerror(errno);
  EXPECT_EQ(size, sizeof(struct prctl_mm_map));
}

TEST(ProcKernelCompat, PagemapScanIoctlAnswers) {
  Mapping m(4);
  m.p[kPage] = 1;
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  page_region regions[4];
  pm_scan_arg arg{};
  arg.size = sizeof arg;
  arg.start = m.addr();
  arg.end = m.addr(4);
  arg.vec = uint64_t(regions);
  arg.vec_len = 4;
  arg.category_mask = PAGE_IS_PRESENT;
  arg.return_mask = PAGE_IS_PRESENT;
  ASSERT_EQ(::ioctl(fd.get(), PAGEMAP_SCAN, &arg), 1) << strerror(errno);
  EXPECT_EQ(regions[0].start, m.addr(1));
  EXPECT_EQ(regions[0].end, m.addr(2));
  EXPECT_EQ(arg.walk_end, m.addr(4));
}

TEST(ProcKernelCompat, GuardPagesShowInPagemapScan) {
  Mapping m(3);
  ASSERT_EQ(::madvise(m.p + kPage, kPage, MADV_GUARD_INSTALL), 0) << strerror(errno);
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  page_region r[2];
  pm_scan_arg arg{};
  arg.size = sizeof arg;
  arg.start = m.addr();
  arg.end = m.addr(3);
  arg.vec = uint64_t(r);
  arg.vec_len = 2;
  arg.category_mask = PAGE_IS_GUARD;
  arg.return_mask = PAGE_IS_GUARD;
  ASSERT_EQ(::ioctl(fd.get(), PAGEMAP_SCAN, &arg), 1) << strerror(errno);
  EXPECT_EQ(r[0].start, m.addr(1));
  EXPECT_EQ(r[0].end, m.addr(2));
}

TEST(ProcKernelCompat, Clone3NumberChecksItsSize) {
  // clone3 rejects a size above a page with E2BIG and one below VER0 with
  // EINVAL before doing anything: a wrong number would say ENOSYS or else.
  errno = 0;
  EXPECT_EQ(::syscall(SYS_clone3, nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  static char big[8192];
  EXPECT_EQ(::syscall(SYS_clone3, big, kPage + 1), -1);
  EXPECT_EQ(errno, E2BIG);
}

TEST(ProcKernelCompat, PidfdOpenAndGetfd) {
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, ::getpid(), 0)));
  ASSERT_TRUE(pidfd) << strerror(errno);
  UniqueFd mine(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  UniqueFd copy(int(::syscall(SYS_pidfd_getfd, pidfd.get(), mine.get(), 0)));
  ASSERT_TRUE(copy) << strerror(errno);
  struct stat a, b;
  ASSERT_EQ(::fstat(mine.get(), &a), 0);
  ASSERT_EQ(::fstat(copy.get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST(ProcKernelCompat, UserfaultfdOffersAsyncWriteProtect) {
  UniqueFd uffd(int(::syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY)));
  ASSERT_TRUE(uffd) << strerror(errno);
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_API, &api), 0) << strerror(errno);
  EXPECT_TRUE(api.features & UFFD_FEATURE_WP_ASYNC);
  EXPECT_TRUE(api.features & UFFD_FEATURE_WP_UNPOPULATED);
}

TEST(ProcKernelCompat, MsealSealsAndSmapsSaysSo) {
  // Leaves one sealed page in the test process: it cannot be unmapped.
  void* p = ::mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(::syscall(SYS_mseal, p, kPage, 0), 0) << strerror(errno);
  EXPECT_EQ(::munmap(p, kPage), -1);
  EXPECT_EQ(errno, EPERM);
  auto areas = read_smaps(::getpid());
  ASSERT_TRUE(areas.ok()) << areas.error().to_string();
  const MemoryArea* a = find_area(*areas, uint64_t(p));
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->flags.has(vmflag::kSealed)) << a->flags.to_string();
}

TEST(ProcKernelCompat, ArchGetFsIsTheThreadPointer) {
  uint64_t fs = 0;
  ASSERT_EQ(::syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), 0);
  EXPECT_EQ(fs, uint64_t(::pthread_self()));
}

TEST(ProcKernelCompat, RseqConfigurationOfAChild) {
  auto child = testing::TestChild<int>::spawn([] { return 1; });
  ASSERT_NE(child, nullptr);
  pid_t pid = child->pid();
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, pid, 0, 0), 0) << strerror(errno);
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, pid, 0, 0), 0);
  int status;
  ASSERT_EQ(::waitpid(pid, &status, __WALL), pid);
  ptrace_rseq_configuration conf{};
  long n = ::ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof conf, &conf);
  EXPECT_EQ(n, long(sizeof conf)) << strerror(errno);
  EXPECT_NE(conf.rseq_abi_pointer, 0u);    // glibc registers rseq for every thread
  EXPECT_EQ(conf.signature, 0x53053053u);  // glibc's RSEQ_SIG on x86
  ::ptrace(PTRACE_DETACH, pid, 0, 0);
}

// --- maps and smaps as text ------------------------------------------------------

constexpr std::string_view kMapsText =
    "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f00aa000000-7f00aa001000 r-xp 00002000 fe:01 1234567                    /usr/lib/libfoo.so.1\n"
    "7f00ab000000-7f00ab100000 rw-s 00000000 00:01 2048                       /dev/zero (deleted)\n"
    "7f00ac000000-7f00ac001000 rw-s 00000000 00:01 4096                       /memfd:frost buf (deleted)\n"
    "7f00ad000000-7f00ad002000 rw-p 00000000 00:00 0 \n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd00100000-7ffd00102000 r--p 00000000 00:00 0                          [vvar]\n"
    "7ffd00102000-7ffd00103000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7ffd00103000-7ffd00105000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST(ProcMapsParse, EveryKindOfArea) {
  auto r = parse_maps(kMapsText);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& a = *r;
  ASSERT_EQ(a.size(), 10u);
  AreaKind kinds[] = {AreaKind::kHeap, AreaKind::kFile,  AreaKind::kShmem,      AreaKind::kShmem,
                      AreaKind::kAnon, AreaKind::kStack, AreaKind::kVvar,       AreaKind::kVvarVclock,
                      AreaKind::kVdso, AreaKind::kVsyscall};
  for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(a[i].kind, kinds[i]) << i << " " << a[i].path;
  EXPECT_EQ(a[1].start, 0x7f00aa000000u);
  EXPECT_EQ(a[1].size(), 0x1000u);
  EXPECT_EQ(a[1].prot, PROT_READ | PROT_EXEC);
  EXPECT_FALSE(a[1].shared);
  EXPECT_EQ(a[1].offset, 0x2000u);
  EXPECT_EQ(a[1].dev_major, 0xfeu);
  EXPECT_EQ(a[1].dev_minor, 1u);
  EXPECT_EQ(a[1].inode, 1234567u);
  EXPECT_EQ(a[1].path, "/usr/lib/libfoo.so.1");
  EXPECT_FALSE(a[1].deleted);
  EXPECT_EQ(a[2].path, "/dev/zero");
  EXPECT_TRUE(a[2].deleted && a[2].shared);
  EXPECT_EQ(a[3].path, "/memfd:frost buf");
  EXPECT_EQ(a[4].path, "");
  EXPECT_EQ(a[4].perms(), "rw-p");
  EXPECT_EQ(a[9].start, 0xffffffffff600000u);
  EXPECT_EQ(a[9].perms(), "--xp");
  EXPECT_FALSE(a[0].has_smaps);
}

TEST(ProcMapsParse, OddPaths) {
  auto one = [](std::string path) {
    auto r = parse_maps_line("1000-2000 r--p 00000000 08:01 42   " + path);
    EXPECT_TRUE(r.ok()) << path;
    return r.ok() ? *r : MemoryArea{};
  };
  MemoryArea a = one("/tmp/a b/c  d (deleted)");
  EXPECT_EQ(a.path, "/tmp/a b/c  d");
  EXPECT_TRUE(a.deleted);
  EXPECT_EQ(one("/tmp/x\\012y").path, "/tmp/x\ny");
  EXPECT_EQ(one("/tmp/trailing ").path, "/tmp/trailing ");
  EXPECT_EQ(one("/tmp/(deleted)").path, "/tmp/(deleted)");
  EXPECT_EQ(one("/SYSV0000abcd (deleted)").kind, AreaKind::kShmem);
  EXPECT_EQ(one("/dev/zero").kind, AreaKind::kFile);  // a private /dev/zero mapping
  EXPECT_EQ(one("[anon:my heap]").kind, AreaKind::kAnon);
  EXPECT_EQ(one("[anon_shmem:x]").kind, AreaKind::kShmem);
  EXPECT_EQ(one("anon_inode:[io_uring]").kind, AreaKind::kOther);
  EXPECT_EQ(one("[uprobes]").kind, AreaKind::kOther);
  EXPECT_EQ(one("[stack:1234]").kind, AreaKind::kStack);
}

TEST(ProcMapsParse, WideFields) {
  auto r = parse_maps_line("7f0000000000-7f0000001000 rw-s ffffffff00000000 103:0a 18446744073709551615 /x");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->offset, 0xffffffff00000000u);
  EXPECT_EQ(r->dev_major, 0x103u);
  EXPECT_EQ(r->dev_minor, 0xau);
  EXPECT_EQ(r->inode, UINT64_MAX);
  EXPECT_EQ(r->prot, PROT_READ | PROT_WRITE);
  EXPECT_TRUE(r->shared);
}

TEST(ProcMapsParse, RejectsMalformedLines) {
  for (const char* bad : {
           "zzzz",
           "2000-1000 rw-p 0 00:00 0",        // end before start
           "1000-1000 rw-p 0 00:00 0",        // empty
           "1000-2000 rwxq 0 00:00 0",        // q is neither s nor p
           "1000-2000 rw- 0 00:00 0",         // short permissions
           "1000-2000 rw-p",                  // cut short
           "1000-2000 rw-p 0 00:00",          //
           "1000-2000 rw-p 0 0000 0",         // device without ':'
           "1000-2000 rw-p 0 00:00 abc",      // inode not decimal
           "-2000 rw-p 0 00:00 0",            //
           "1000- rw-p 0 00:00 0",            //
           "11111111111111111-2 rw-p 0 00:00 0",  // overflows 64 bits
       }) {
    auto r = parse_maps(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_TRUE(r.error().is(ErrorKind::kInvalidArgument));
    }
  }
}

constexpr std::string_view kSmapsText =
    "7f00ad000000-7f00ad008000 rw-p 00000000 00:00 0 \n"
    "Size:                 32 kB\n"
    "Rss:                  12 kB\n"
    "Anonymous:             8 kB\n"
    "Private_Dirty:         8 kB\n"
    "Swap:                  4 kB\n"
    "THPeligible:           0\n"
    "ProtectionKey:         0\n"
    "VmFlags: rd wr mr mw me dd wf zz xyz ac \n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "Rss:                 132 kB\n"
    "VmFlags: rd wr mr mw me gd ac\n";

TEST(ProcMapsParse, SmapsSizesAndFlags) {
  auto r = parse_smaps(kSmapsText);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  const MemoryArea& a = (*r)[0];
  EXPECT_TRUE(a.has_smaps);
  EXPECT_EQ(a.rss, 12u * 1024);
  EXPECT_EQ(a.anonymous, 8u * 1024);
  EXPECT_EQ(a.private_dirty, 8u * 1024);
  EXPECT_EQ(a.swap, 4u * 1024);
  EXPECT_TRUE(a.flags.has(vmflag::kDontDump));
  EXPECT_TRUE(a.flags.has(vmflag::kWipeOnFork));
  EXPECT_TRUE(a.flags.has("zz"));  // unknown to frost, kept
  EXPECT_FALSE(a.flags.has(vmflag::kGrowsDown));
  EXPECT_EQ(a.flags.to_string(), "ac dd me mr mw rd wf wr zz");
  EXPECT_TRUE((*r)[1].flags.has(vmflag::kGrowsDown));
  EXPECT_EQ((*r)[1].kind, AreaKind::kStack);
}

TEST(ProcMapsParse, SmapsRejectsStrayFields) {
  EXPECT_FALSE(parse_smaps("Rss: 4 kB\n").ok());  // before any area
  EXPECT_FALSE(parse_smaps("1000-2000 rw-p 0 00:00 0\nRss: four kB\n").ok());
  EXPECT_FALSE(parse_smaps("1000-2000 rw-p 0 00:00 0\nno colon here\n").ok());
}

TEST(ProcMapsParse, NeverCrashesOnMutatedText) {
  std::mt19937 rng(42);
  std::string base = std::string(kMapsText) + std::string(kSmapsText);
  const char alphabet[] = "0123456789abcdef-: \n()[]/rwxps\\kBVmFlags";
  for (int iter = 0; iter < 3000; iter++) {
    std::string s = base;
    int edits = 1 + int(rng() % 8);
    for (int e = 0; e < edits; e++) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: s.erase(at, rng() % 16); break;
        default: s.insert(at, std::string(1 + rng() % 4, alphabet[rng() % (sizeof alphabet - 1)]));
      }
      if (s.empty()) s = "x";
    }
    auto m = parse_maps(s);
    auto sm = parse_smaps(s);
    if (m.ok()) {
      for (const auto& a : *m) EXPECT_LT(a.start, a.end);
    }
    (void)sm;
  }
}

// --- maps of live processes ------------------------------------------------------

TEST(ProcMapsLive, SelfHasTheUsualAreas) {
  auto r = read_smaps(::getpid());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& areas = *r;
  for (size_t i = 1; i < areas.size(); i++) EXPECT_LE(areas[i - 1].end, areas[i].start);
  for (AreaKind k : {AreaKind::kStack, AreaKind::kVdso, AreaKind::kVvar, AreaKind::kVvarVclock})
    EXPECT_NE(find_kind(areas, k), nullptr) << area_kind_name(k);
  int local = 0;
  const MemoryArea* stack = find_area(areas, uint64_t(&local));
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->kind, AreaKind::kStack);
  EXPECT_TRUE(stack->flags.has(vmflag::kGrowsDown));
  EXPECT_GT(stack->rss, 0u);
  const MemoryArea* code = find_area(areas, uint64_t(&read_smaps));
  ASSERT_NE(code, nullptr);
  EXPECT_EQ(code->kind, AreaKind::kFile);
  EXPECT_TRUE(code->prot & PROT_EXEC);
  auto exe = read_exe(::getpid());
  ASSERT_TRUE(exe.ok());
  EXPECT_EQ(code->path, *exe);
  // maps and smaps agree on the layout.
  auto m = read_maps(::getpid());
  ASSERT_TRUE(m.ok());
  EXPECT_NE(find_area(*m, uint64_t(&local)), nullptr);
}

class ProcKnownChild : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.make_file("mapped file", 4);
    std::string deleted = dir_.make_file("deleted file", 1);
    child_ = testing::spawn_known_child(dir_.path(), file_, deleted);
    ASSERT_NE(child_, nullptr);
    ASSERT_EQ(layout().failed_step, 0) << "step " << layout().failed_step << ": "
                                       << strerror(layout().failed_errno);
  }
  pid_t pid() const { return child_->pid(); }
  const KnownChildLayout& layout() const { return child_->report(); }

  TempDir dir_;
  std::string file_;
  std::unique_ptr<testing::TestChild<KnownChildLayout>> child_;
};

TEST_F(ProcKnownChild, MemoryAreas) {
  auto r = read_smaps(pid());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto& areas = *r;
  const MemoryArea* f = find_area(areas, layout().file_area);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->kind, AreaKind::kFile);
  EXPECT_EQ(f->path, file_);  // with its spaces
  EXPECT_EQ(f->offset, KnownChild::kFileOffset);
  EXPECT_EQ(f->size(), KnownChild::kFilePages * kPage);
  EXPECT_EQ(f->perms(), "rw-p");
  struct stat st;
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(f->inode, st.st_ino);
  EXPECT_EQ(f->dev_major, major(st.st_dev));
  EXPECT_EQ(f->dev_minor, minor(st.st_dev));

  const MemoryArea* d = find_area(areas, layout().deleted_area);
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->deleted);
  EXPECT_EQ(d->path, dir_.path() + "/deleted file");
  EXPECT_EQ(d->perms(), "r--s");

  const MemoryArea* a = find_area(areas, layout().anon_area);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->kind, AreaKind::kAnon);
  EXPECT_EQ(a->size(), KnownChild::kAnonPages * kPage);
  EXPECT_TRUE(a->flags.has(vmflag::kDontDump)) << a->flags.to_string();
  EXPECT_TRUE(a->flags.has(vmflag::kWipeOnFork));
  EXPECT_TRUE(a->flags.has(vmflag::kNoHugePage));
  EXPECT_EQ(a->anonymous, std::size(KnownChild::kAnonTouched) * kPage);

  const MemoryArea* s = find_area(areas, layout().shared_area);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->kind, AreaKind::kShmem);
  EXPECT_EQ(s->path, "/dev/zero");
  EXPECT_TRUE(s->shared);

  const MemoryArea* m = find_area(areas, layout().memfd_area);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->kind, AreaKind::kShmem);
  EXPECT_EQ(m->path, std::string("/memfd:") + KnownChild::kMemfdName);

  const MemoryArea* l = find_area(areas, layout().locked_area);
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(l->flags.has(vmflag::kLocked));
}

// --- status, stat, limits as text ---------------------------------------------------

constexpr std::string_view kStatusText =
    "Name:\tmy\\nproc x \n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Ngid:\t0\n"
    "Pid:\t4243\n"
    "PPid:\t1\n"
    "TracerPid:\t77\n"
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t2000\t2001\t2002\t2003\n"
    "FDSize:\t64\n"
    "Groups:\t4 24 27 \n"
    "NSpid:\t4243\t12\n"
    "Threads:\t3\n"
    "SigQ:\t2/127350\n"
    "SigPnd:\t0000000000000200\n"
    "ShdPnd:\t0000000000000800\n"
    "SigBlk:\t0000000000000a00\n"
    "SigIgn:\t0000000000001000\n"
    "SigCgt:\t0000000180000001\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001ffffffffff\n"
    "CapEff:\t000001fffeffffff\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t1\n"
    "Speculation_Store_Bypass:\tthread vulnerable\n"
    "Cpus_allowed_list:\t0-1\n";

TEST(ProcStatusParse, EveryField) {
  auto r = parse_status(kStatusText);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ProcStatus& s = *r;
  EXPECT_EQ(s.name, "my\nproc x ");
  EXPECT_EQ(s.umask, mode_t(022));
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.tgid, 4242);
  EXPECT_EQ(s.pid, 4243);
  EXPECT_EQ(s.ppid, 1);
  EXPECT_EQ(s.tracer_pid, 77);
  EXPECT_EQ(s.uid.real, 1000u);
  EXPECT_EQ(s.uid.fs, 1003u);
  EXPECT_EQ(s.gid.saved, 2002u);
  EXPECT_EQ(s.groups, (std::vector<gid_t>{4, 24, 27}));
  EXPECT_EQ(s.nspid, (std::vector<pid_t>{4243, 12}));
  EXPECT_EQ(s.threads, 3);
  EXPECT_EQ(s.sigq_queued, 2u);
  EXPECT_EQ(s.sigq_limit, 127350u);
  EXPECT_EQ(s.sig_pending, sigbit(SIGUSR1));
  EXPECT_EQ(s.shared_pending, sigbit(SIGUSR2));
  EXPECT_EQ(s.sig_blocked, sigbit(SIGUSR1) | sigbit(SIGUSR2));
  EXPECT_EQ(s.sig_ignored, sigbit(SIGPIPE));
  EXPECT_EQ(s.sig_caught, 0x180000001u);
  EXPECT_EQ(s.cap_effective, 0x1fffeffffffu);
  EXPECT_EQ(s.cap_ambient, 0u);
  EXPECT_TRUE(s.no_new_privs);
  EXPECT_EQ(s.seccomp, 2);
}

TEST(ProcStatusParse, RejectsBrokenStatus) {
  EXPECT_FALSE(parse_status("").ok());
  EXPECT_FALSE(parse_status("Name:\tx\n").ok());  // lacks the rest
  std::string bad(kStatusText);
  bad.replace(bad.find("Uid:\t1000"), 9, "Uid:\tabcd");
  EXPECT_FALSE(parse_status(bad).ok());
  EXPECT_FALSE(parse_status("no colon\n").ok());
}

// A stat line whose field n holds n * 10, after the given comm.
std::string stat_line(const std::string& comm) {
  std::string s = "4242 (" + comm + ") S";
  for (int n = 4; n <= 52; n++) s += " " + std::to_string(n * 10);
  return s + "\n";
}

TEST(ProcStatusParse, StatCommWithParensAndSpaces) {
  auto r = parse_stat(stat_line("a) b (c) ) d"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ProcStat& s = *r;
  EXPECT_EQ(s.pid, 4242);
  EXPECT_EQ(s.comm, "a) b (c) ) d");
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.ppid, 40);
  EXPECT_EQ(s.pgrp, 50);
  EXPECT_EQ(s.session, 60);
  EXPECT_EQ(s.tty_nr, 70);
  EXPECT_EQ(s.flags, 90u);
  EXPECT_EQ(s.num_threads, 200);
  EXPECT_EQ(s.start_time, 220u);
  EXPECT_EQ(s.start_code, 260u);
  EXPECT_EQ(s.start_stack, 280u);
  EXPECT_EQ(s.exit_signal, 380);
  EXPECT_EQ(s.start_data, 450u);
  EXPECT_EQ(s.start_brk, 470u);
  EXPECT_EQ(s.arg_start, 480u);
  EXPECT_EQ(s.env_end, 510u);
  EXPECT_FALSE(s.is_kernel_thread());
  EXPECT_EQ(parse_stat("7 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 5")
                ->is_kernel_thread(),
            true);
}

TEST(ProcStatusParse, RejectsBrokenStat) {
  EXPECT_FALSE(parse_stat("").ok());
  EXPECT_FALSE(parse_stat("4242 comm S 1").ok());
  EXPECT_FALSE(parse_stat("4242 (x) S 1 2 3").ok());  // too few fields
  EXPECT_FALSE(parse_stat(")( 4242 (x").ok());
  std::string bad = stat_line("x");
  bad.replace(bad.find(" 40 "), 4, " 4x ");
  EXPECT_FALSE(parse_stat(bad).ok());
}

constexpr std::string_view kLimitsText =
    "Limit                     Soft Limit           Hard Limit           Units     \n"
    "Max cpu time              unlimited            unlimited            seconds   \n"
    "Max file size             unlimited            unlimited            bytes     \n"
    "Max data size             unlimited            unlimited            bytes     \n"
    "Max stack size            8388608              unlimited            bytes     \n"
    "Max core file size        0                    unlimited            bytes     \n"
    "Max resident set          unlimited            unlimited            bytes     \n"
    "Max processes             63675                63675                processes \n"
    "Max open files            1024                 524288               files     \n"
    "Max locked memory         8388608              8388608              bytes     \n"
    "Max address space         unlimited            unlimited            bytes     \n"
    "Max file locks            unlimited            unlimited            locks     \n"
    "Max pending signals       63675                63675                signals   \n"
    "Max msgqueue size         819200               819200               bytes     \n"
    "Max nice priority         0                    0                    \n"
    "Max realtime priority     0                    0                    \n"
    "Max realtime timeout      unlimited            unlimited            us        \n";

TEST(ProcStatusParse, Limits) {
  auto r = parse_limits(kLimitsText);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ((*r)[RLIMIT_CPU].rlim_cur, RLIM_INFINITY);
  EXPECT_EQ((*r)[RLIMIT_STACK].rlim_cur, 8388608u);
  EXPECT_EQ((*r)[RLIMIT_STACK].rlim_max, RLIM_INFINITY);
  EXPECT_EQ((*r)[RLIMIT_NOFILE].rlim_cur, 1024u);
  EXPECT_EQ((*r)[RLIMIT_NOFILE].rlim_max, 524288u);
  EXPECT_EQ((*r)[RLIMIT_RTTIME].rlim_max, RLIM_INFINITY);
  EXPECT_EQ((*r)[RLIMIT_RTPRIO].rlim_cur, 0u);
  std::string cut(kLimitsText.substr(0, kLimitsText.rfind("Max realtime timeout")));
  EXPECT_FALSE(parse_limits(cut).ok());
  std::string bad(kLimitsText);
  bad.replace(bad.find("1024 "), 5, "lots ");
  EXPECT_FALSE(parse_limits(bad).ok());
}

// --- status and friends of live processes -------------------------------------------

TEST(ProcStatusLive, Self) {
  pid_t me = ::getpid();
  auto s = read_status(me);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->tgid, me);
  EXPECT_EQ(s->ppid, ::getppid());
  EXPECT_EQ(s->uid.effective, ::geteuid());
  EXPECT_GE(s->threads, 1);
  EXPECT_EQ(s->name, *read_comm(me));
  ASSERT_FALSE(s->nspid.empty());
  EXPECT_EQ(s->nspid.back(), me);

  auto st = read_stat(me);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(st->ppid, ::getppid());
  EXPECT_EQ(st->state, 'R');
  EXPECT_FALSE(st->is_kernel_thread());
  uint64_t argv0 = uint64_t(program_invocation_name);
  EXPECT_LE(st->arg_start, argv0);
  EXPECT_LT(argv0, st->arg_end);
  EXPECT_LT(st->env_start, st->env_end);
  EXPECT_LE(st->start_code, uint64_t(&read_stat));
  EXPECT_LT(uint64_t(&read_stat), st->end_code);

  auto limits = read_limits(me);
  ASSERT_TRUE(limits.ok()) << limits.error().to_string();
  struct rlimit nofile;
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  EXPECT_EQ((*limits)[RLIMIT_NOFILE].rlim_cur, nofile.rlim_cur);
  EXPECT_EQ((*limits)[RLIMIT_NOFILE].rlim_max, nofile.rlim_max);

  auto auxv = read_auxv(me);
  ASSERT_TRUE(auxv.ok());
  bool saw_pagesz = false, saw_entry = false;
  for (auto [k, v] : *auxv) {
    if (k == AT_PAGESZ) saw_pagesz = v == kPage;
    if (k == AT_ENTRY) saw_entry = v == ::getauxval(AT_ENTRY);
  }
  EXPECT_TRUE(saw_pagesz && saw_entry);

  auto cwd = read_cwd(me);
  ASSERT_TRUE(cwd.ok());
  EXPECT_EQ(*cwd, std::filesystem::current_path().string());
  auto tids = list_threads(me);
  ASSERT_TRUE(tids.ok());
  EXPECT_NE(std::find(tids->begin(), tids->end(), me), tids->end());
}

TEST(ProcStatusLive, KernelThreadsAreMarked) {
  auto comm = read_comm(2);
  if (!comm.ok() || *comm != "kthreadd") GTEST_SKIP() << "pid 2 is not kthreadd here";
  auto st = read_stat(2);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->is_kernel_thread());
}

TEST_F(ProcKnownChild, StatusAndStat) {
  auto s = read_status(pid());
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->name, KnownChild::kName);
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, ::getpid());
  EXPECT_EQ(s->tracer_pid, 0);
  EXPECT_EQ(s->threads, 2);
  EXPECT_EQ(s->umask, KnownChild::kUmask);
  EXPECT_EQ(s->sig_blocked, sigbit(SIGUSR1) | sigbit(SIGUSR2));
  EXPECT_EQ(s->sig_pending, sigbit(SIGUSR1));
  EXPECT_EQ(s->shared_pending, sigbit(SIGUSR2));
  EXPECT_TRUE(s->sig_ignored & sigbit(SIGPIPE));
  EXPECT_TRUE(s->sig_caught & sigbit(SIGHUP));
  EXPECT_TRUE(s->no_new_privs);
  EXPECT_EQ(s->seccomp, 0);
  EXPECT_NE(s->cap_effective, 0u);  // the test runs as root

  auto st = read_stat(pid());
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(st->comm, KnownChild::kName);
  EXPECT_EQ(st->ppid, ::getpid());
  EXPECT_EQ(st->num_threads, 2);
  EXPECT_GT(st->arg_end, st->arg_start);
  EXPECT_GT(st->start_brk, 0u);

  auto w = read_thread_status(pid(), layout().worker_tid);
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->pid, layout().worker_tid);
  EXPECT_EQ(w->sig_pending, 0u);  // SIGUSR1 was raised in the main thread
  EXPECT_EQ(w->sig_blocked, sigbit(SIGUSR1) | sigbit(SIGUSR2));
}

TEST_F(ProcKnownChild, SmallFiles) {
  auto limits = read_limits(pid());
  ASSERT_TRUE(limits.ok()) << limits.error().to_string();
  EXPECT_EQ((*limits)[RLIMIT_NOFILE].rlim_cur, KnownChild::kNofileSoft);
  EXPECT_EQ((*limits)[RLIMIT_NOFILE].rlim_max, KnownChild::kNofileHard);

  auto tids = list_threads(pid());
  ASSERT_TRUE(tids.ok());
  EXPECT_EQ(*tids, (std::vector<pid_t>{pid(), layout().worker_tid}));
  EXPECT_EQ(*read_comm(pid()), KnownChild::kName);
  EXPECT_EQ(*read_thread_comm(pid(), layout().worker_tid), KnownChild::kWorkerName);

  EXPECT_EQ(*read_cwd(pid()), dir_.path());
  EXPECT_EQ(*read_exe(pid()), *read_exe(::getpid()));
  auto pers = read_personality(pid());
  ASSERT_TRUE(pers.ok()) << pers.error().to_string();
  EXPECT_TRUE(*pers & KnownChild::kPersonalityFlag);
}

TEST(ProcStatusLive, GoneProcessIsNotFound) {
  auto child = testing::TestChild<int>::spawn([] { return 1; });
  ASSERT_NE(child, nullptr);
  pid_t pid = child->pid();
  child->kill_and_reap();
  std::string expected = "process " + std::to_string(pid) + " does not exist";
  auto check = [&](const Error& e) {
    EXPECT_TRUE(e.is(ErrorKind::kNotFound)) << e.to_string();
    EXPECT_EQ(e.message(), expected);
  };
  check(read_status(pid).error());
  check(read_stat(pid).error());
  check(read_limits(pid).error());
  check(read_maps(pid).error());
  check(read_smaps(pid).error());
  check(list_threads(pid).error());
  check(read_exe(pid).error());
  check(read_auxv(pid).error());
  check(present_pages(pid, 0, kPage).error());
}

TEST(ProcStatusLive, GoneThreadIsNotFound) {
  auto r = read_thread_comm(::getpid(), 0x3fffffff);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(ErrorKind::kNotFound));
  EXPECT_NE(r.error().message().find("thread 1073741823 of process"), std::string::npos)
      << r.error().message();
}

// --- pagemap -------------------------------------------------------------------------

// Each pagemap test runs with PAGEMAP_SCAN and with the per-page fallback.
class ProcPagemap : public ::testing::TestWithParam<bool> {
 protected:
  Result<Pagemap> open(pid_t pid) {
    auto pm = Pagemap::open(pid);
    if (pm.ok() && !GetParam()) pm->disable_scan();
    return pm;
  }
  bool scan() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(ProcModes, ProcPagemap, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Scan" : "Fallback"; });

TEST_P(ProcPagemap, SelfTouchedPages) {
  Mapping m(16);
  for (int page : {0, 3, 4, 9}) m.p[page * kPage] = 1;
  volatile char sink = m.p[12 * kPage];  // a read maps the shared zero page
  (void)sink;
  auto pm = open(::getpid());
  ASSERT_TRUE(pm.ok());
  auto r = pm->present_pages(m.addr(), m.addr(16));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  uint64_t zero = scan() ? page_is::kPresent | page_is::kPfnZero : page_is::kPresent;
  std::vector<PageRange> want = {{m.addr(0), m.addr(1), page_is::kPresent},
                                 {m.addr(3), m.addr(5), page_is::kPresent},
                                 {m.addr(9), m.addr(10), page_is::kPresent},
                                 {m.addr(12), m.addr(13), zero}};
  EXPECT_EQ(*r, want);
  EXPECT_EQ((*r)[1].pages(), 2u);
  EXPECT_EQ(pm->has_scan(), scan());
  // A sub-range sees only its part.
  auto part = pm->present_pages(m.addr(4), m.addr(9));
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, (std::vector<PageRange>{{m.addr(4), m.addr(5), page_is::kPresent}}));
}

TEST_P(ProcPagemap, FilePagesUntilWritten) {
  TempDir dir;
  std::string path = dir.make_file("data", 3);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto* p = static_cast<char*>(
      ::mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0));
  ASSERT_NE(p, MAP_FAILED);
  volatile char sink = p[kPage];
  (void)sink;
  p[2 * kPage] = 7;  // copy-on-write: now an anonymous page
  auto pm = open(::getpid());
  ASSERT_TRUE(pm.ok());
  auto r = pm->present_pages(uint64_t(p), uint64_t(p) + 3 * kPage);
  ::munmap(p, 3 * kPage);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Page 0 may be present too (read-ahead maps neighbours): look at 1 and 2.
  auto category_of = [&](uint64_t addr) -> uint64_t {
    for (const auto& x : *r)
      if (x.start <= addr && addr < x.end) return x.categories;
    return 0;
  };
  EXPECT_EQ(category_of(uint64_t(p) + kPage), page_is::kPresent | page_is::kFile);
  EXPECT_EQ(category_of(uint64_t(p) + 2 * kPage), page_is::kPresent);
}

TEST_P(ProcPagemap, ChildAnonPages) {
  TempDir dir;
  auto child = testing::spawn_known_child(dir.path(), dir.make_file("f", 4), dir.make_file("d", 1));
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(child->report().failed_step, 0);
  auto pm = open(child->pid());
  ASSERT_TRUE(pm.ok());
  uint64_t base = child->report().anon_area;
  auto r = pm->present_pages(base, base + KnownChild::kAnonPages * kPage);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Pages 1, 2 and 6 were written.
  std::vector<PageRange> want = {{base + kPage, base + 3 * kPage, page_is::kPresent},
                                 {base + 6 * kPage, base + 7 * kPage, page_is::kPresent}};
  EXPECT_EQ(*r, want);
  // Shared anonymous memory is shmem: present pages count as file pages.
  uint64_t shared = child->report().shared_area;
  auto s = pm->present_pages(shared, shared + KnownChild::kSharedPages * kPage);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<PageRange>{
                    {shared, shared + kPage, page_is::kPresent | page_is::kFile}}));
}

TEST_P(ProcPagemap, RejectsUnalignedRanges) {
  auto pm = open(::getpid());
  ASSERT_TRUE(pm.ok());
  EXPECT_TRUE(pm->present_pages(1, kPage).error().is(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(pm->present_pages(2 * kPage, kPage).error().is(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(pm->present_pages(kPage, kPage).ok());  // empty is fine
}

TEST_P(ProcPagemap, WrittenPagesWithAsyncWriteProtect) {
  auto pm = open(::getpid());
  ASSERT_TRUE(pm.ok());
  Mapping m(8);
  if (!scan()) {
    EXPECT_TRUE(pm->written_pages(m.addr(), m.addr(8)).error().is(ErrorKind::kUnsupported));
    return;
  }
  // Not registered: the kernel refuses before protecting anything.
  EXPECT_TRUE(pm->written_pages(m.addr(), m.addr(8)).error().is(ErrorKind::kInvalidArgument));

  UniqueFd uffd(int(::syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY)));
  ASSERT_TRUE(uffd);
  uffdio_api api{UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0};
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_API, &api), 0);
  uffdio_register reg{};
  reg.range = {m.addr(), m.len};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  ASSERT_EQ(::ioctl(uffd.get(), UFFDIO_REGISTER, &reg), 0) << strerror(errno);

  // The first call reports every page not yet protected, never-touched ones
  // included (an empty pte reads as written), and arms them all.
  auto first = pm->written_pages(m.addr(), m.addr(8));
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(*first, (std::vector<PageRange>{{m.addr(), m.addr(8), page_is::kWritten}}));
  EXPECT_TRUE(pm->written_pages(m.addr(), m.addr(8))->empty());
  m.p[2 * kPage] = 1;
  m.p[5 * kPage] = 1;
  auto second = pm->written_pages(m.addr(), m.addr(8));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, (std::vector<PageRange>{{m.addr(2), m.addr(3), page_is::kWritten},
                                             {m.addr(5), m.addr(6), page_is::kWritten}}));
  EXPECT_TRUE(pm->written_pages(m.addr(), m.addr(8))->empty());  // re-armed
  m.p[5 * kPage + 9] = 2;
  EXPECT_EQ(*pm->written_pages(m.addr(), m.addr(8)),
            (std::vector<PageRange>{{m.addr(5), m.addr(6), page_is::kWritten}}));
}

TEST(ProcPagemapAdopt, WorksOnAnOpenFd) {
  Mapping m(2);
  m.p[0] = 1;
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  Pagemap pm = Pagemap::adopt(std::move(fd), ::getpid());
  auto r = pm.present_pages(m.addr(), m.addr(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<PageRange>{{m.addr(), m.addr(1), page_is::kPresent}}));
}

}  // namespace
}  // namespace frost::proc
