// frost-demo: what `make demo` runs until process freezing lands. It walks
// through the store: writes snapshots, kills a writer mid-work, recovers, and
// checks byte for byte that everything committed survived.
//
// Every page is derived from (owner, generation, vpn), so whoever reads a
// snapshot back can tell exactly what it must contain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/frost_home.h"
#include "common/unique_fd.h"
#include "power_cut_env.h"
#include "store/mem_env.h"
#include "store/store.h"

namespace {

using frost::Error;
using frost::Result;
using frost::Status;
using frost::store::SnapshotId;
using frost::store::Store;
using frost::store::StoreOptions;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kPages = 128;        // pages in every snapshot
constexpr uint64_t kFirstVpn = 0x7f000;
constexpr uint64_t kChangeEvery = 4;    // an incremental snapshot rewrites one page in four
constexpr int kIncrementals = 3;
constexpr uint64_t kMaxChildGenerations = 200;
const char* const kOwners[] = {"demo-calc", "demo-editor"};
constexpr const char* kCrashOwner = "demo-crash";
constexpr const char* kPowerOwner = "demo-power";

using Page = std::array<uint8_t, frost::store::kPageSize>;

template <class... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print("  {}\n", fmt::format(f, std::forward<Args>(args)...));
}

std::string id_list(const std::vector<SnapshotId>& ids) {
  if (ids.empty()) return "none";
  if (ids.size() > 2 && ids.back() - ids.front() + 1 == ids.size()) {
    return fmt::format("{}-{}", ids.front(), ids.back());
  }
  return fmt::format("{}", fmt::join(ids, ", "));
}

// --- the workload -------------------------------------------------------------

bool rewrites(uint64_t generation, uint64_t i) {
  return generation == 0 || (i + generation) % kChangeEvery == 0;
}

