#include "proc/proc_status.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

namespace frost::proc {
namespace {

// --- text helpers ---

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

// Splits on runs of spaces and tabs.
std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t b = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') i++;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

template <class T>
bool parse_num(std::string_view s, T* out, int base = 10) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

template <class T>
bool parse_list(std::string_view s, std::vector<T>* out) {
  for (auto f : fields(s)) {
    T v;
    if (!parse_num(f, &v)) return false;
    out->push_back(v);
  }
  return true;
}

// Undoes the kernel's escaping of task names (seq_escape_str with
// ESCAPE_SPACE | ESCAPE_SPECIAL): "\n", "\t", "\\" and octal "\ooo".
std::string unescape_name(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'v': out += '\v'; break;
      case 'f': out += '\f'; break;
      case 'e': out += '\x1b'; break;
      case 'a': out += '\a'; break;
      default:
        if (c >= '0' && c <= '7' && i + 2 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' &&
            s[i + 2] >= '0' && s[i + 2] <= '7') {
          out += char(((c - '0') << 6) | ((s[i + 1] - '0') << 3) | (s[i + 2] - '0'));
          i += 2;
        } else {
          out += c;  // "\\" and "\"" and anything unknown: the character itself
        }
    }
  }
  return out;
}

Error bad_line(std::string_view file, std::string_view line) {
  return Error::invalid(fmt::format("unexpected line in {}: '{}'", file, line));
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

// --- reading /proc files ---

std::string proc_path(pid_t pid, std::string_view name) {
  return fmt::format("/proc/{}/{}", pid, name);
}

Error proc_error(pid_t pid, std::string_view name, int err) {
  if (err == ENOENT || err == ESRCH) {
    if (!exists(fmt::format("/proc/{}", pid)))
      return Error::not_found(fmt::format("process {} does not exist", pid));
    // "task/TID/..." names a thread that may have exited alone.
    if (name.starts_with("task/")) {
      std::string_view rest = name.substr(5);
      std::string_view tid = rest.substr(0, rest.find('/'));
      if (!exists(fmt::format("/proc/{}/task/{}", pid, tid)))
        return Error::not_found(fmt::format("thread {} of process {} does not exist", tid, pid));
    }
    if (err == ESRCH) return Error::not_found(fmt::format("process {} does not exist", pid));
    return Error::not_found(fmt::format("{} does not exist", proc_path(pid, name)));
  }
  return Error::io(fmt::format("cannot read {}", proc_path(pid, name)), err);
}

Result<UniqueFd> open_proc_file(pid_t pid, std::string_view name) {
  UniqueFd fd(::open(proc_path(pid, name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return proc_error(pid, name, errno);
  return fd;
}

Result<std::string> read_proc_file(pid_t pid, std::string_view name) {
  FROST_ASSIGN(UniqueFd fd, open_proc_file(pid, name));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return proc_error(pid, name, errno);
    if (n == 0) return out;
    out.append(buf, size_t(n));
  }
}

Result<std::string> read_proc_link(pid_t pid, std::string_view name) {
  std::string path = proc_path(pid, name);
  std::string out(256, '\0');
  for (;;) {
    ssize_t n = ::readlink(path.c_str(), out.data(), out.size());
    if (n < 0) return proc_error(pid, name, errno);
    if (size_t(n) < out.size()) {
      out.resize(size_t(n));
      return out;
    }
    out.resize(out.size() * 2);  // possibly truncated: try a larger buffer
  }
}

// --- /proc/PID/status ---

namespace {

bool parse_ids(std::string_view v, IdQuad* q) {
  std::vector<uint32_t> ids;
  if (!parse_list(v, &ids) || ids.size() != 4) return false;
  *q = {ids[0], ids[1], ids[2], ids[3]};
  return true;
}

bool parse_sigq(std::string_view v, ProcStatus* s) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  return parse_num(v.substr(0, slash), &s->sigq_queued) &&
         parse_num(v.substr(slash + 1), &s->sigq_limit);
}

// One "Key:\tvalue" line. Unknown keys are fine: the file grows over time.
bool apply_status_field(std::string_view key, std::string_view v, ProcStatus* s) {
  if (key == "Name") return s->name = unescape_name(v), true;
  if (key == "State") return !v.empty() && (s->state = v[0], true);
  if (key == "Umask") {
    mode_t m;
    if (!parse_num(v, &m, 8)) return false;
    s->umask = m;
    return true;
  }
  if (key == "Tgid") return parse_num(v, &s->tgid);
  if (key == "Pid") return parse_num(v, &s->pid);
  if (key == "PPid") return parse_num(v, &s->ppid);
  if (key == "TracerPid") return parse_num(v, &s->tracer_pid);
  if (key == "Uid") return parse_ids(v, &s->uid);
  if (key == "Gid") return parse_ids(v, &s->gid);
  if (key == "Groups") return parse_list(v, &s->groups);
  if (key == "NSpid") return parse_list(v, &s->nspid);
  if (key == "Threads") return parse_num(v, &s->threads);
  if (key == "SigQ") return parse_sigq(v, s);
  if (key == "SigPnd") return parse_num(v, &s->sig_pending, 16);
  if (key == "ShdPnd") return parse_num(v, &s->shared_pending, 16);
  if (key == "SigBlk") return parse_num(v, &s->sig_blocked, 16);
  if (key == "SigIgn") return parse_num(v, &s->sig_ignored, 16);
  if (key == "SigCgt") return parse_num(v, &s->sig_caught, 16);
  if (key == "VmLck") return parse_num(v.substr(0, v.find(' ')), &s->vm_locked_kb);
  if (key == "CapInh") return parse_num(v, &s->cap_inheritable, 16);
  if (key == "CapPrm") return parse_num(v, &s->cap_permitted, 16);
  if (key == "CapEff") return parse_num(v, &s->cap_effective, 16);
  if (key == "CapBnd") return parse_num(v, &s->cap_bounding, 16);
  if (key == "CapAmb") return parse_num(v, &s->cap_ambient, 16);
  if (key == "NoNewPrivs") {
    int n;
    if (!parse_num(v, &n)) return false;
    s->no_new_privs = n != 0;
    return true;
  }
  if (key == "Seccomp") return parse_num(v, &s->seccomp);
  return true;
}

}  // namespace

Result<ProcStatus> parse_status(std::string_view text) {
  ProcStatus s;
  int required = 0;  // Name, State, Tgid, PPid, Uid, Gid, SigBlk
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad_line("status", line);
    std::string_view key = line.substr(0, colon);
    // Name keeps its spaces; everything else is trimmed.
    std::string_view v = line.substr(colon + 1);
    v = key == "Name" ? (v.starts_with('\t') ? v.substr(1) : trim(v)) : trim(v);
    if (!apply_status_field(key, v, &s)) return bad_line("status", line);
    for (const char* k : {"Name", "State", "Tgid", "PPid", "Uid", "Gid", "SigBlk"})
      if (key == k) required++;
  }
  if (required < 7) return Error::invalid("status lacks Name, State, Tgid, PPid, Uid, Gid or SigBlk");
  return s;
}

Result<ProcStatus> read_status(pid_t pid) {
  FROST_ASSIGN(std::string text, read_proc_file(pid, "status"));
  auto s = parse_status(text);
  if (!s.ok()) return s.error().context(proc_path(pid, "status"));
  return s;
}

Result<ProcStatus> read_thread_status(pid_t pid, pid_t tid) {
  std::string name = fmt::format("task/{}/status", tid);
  FROST_ASSIGN(std::string text, read_proc_file(pid, name));
  auto s = parse_status(text);
  if (!s.ok()) return s.error().context(proc_path(pid, name));
  return s;
}

// --- /proc/PID/stat ---

namespace {

// Field n of stat (1-based, as in proc(5)) from the fields after comm,
// which start at field 3. Missing fields (older kernels) read as 0.
template <class T>
bool stat_field(const std::vector<std::string_view>& after_comm, int n, T* out) {
  size_t i = size_t(n - 3);
  if (i >= after_comm.size()) return *out = 0, true;
  int64_t v;
  if (!parse_num(after_comm[i], &v)) {
    uint64_t u;  // unsigned fields may exceed INT64_MAX (e.g. kernel addresses)
    if (!parse_num(after_comm[i], &u)) return false;
    v = int64_t(u);
  }
  *out = T(v);
  return true;
}

}  // namespace

Result<ProcStat> parse_stat(std::string_view text) {
  // comm is printed raw and may contain spaces, '(' and ')': it runs from the
  // first '(' to the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return Error::invalid("stat: no '(comm)'");
  ProcStat st;
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  if (!parse_num(trim(text.substr(0, open)), &st.pid)) return Error::invalid("stat: bad pid");
  auto f = fields(trim(text.substr(close + 1)));
  if (f.size() < 20 || f[0].size() != 1) return Error::invalid("stat: too few fields");
  st.state = f[0][0];
  bool ok = stat_field(f, 4, &st.ppid) && stat_field(f, 5, &st.pgrp) &&
            stat_field(f, 6, &st.session) && stat_field(f, 7, &st.tty_nr) &&
            stat_field(f, 8, &st.tpgid) && stat_field(f, 9, &st.flags) &&
            stat_field(f, 20, &st.num_threads) && stat_field(f, 22, &st.start_time) &&
            stat_field(f, 23, &st.vsize) && stat_field(f, 26, &st.start_code) &&
            stat_field(f, 27, &st.end_code) && stat_field(f, 28, &st.start_stack) &&
            stat_field(f, 38, &st.exit_signal) && stat_field(f, 45, &st.start_data) &&
            stat_field(f, 46, &st.end_data) && stat_field(f, 47, &st.start_brk) &&
            stat_field(f, 48, &st.arg_start) && stat_field(f, 49, &st.arg_end) &&
            stat_field(f, 50, &st.env_start) && stat_field(f, 51, &st.env_end);
  if (!ok) return Error::invalid("stat: a field is not a number");
  return st;
}

Result<ProcStat> read_stat(pid_t pid) {
  FROST_ASSIGN(std::string text, read_proc_file(pid, "stat"));
  auto s = parse_stat(text);
  if (!s.ok()) return s.error().context(proc_path(pid, "stat"));
  return s;
}

// --- /proc/PID/limits ---

namespace {

// The kernel's names (fs/proc/base.c, lnames[]), indexed by RLIMIT_*.
constexpr std::array<std::string_view, 16> kLimitNames = {
    "Max cpu time",       "Max file size",         "Max data size",        "Max stack size",
    "Max core file size", "Max resident set",      "Max processes",        "Max open files",
    "Max locked memory",  "Max address space",     "Max file locks",       "Max pending signals",
    "Max msgqueue size",  "Max nice priority",     "Max realtime priority", "Max realtime timeout",
};
static_assert(RLIM_NLIMITS == kLimitNames.size());

bool parse_limit_value(std::string_view v, rlim_t* out) {
  if (v == "unlimited") return *out = RLIM_INFINITY, true;
  return parse_num(v, out);
}

}  // namespace

Result<Limits> parse_limits(std::string_view text) {
  Limits limits{};
  uint32_t seen = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    for (size_t r = 0; r < kLimitNames.size(); r++) {
      std::string_view name = kLimitNames[r];
      // Names are followed by padding; "Max file size" must not match "Max file sizes".
      if (!line.starts_with(name) || (line.size() > name.size() && line[name.size()] != ' ')) continue;
      auto f = fields(line.substr(name.size()));
      if (f.size() < 2 || !parse_limit_value(f[0], &limits[r].rlim_cur) ||
          !parse_limit_value(f[1], &limits[r].rlim_max))
        return bad_line("limits", line);
      seen |= 1u << r;
    }
  }
  if (seen != (1u << RLIM_NLIMITS) - 1) return Error::invalid("limits: a limit is missing");
  return limits;
}

