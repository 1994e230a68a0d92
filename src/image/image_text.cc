#include "image/image_text.h"

#include <fmt/format.h>

#include <iterator>

namespace frost::image {
namespace {

using Out = std::back_insert_iterator<std::string>;

// Opaque blobs show their size and a short prefix: enough to tell two apart.
std::string hex_prefix(const std::vector<uint8_t>& b) {
  std::string s = fmt::format("{} bytes", b.size());
  if (b.empty()) return s;
  s += " [";
  for (size_t i = 0; i < b.size() && i < 16; i++) s += fmt::format("{:02x}", b[i]);
  if (b.size() > 16) s += "...";
  return s + "]";
}

std::string area_flags(uint32_t f) {
  static const std::pair<uint32_t, const char*> names[] = {
      {kAreaPrivate, "private"},   {kAreaShared, "shared"},       {kAreaGrowsDown, "growsdown"},
      {kAreaLocked, "locked"},     {kAreaDontFork, "dontfork"},   {kAreaDontDump, "dontdump"},
      {kAreaHugePage, "hugepage"}, {kAreaNoHugePage, "nohugepage"}};
  std::string s;
  for (auto [bit, name] : names) {
    if (f & bit) s += (s.empty() ? "" : ",") + std::string(name);
    f &= ~bit;
  }
  if (f) s += fmt::format("{}{:#x}", s.empty() ? "" : ",", f);
  return s.empty() ? "-" : s;
}

std::string prot_text(uint32_t prot) {
  std::string s = "---";
  if (prot & 1) s[0] = 'r';
  if (prot & 2) s[1] = 'w';
  if (prot & 4) s[2] = 'x';
  return s;
}

void creds_text(Out o, const Credentials& c) {
  fmt::format_to(o, "creds:\n  uids {} {} {} {}\n  gids {} {} {} {}\n  groups", c.uids[0],
                 c.uids[1], c.uids[2], c.uids[3], c.gids[0], c.gids[1], c.gids[2], c.gids[3]);
  for (uint32_t g : c.groups) fmt::format_to(o, " {}", g);
  fmt::format_to(o, "\n  caps inh {:#x} prm {:#x} eff {:#x} bnd {:#x} amb {:#x}\n",
                 c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bounding,
                 c.cap_ambient);
  fmt::format_to(o, "  securebits {:#x} no_new_privs {}\n", c.securebits, c.no_new_privs);
}

void mm_text(Out o, const MmFields& m) {
  fmt::format_to(o, "mm:\n  code {:#x}-{:#x} data {:#x}-{:#x}\n", m.start_code, m.end_code,
                 m.start_data, m.end_data);
  fmt::format_to(o, "  brk {:#x}-{:#x} stack {:#x}\n", m.start_brk, m.brk, m.start_stack);
  fmt::format_to(o, "  args {:#x}-{:#x} env {:#x}-{:#x}\n", m.arg_start, m.arg_end,
                 m.env_start, m.env_end);
  fmt::format_to(o, "  auxv");
  for (size_t i = 0; i + 1 < m.auxv.size(); i += 2) {
    fmt::format_to(o, " {}={:#x}", m.auxv[i], m.auxv[i + 1]);
  }
  if (m.auxv.size() % 2) fmt::format_to(o, " {:#x}", m.auxv.back());
  fmt::format_to(o, "\n");
}

void thread_text(Out o, const ThreadImage& t) {
  fmt::format_to(o, "thread {} \"{}\"\n", t.tid, t.name);
  fmt::format_to(o, "  regs {}\n  xstate {}\n", hex_prefix(t.regs), hex_prefix(t.xstate));
  fmt::format_to(o, "  fs_base {:#x} gs_base {:#x} sigmask {:#018x}\n", t.fs_base, t.gs_base,
                 t.sigmask);
  for (const auto& si : t.pending) fmt::format_to(o, "  pending {}\n", hex_prefix(si));
  fmt::format_to(o, "  rseq {:#x} size {} sig {:#x} flags {:#x}\n", t.rseq.abi_pointer,
                 t.rseq.abi_size, t.rseq.signature, t.rseq.flags);
  fmt::format_to(o, "  robust_list {:#x} len {} clear_child_tid {:#x}\n", t.robust_list_head,
                 t.robust_list_len, t.clear_child_tid);
  fmt::format_to(o, "  sigaltstack {:#x} size {:#x} flags {:#x}\n", t.sigaltstack.sp,
                 t.sigaltstack.size, t.sigaltstack.flags);
  fmt::format_to(o, "  syscall_restart {}\n", syscall_restart_name(t.restart));
}

void area_text(Out o, const MemoryAreaImage& a) {
  fmt::format_to(o, "area {:#014x}-{:#014x} {} {} {} {}", a.start, a.end, prot_text(a.prot),
                 area_flags(a.flags), area_kind_name(a.kind), content_source_name(a.source));
  if (a.source == ContentSource::kSharedObject) fmt::format_to(o, " id {}", a.shared_id);
  if (!a.path.empty()) {
    fmt::format_to(o, " {} @{:#x} ino {} dev {:#x}", a.path, a.file_offset, a.inode, a.dev);
  }
  fmt::format_to(o, "\n");
}

void signals_text(Out o, const ProcessImage& p) {
  for (int i = 0; i < kSignalCount; i++) {
    const SigactionImage& sa = p.sigactions[i];
    if (sa == SigactionImage{}) continue;
    fmt::format_to(o, "sigaction {} handler {:#x} flags {:#x} restorer {:#x} mask {:#x}\n", i + 1,
                   sa.handler, sa.flags, sa.restorer, sa.mask);
  }
  for (const auto& si : p.shared_pending) fmt::format_to(o, "shared_pending {}\n", hex_prefix(si));
}

void timers_text(Out o, const ProcessImage& p) {
  static const char* names[] = {"real", "virtual", "prof"};
  for (int i = 0; i < 3; i++) {
    if (p.itimers[i] == ItimerImage{}) continue;
    fmt::format_to(o, "itimer {} value {}us interval {}us\n", names[i], p.itimers[i].value_us,
                   p.itimers[i].interval_us);
  }
  for (const auto& t : p.posix_timers) {
    fmt::format_to(o,
                   "posix_timer {} clock {} notify {} signal {} tid {} value {}ns interval {}ns "
                   "sigev_value {:#x} overrun {}\n",
                   t.id, t.clock_id, t.notify, t.signo, t.notify_tid, t.value_ns, t.interval_ns,
                   t.sigev_value, t.overrun);
  }
}

}  // namespace

const char* area_kind_name(AreaKind kind) {
  static const char* names[] = {"anon", "file", "heap", "stack", "vdso",
                                "vvar", "vvar_vclock", "shmem", "memfd"};
  auto i = static_cast<size_t>(kind);
  return i < std::size(names) ? names[i] : "?";
}

const char* content_source_name(ContentSource source) {
  static const char* names[] = {"none", "store", "file", "shared"};
  auto i = static_cast<size_t>(source);
  return i < std::size(names) ? names[i] : "?";
}

const char* syscall_restart_name(SyscallRestart restart) {
  static const char* names[] = {"none", "reexecute", "restart_block"};
  auto i = static_cast<size_t>(restart);
  return i < std::size(names) ? names[i] : "?";
}

std::string to_text(const ProcessImage& p) {
  std::string s;
  Out o(s);
  fmt::format_to(o, "format {}.{}\n", p.format_major, p.format_minor);
  fmt::format_to(o, "pid {} ppid {} pgid {} sid {}\n", p.pid, p.ppid, p.pgid, p.sid);
  fmt::format_to(o, "comm \"{}\"\nexe {}\ncwd {}\n", p.comm, p.exe, p.cwd);
  fmt::format_to(o, "umask {:04o} personality {:#x}\n", p.umask, p.personality);
  creds_text(o, p.creds);
  for (const auto& l : p.rlimits) {
    fmt::format_to(o, "rlimit {} cur {:#x} max {:#x}\n", l.resource, l.cur, l.max);
  }
  mm_text(o, p.mm);
  for (const auto& t : p.threads) thread_text(o, t);
  for (const auto& a : p.areas) area_text(o, a);
  signals_text(o, p);
  timers_text(o, p);
  for (const auto& f : p.fds) {
    fmt::format_to(o, "fd {} {} flags {:#x} {}\n", f.fd, f.kind, f.flags, hex_prefix(f.payload));
  }
  return s;
}

}  // namespace frost::image