// The generation whose contents page i holds in the given generation.
uint64_t written_in(uint64_t generation, uint64_t i) {
  while (generation > 0 && !rewrites(generation, i)) --generation;
  return generation;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// A readable stamp (visible in a hexdump of the store), then pseudo-random bytes.
Page stamp(const std::string& owner, uint64_t generation, uint64_t vpn) {
  Page page;
  uint64_t x = fnv1a(owner) ^ (generation * 0x9e3779b97f4a7c15ull) ^ (vpn << 20);
  for (size_t i = 0; i < page.size(); i += 8) {
    x += 0x9e3779b97f4a7c15ull;  // splitmix64
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(page.data() + i, &z, 8);
  }
  std::string text = fmt::format("frost-demo owner {} generation {} page {:#x}\n", owner, generation, vpn);
  std::memcpy(page.data(), text.data(), text.size());
  return page;
}

std::string meta_text(const std::string& owner, uint64_t generation) {
  return fmt::format("{} generation {}: {} pages from {:#x}", owner, generation, kPages, kFirstVpn);
}

// Generation 0 is a full snapshot; later ones are incremental on parent.
Result<SnapshotId> write_generation(Store& store, const std::string& owner, uint64_t generation,
                                    std::optional<SnapshotId> parent) {
  FROST_ASSIGN(auto writer, store.begin_snapshot(owner, generation == 0 ? std::nullopt : parent));
  for (uint64_t i = 0; i < kPages; ++i) {
    if (!rewrites(generation, i)) continue;
    Page page = stamp(owner, generation, kFirstVpn + i);
    FROST_TRY(writer->put_page(kFirstVpn + i, page));
  }
  std::string meta = meta_text(owner, generation);
  FROST_TRY(writer->put_meta({reinterpret_cast<const uint8_t*>(meta.data()), meta.size()}));
  return writer->commit();
}

// Every page and the meta of snapshot id must be what generation wrote.
Status check_generation(const Store& store, SnapshotId id, const std::string& owner, uint64_t generation) {
  auto where = [&](const std::string& what) {
    return Error::corruption(fmt::format("snapshot {} ({} generation {}): {}", id, owner, generation, what));
  };
  auto info = store.info(id);
  if (!info.ok()) return where("missing: " + info.error().to_string());
  if (info->owner != owner) return where("belongs to " + info->owner);
  uint64_t seen = 0;
  std::optional<Error> mismatch;
  Status pages = store.for_each_page(id, [&](uint64_t vpn, std::span<const uint8_t, frost::store::kPageSize> data) {
    uint64_t i = vpn - kFirstVpn;
    if (vpn < kFirstVpn || i >= kPages) {
      mismatch = where(fmt::format("unexpected page {:#x}", vpn));
    } else if (Page want = stamp(owner, written_in(generation, i), vpn);
               std::memcmp(want.data(), data.data(), want.size()) != 0) {
      mismatch = where(fmt::format("page {:#x} differs from what was written", vpn));
    }
    ++seen;
    return mismatch ? Status(*mismatch) : Status::Ok();
  });
  if (mismatch) return *mismatch;
  if (!pages.ok()) return where(pages.error().to_string());
  if (seen != kPages) return where(fmt::format("{} pages instead of {}", seen, kPages));
  auto meta = store.read_meta(id);
  if (!meta.ok()) return where("meta: " + meta.error().to_string());
  if (std::string(meta->begin(), meta->end()) != meta_text(owner, generation)) return where("meta differs");
  return Status::Ok();
}

Status remove_old_demo_owners(Store& store) {
  size_t removed = 0;
  for (const auto& owner : store.list()) {
    if (!owner.name.starts_with("demo-")) continue;
    removed += owner.snapshots.size();
    FROST_TRY(store.remove_owner(owner.name));
  }
  if (removed > 0) say("removed {} snapshots left by an earlier run", removed);
  return Status::Ok();
}

// --- 1. snapshots ---------------------------------------------------------------

struct Written {
  std::string owner;
  std::vector<SnapshotId> ids;  // ids[g]: generation g
};

Result<std::vector<Written>> write_snapshots(Store& store) {
  fmt::print("\n1. Writing snapshots of two pretend processes\n");
  std::vector<Written> written;
  for (const char* owner : kOwners) {
    Written w{owner, {}};
    for (int g = 0; g <= kIncrementals; ++g) {
      std::optional<SnapshotId> parent;
      if (g > 0) parent = w.ids.back();
      FROST_ASSIGN(SnapshotId id, write_generation(store, owner, g, parent));
      w.ids.push_back(id);
    }
    say("{}: snapshot {} is full ({} pages), {} are incremental ({} changed pages each)", owner,
        w.ids.front(), kPages, id_list({w.ids.begin() + 1, w.ids.end()}), kPages / kChangeEvery);
    written.push_back(std::move(w));
  }
  say("each page is stamped with its owner, generation and address, so it can be checked later");
  return written;
}

// --- 2. a writer killed mid-work -------------------------------------------------

// The child: commits generation after generation, reporting each on fd.
[[noreturn]] void crash_child(const std::string& path, int fd) {
  auto report = [fd](const std::string& line) { (void)!::write(fd, line.data(), line.size()); };
  auto store = Store::open(path, StoreOptions{});
  if (!store.ok()) {
    report("error " + store.error().to_string() + "\n");
    ::_exit(1);
  }
  for (uint64_t g = 1; g <= kMaxChildGenerations; ++g) {
    auto parent = (*store)->latest(kCrashOwner);
    auto id = parent.ok() ? write_generation(**store, kCrashOwner, g, *parent) : Result<SnapshotId>(parent.error());
    if (!id.ok()) {
      report("error " + id.error().to_string() + "\n");
      ::_exit(1);
    }
    report(fmt::format("{} {}\n", g, *id));
  }
  ::_exit(0);
}

// Reads the child's report lines, waiting at most timeout for each.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line, or nullopt at end of file or after the timeout.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
      char chunk[512];
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

struct CrashRun {
  SnapshotId base = 0;                // generation 0, written before the child started
  std::vector<SnapshotId> reported;  // reported[g-1]: generation g, committed
};

// Parses "<generation> <id>" into run, or returns the child's error.
Status take_report(const std::string& line, CrashRun& run, pid_t pid) {
  if (line.starts_with("error ")) return Error::invalid("the writer failed: " + line.substr(6));
  unsigned long long g = 0, id = 0;
  if (std::sscanf(line.c_str(), "%llu %llu", &g, &id) != 2 || g != run.reported.size() + 1) {
    return Error::invalid("the writer reported nonsense: " + line);
  }
  run.reported.push_back(id);
  say("child {} committed snapshot {} (generation {})", pid, id, g);
  return Status::Ok();
}

Result<CrashRun> crash_a_writer(const std::string& path, SnapshotId base, std::mt19937_64& rng) {
  fmt::print("\n2. Crash: a child process commits snapshots of {} in a loop; we SIGKILL it mid-work\n", kCrashOwner);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::io("pipe");
  frost::UniqueFd rd(fds[0]), wr(fds[1]);
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid < 0) return Error::io("fork");
  if (pid == 0) crash_child(path, wr.get());
  wr.reset();

  CrashRun run{base, {}};
  LineReader reader(rd.get());
  size_t wait_for = 3 + rng() % 4;
  Clock::time_point first_report;
  Status status;
  while (status.ok() && run.reported.size() < wait_for) {
    auto line = reader.next(std::chrono::seconds(30));
    status = line ? take_report(*line, run, pid) : Status(Error::invalid("the writer stopped reporting"));
    if (run.reported.size() == 1) first_report = Clock::now();
  }
  if (status.ok()) {
    // Land the kill somewhere inside the next commit: a random fraction of
    // the time one commit takes.
    auto per_commit = (Clock::now() - first_report) / (wait_for - 1);
    std::this_thread::sleep_for(per_commit * static_cast<int64_t>(rng() % 1000) / 1000);
  }
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  FROST_TRY(status);
  // Commits the child reported between our last read and its death count too.
  while (auto line = reader.next(std::chrono::seconds(5))) FROST_TRY(take_report(*line, run, pid));
  if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) {
    say("SIGKILL: child {} killed while at work on generation {}", pid, run.reported.size() + 1);
  } else {
    say("child {} ended before the kill (status {:#x})", pid, wstatus);
  }
  return run;
}