Result<Limits> read_limits(pid_t pid) {
  FROST_ASSIGN(std::string text, read_proc_file(pid, "limits"));
  auto l = parse_limits(text);
  if (!l.ok()) return l.error().context(proc_path(pid, "limits"));
  return l;
}

// --- small files ---

Result<std::vector<pid_t>> list_threads(pid_t pid) {
  FROST_ASSIGN(UniqueFd fd, open_proc_file(pid, "task"));
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd.get()), ::closedir);
  if (!dir) return proc_error(pid, "task", errno);
  fd.release();  // now owned by dir
  std::vector<pid_t> tids;
  errno = 0;
  while (struct dirent* e = ::readdir(dir.get())) {
    pid_t tid;
    if (parse_num(std::string_view(e->d_name), &tid)) tids.push_back(tid);
  }
  if (errno != 0) return proc_error(pid, "task", errno);
  if (tids.empty()) return Error::not_found(fmt::format("process {} does not exist", pid));
  std::sort(tids.begin(), tids.end());
  return tids;
}

Result<std::string> read_exe(pid_t pid) { return read_proc_link(pid, "exe"); }
Result<std::string> read_cwd(pid_t pid) { return read_proc_link(pid, "cwd"); }

Result<std::vector<std::pair<uint64_t, uint64_t>>> read_auxv(pid_t pid) {
  FROST_ASSIGN(std::string raw, read_proc_file(pid, "auxv"));
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (size_t off = 0; off + 16 <= raw.size(); off += 16) {
    uint64_t kv[2];
    std::memcpy(kv, raw.data() + off, sizeof kv);
    if (kv[0] == AT_NULL) return out;
    out.emplace_back(kv[0], kv[1]);
  }
  return out;  // a zombie has no auxv: empty
}

namespace {

Result<std::string> read_comm_file(pid_t pid, const std::string& name) {
  FROST_ASSIGN(std::string s, read_proc_file(pid, name));
  // The name itself may end in '\n'; only the last one is the terminator.
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

Result<std::string> read_comm(pid_t pid) { return read_comm_file(pid, "comm"); }

Result<std::string> read_thread_comm(pid_t pid, pid_t tid) {
  return read_comm_file(pid, fmt::format("task/{}/comm", tid));
}

Result<uint32_t> read_personality(pid_t pid) {
  FROST_ASSIGN(std::string s, read_proc_file(pid, "personality"));
  uint32_t p;
  if (!parse_num(trim(s), &p, 16))
    return Error::invalid(fmt::format("{}: '{}' is not hex", proc_path(pid, "personality"), s));
  return p;
}

}  // namespace frost::proc
