#include "proc/proc_maps.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <charconv>

#include "proc/proc_status.h"

namespace frost::proc {
namespace {

int symbol_index(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '0' && c <= '9') return 26 + (c - '0');
  return -1;
}

char index_symbol(int i) { return i < 26 ? char('a' + i) : char('0' + (i - 26)); }

template <class T>
bool parse_num(std::string_view s, T* out, int base) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// Cuts the next space-delimited token off the front of *s.
std::string_view next_token(std::string_view* s) {
  size_t b = s->find_first_not_of(' ');
  if (b == std::string_view::npos) return *s = {}, std::string_view();
  size_t e = s->find(' ', b);
  std::string_view tok = s->substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
  *s = e == std::string_view::npos ? std::string_view() : s->substr(e);
  return tok;
}

bool parse_perms(std::string_view p, MemoryArea* a) {
  if (p.size() != 4) return false;
  if ((p[0] != 'r' && p[0] != '-') || (p[1] != 'w' && p[1] != '-') ||
      (p[2] != 'x' && p[2] != '-') || (p[3] != 's' && p[3] != 'p'))
    return false;
  a->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
            (p[2] == 'x' ? PROT_EXEC : 0);
  a->shared = p[3] == 's';
  return true;
}

bool parse_range(std::string_view r, MemoryArea* a) {
  size_t dash = r.find('-');
  return dash != std::string_view::npos && parse_num(r.substr(0, dash), &a->start, 16) &&
         parse_num(r.substr(dash + 1), &a->end, 16) && a->start < a->end;
}

bool parse_dev(std::string_view d, MemoryArea* a) {
  size_t colon = d.find(':');
  return colon != std::string_view::npos && parse_num(d.substr(0, colon), &a->dev_major, 16) &&
         parse_num(d.substr(colon + 1), &a->dev_minor, 16);
}

// seq_file_path() escapes only '\n', as "\012".
std::string unescape_path(std::string_view p) {
  std::string out;
  for (size_t i = 0; i < p.size(); i++) {
    if (p.substr(i, 4) == "\\012") {
      out += '\n';
      i += 3;
    } else {
      out += p[i];
    }
  }
  return out;
}

AreaKind classify(const MemoryArea& a) {
  const std::string& p = a.path;
  if (p.empty()) return AreaKind::kAnon;
  if (p == "[heap]") return AreaKind::kHeap;
  if (p == "[stack]" || p.starts_with("[stack:")) return AreaKind::kStack;
  if (p == "[vdso]") return AreaKind::kVdso;
  if (p == "[vvar]") return AreaKind::kVvar;
  if (p == "[vvar_vclock]") return AreaKind::kVvarVclock;
  if (p == "[vsyscall]") return AreaKind::kVsyscall;
  if (p.starts_with("[anon:")) return AreaKind::kAnon;
  if (p.starts_with("[anon_shmem:")) return AreaKind::kShmem;
  if (p.starts_with("/memfd:")) return AreaKind::kShmem;
  // Shared anonymous memory is a shmem file named /dev/zero, always unlinked;
  // SysV segments are named /SYSV<key>.
  if (a.deleted && (p == "/dev/zero" || p.starts_with("/SYSV"))) return AreaKind::kShmem;
  if (p.starts_with('/')) return AreaKind::kFile;
  return AreaKind::kOther;
}

Error bad_line(std::string_view file, std::string_view line, std::string_view why) {
  return Error::invalid(fmt::format("unexpected line in {} ({}): '{}'", file, why, line));
}

// "Rss:    132 kB" → bytes. Returns false for a malformed value.
bool parse_kb(std::string_view v, uint64_t* bytes) {
  std::string_view num = next_token(&v);
  std::string_view unit = next_token(&v);
  uint64_t n;
  if (!parse_num(num, &n, 10) || unit != "kB") return false;
  *bytes = n * 1024;
  return true;
}

bool apply_smaps_field(std::string_view key, std::string_view v, MemoryArea* a) {
  if (key == "VmFlags") {
    while (!v.empty()) {
      std::string_view f = next_token(&v);
      if (!f.empty()) a->flags.add(f);  // unknown shapes are skipped, not fatal
    }
    return true;
  }
  if (key == "Rss") return parse_kb(v, &a->rss);
  if (key == "Anonymous") return parse_kb(v, &a->anonymous);
  if (key == "Swap") return parse_kb(v, &a->swap);
  if (key == "Private_Dirty") return parse_kb(v, &a->private_dirty);
  return true;  // Pss, KSM, THPeligible...: not needed
}

// A maps header starts with a hex digit; smaps field keys with a capital letter.
bool is_header(std::string_view line) {
  char c = line.empty() ? 0 : line[0];
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// Calls f(line) for each non-empty line; stops at the first error.
template <class F>
Status for_each_line(std::string_view text, F f) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    FROST_TRY(f(line));
  }
  return Status::Ok();
}

}  // namespace