// --- 3. recovery ------------------------------------------------------------------

Status check_written(const Store& store, const std::vector<Written>& written) {
  for (const Written& w : written) {
    for (size_t g = 0; g < w.ids.size(); ++g) FROST_TRY(check_generation(store, w.ids[g], w.owner, g));
    say("{}: snapshots {} survived; every page and the meta are byte-identical", w.owner, id_list(w.ids));
  }
  return Status::Ok();
}

std::vector<SnapshotId> snapshots_of(const Store& store, const std::string& owner) {
  std::vector<SnapshotId> ids;
  for (const auto& o : store.list()) {
    if (o.name != owner) continue;
    for (const auto& s : o.snapshots) ids.push_back(s.id);
  }
  return ids;
}

// committed[g]: generation g, which must be there. Any other snapshot of owner
// can only be generation committed.size(), the one under way at the crash,
// committed but not yet acknowledged; it is returned, after its check.
Result<std::optional<SnapshotId>> check_survivors(const Store& store, const std::string& owner,
                                                  const std::vector<SnapshotId>& committed) {
  for (size_t g = 0; g < committed.size(); ++g) FROST_TRY(check_generation(store, committed[g], owner, g));
  std::optional<SnapshotId> extra;
  for (SnapshotId id : snapshots_of(store, owner)) {
    if (std::find(committed.begin(), committed.end(), id) != committed.end()) continue;
    if (extra) return Error::corruption(fmt::format("{}: unexpected snapshot {}", owner, id));
    FROST_TRY(check_generation(store, id, owner, committed.size()));
    extra = id;
  }
  return extra;
}

std::string fate_of_last(const std::optional<SnapshotId>& extra) {
  if (!extra) return "not there: it had not been committed, and left no trace";
  return fmt::format("there too (snapshot {}): its commit reached the disk just before the end; intact", *extra);
}

Status check_crash_survivors(const Store& store, const CrashRun& run) {
  std::vector<SnapshotId> committed{run.base};
  committed.insert(committed.end(), run.reported.begin(), run.reported.end());
  FROST_ASSIGN(auto extra, check_survivors(store, kCrashOwner, committed));
  say("{}: snapshots {} survived: the first one and all {} the child reported, byte-identical", kCrashOwner,
      id_list(snapshots_of(store, kCrashOwner)), run.reported.size());
  say("{}: the snapshot the child was writing when killed: {}", kCrashOwner, fate_of_last(extra));
  return Status::Ok();
}

// --- 4. a power cut -----------------------------------------------------------------

Status power_cut(std::mt19937_64& rng) {
  fmt::print("\n4. Power cut (simulated on an in-memory disk that loses writes not yet synced)\n");
  const std::string path = "/power-cut/store";
  frost::demo::PowerCutEnv disk(rng());
  StoreOptions options;
  options.env = &disk;
  options.segment_size = 1ull << 20;
  options.capacity = 64ull << 20;
  options.default_retention = 200;  // more than the loop below can commit: keep them all
  FROST_ASSIGN(auto store, Store::create(path, options));
  std::vector<SnapshotId> committed;
  uint64_t arm_at = 2 + rng() % 3;
  for (uint64_t g = 0; !disk.cut() && g < 100; ++g) {
    if (g == arm_at) disk.arm(1 + static_cast<int>(rng() % 12));
    std::optional<SnapshotId> parent;
    if (!committed.empty()) parent = committed.back();
    FROST_ASSIGN(SnapshotId id, write_generation(*store, kPowerOwner, g, parent));
    if (!disk.cut()) committed.push_back(id);
  }
  store.reset();
  if (!disk.cut()) return Error::invalid("the simulated power cut never happened");
  frost::demo::PowerCutImage image = disk.image();
  say("{} snapshots committed ({}), then the power failed while the next one was being written",
      committed.size(), id_list(committed));
  say("at the cut {} write{} had not been synced: {} reached the disk, {} only in part, {} not at all",
      image.unsynced, image.unsynced == 1 ? "" : "s", image.kept, image.torn,
      image.unsynced - image.kept - image.torn);

  frost::store::MemEnv rebooted;
  for (auto& [name, bytes] : image.files) rebooted.set_contents(name, std::move(bytes));
  options.env = &rebooted;
  FROST_ASSIGN(auto recovered, Store::open(path, options));
  FROST_ASSIGN(auto extra, check_survivors(*recovered, kPowerOwner, committed));
  say("after reboot: snapshots {} survived, byte-identical", id_list(snapshots_of(*recovered, kPowerOwner)));
  say("the snapshot being written at the cut: {}", fate_of_last(extra));
  return Status::Ok();
}

// --- 5. the store now ---------------------------------------------------------------

Status show_store(const Store& store) {
  fmt::print("\n5. The store now (what `frost stats` and `frost fsck` show)\n");
  auto s = store.stats();
  say("{} owners, {} snapshots; {} of {} segments used ({} MiB each)", s.owners, s.snapshots, s.segments_used,
      s.segments_total, s.segment_size >> 20);
  say("{:.1f} MiB live, utilisation {:.1f}%, write cost {:.2f} (bytes written per new byte)",
      static_cast<double>(s.live_bytes) / (1 << 20), s.utilisation * 100, s.write_cost);
  FROST_ASSIGN(auto report, store.fsck());
  for (const auto& note : report.notes) say("fsck note: {}", note);
  for (const auto& damage : report.damage) say("fsck DAMAGE: {}", damage);
  say("fsck checked {} snapshots, {} pages, {} index nodes: {}", report.snapshots_checked, report.pages_checked,
      report.nodes_checked, report.clean() ? "clean" : "DAMAGED");
  if (!report.clean()) return Error::corruption("fsck found damage");
  return Status::Ok();
}

Status run_demo() {
  std::string home = frost::cli::frost_home();
  std::string path = frost::cli::store_path(home);
  std::mt19937_64 rng(std::random_device{}());
  fmt::print("frost demo: the store at {}\n", path);
  FROST_TRY(frost::cli::ensure_home(home));

  FROST_ASSIGN(auto store, Store::open_or_create(path, StoreOptions{}));
  FROST_TRY(remove_old_demo_owners(*store));
  FROST_ASSIGN(std::vector<Written> written, write_snapshots(*store));
  FROST_ASSIGN(SnapshotId base, write_generation(*store, kCrashOwner, 0, std::nullopt));
  FROST_TRY(store->set_retention(kCrashOwner, kMaxChildGenerations + 10));
  store.reset();  // the child takes the store's lock

  FROST_ASSIGN(CrashRun run, crash_a_writer(path, base, rng));

  fmt::print("\n3. Recovery: reopen the store as frost would after a crash\n");
  auto start = Clock::now();
  FROST_ASSIGN(store, Store::open(path, StoreOptions{}));
  say("recovered in {:.1f} ms", std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  FROST_TRY(check_written(*store, written));
  FROST_TRY(check_crash_survivors(*store, run));

  FROST_TRY(power_cut(rng));
  FROST_TRY(show_store(*store));
  fmt::print("\nAll checks passed. Look around with `frost ls`, `frost stats`, `frost fsck`{}.\n",
             std::getenv("FROST_HOME") != nullptr ? fmt::format(" (FROST_HOME={})", home) : "");
  return Status::Ok();
}

}  // namespace

int main() {
  Status status = run_demo();
  if (status.ok()) return 0;
  std::fflush(stdout);
  fmt::print(stderr, "frost-demo: {}\n", status.error().to_string());
  return 1;
}