// --- VmFlags ---

bool VmFlags::add(std::string_view m) {
  if (m.size() != 2) return false;
  int a = symbol_index(m[0]), b = symbol_index(m[1]);
  if (a < 0 || b < 0) return false;
  bits_.set(size_t(a * kSymbols + b));
  return true;
}

bool VmFlags::has(std::string_view m) const {
  if (m.size() != 2) return false;
  int a = symbol_index(m[0]), b = symbol_index(m[1]);
  return a >= 0 && b >= 0 && bits_.test(size_t(a * kSymbols + b));
}

std::string VmFlags::to_string() const {
  std::string out;
  for (int i = 0; i < kSymbols * kSymbols; i++) {
    if (!bits_.test(size_t(i))) continue;
    if (!out.empty()) out += ' ';
    out += index_symbol(i / kSymbols);
    out += index_symbol(i % kSymbols);
  }
  return out;
}

// --- areas ---

const char* area_kind_name(AreaKind kind) {
  switch (kind) {
    case AreaKind::kAnon: return "anon";
    case AreaKind::kFile: return "file";
    case AreaKind::kHeap: return "heap";
    case AreaKind::kStack: return "stack";
    case AreaKind::kVdso: return "vdso";
    case AreaKind::kVvar: return "vvar";
    case AreaKind::kVvarVclock: return "vvar_vclock";
    case AreaKind::kVsyscall: return "vsyscall";
    case AreaKind::kShmem: return "shmem";
    case AreaKind::kOther: return "other";
  }
  return "?";
}

std::string MemoryArea::perms() const {
  return {(prot & PROT_READ) ? 'r' : '-', (prot & PROT_WRITE) ? 'w' : '-',
          (prot & PROT_EXEC) ? 'x' : '-', shared ? 's' : 'p'};
}

Result<MemoryArea> parse_maps_line(std::string_view line) {
  MemoryArea a;
  std::string_view rest = line;
  if (!parse_range(next_token(&rest), &a)) return bad_line("maps", line, "address range");
  if (!parse_perms(next_token(&rest), &a)) return bad_line("maps", line, "permissions");
  if (!parse_num(next_token(&rest), &a.offset, 16)) return bad_line("maps", line, "offset");
  if (!parse_dev(next_token(&rest), &a)) return bad_line("maps", line, "device");
  if (!parse_num(next_token(&rest), &a.inode, 10)) return bad_line("maps", line, "inode");
  // The path is the rest after the padding, spaces and all (a path starts
  // with '/' or '[' or a name like "anon_inode:", never with a space).
  size_t b = rest.find_first_not_of(' ');
  std::string_view path = b == std::string_view::npos ? std::string_view() : rest.substr(b);
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.ends_with(kDeleted)) {
    a.deleted = true;
    path.remove_suffix(kDeleted.size());
  }
  a.path = unescape_path(path);
  a.kind = classify(a);
  return a;
}

Result<std::vector<MemoryArea>> parse_maps(std::string_view text) {
  std::vector<MemoryArea> areas;
  FROST_TRY(for_each_line(text, [&](std::string_view line) -> Status {
    FROST_ASSIGN(MemoryArea a, parse_maps_line(line));
    areas.push_back(std::move(a));
    return Status::Ok();
  }));
  return areas;
}

Result<std::vector<MemoryArea>> parse_smaps(std::string_view text) {
  std::vector<MemoryArea> areas;
  FROST_TRY(for_each_line(text, [&](std::string_view line) -> Status {
    if (is_header(line)) {
      FROST_ASSIGN(MemoryArea a, parse_maps_line(line));
      a.has_smaps = true;
      areas.push_back(std::move(a));
      return Status::Ok();
    }
    size_t colon = line.find(':');
    if (areas.empty() || colon == std::string_view::npos)
      return bad_line("smaps", line, "not a field of an area");
    if (!apply_smaps_field(line.substr(0, colon), line.substr(colon + 1), &areas.back()))
      return bad_line("smaps", line, "value");
    return Status::Ok();
  }));
  return areas;
}

namespace {

Result<std::vector<MemoryArea>> read_areas(pid_t pid, const char* file,
                                           Result<std::vector<MemoryArea>> (*parse)(std::string_view)) {
  FROST_ASSIGN(std::string text, read_proc_file(pid, file));
  auto areas = parse(text);
  if (!areas.ok()) return areas.error().context(proc_path(pid, file));
  return areas;
}

}  // namespace

Result<std::vector<MemoryArea>> read_maps(pid_t pid) { return read_areas(pid, "maps", parse_maps); }
Result<std::vector<MemoryArea>> read_smaps(pid_t pid) { return read_areas(pid, "smaps", parse_smaps); }

}  // namespace frost::proc
