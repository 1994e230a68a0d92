#include "image/image_codec.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <cstring>
#include <limits>
#include <type_traits>

#include "image/image_schema.h"
#include "image/image_wire.h"

namespace frost::image {
namespace {

namespace s = schema;
using wire::Field;
using wire::Writer;

// --- encoding -------------------------------------------------------------

Writer encode_creds(const Credentials& c) {
  Writer w;
  for (int i = 0; i < 4; i++) w.u64_nz(s::kRuid + i, c.uids[i]);
  for (int i = 0; i < 4; i++) w.u64_nz(s::kRgid + i, c.gids[i]);
  for (uint32_t g : c.groups) w.u64(s::kGroup, g);
  w.u64_nz(s::kCapInheritable, c.cap_inheritable);
  w.u64_nz(s::kCapPermitted, c.cap_permitted);
  w.u64_nz(s::kCapEffective, c.cap_effective);
  w.u64_nz(s::kCapBounding, c.cap_bounding);
  w.u64_nz(s::kCapAmbient, c.cap_ambient);
  w.u64_nz(s::kSecurebits, c.securebits);
  w.u64_nz(s::kNoNewPrivs, c.no_new_privs);
  return w;
}

Writer encode_rlimit(const Rlimit& l) {
  Writer w;
  w.u64_nz(s::kResource, l.resource);
  w.u64_nz(s::kCur, l.cur);
  w.u64_nz(s::kMax, l.max);
  return w;
}

Writer encode_mm(const MmFields& m) {
  Writer w;
  const uint64_t fields[] = {m.start_code, m.end_code, m.start_data, m.end_data,
                             m.start_brk,  m.brk,      m.start_stack, m.arg_start,
                             m.arg_end,    m.env_start, m.env_end};
  for (uint32_t i = 0; i < std::size(fields); i++) w.u64_nz(s::kStartCode + i, fields[i]);
  for (uint64_t a : m.auxv) w.u64(s::kAuxv, a);
  return w;
}

Writer encode_thread(const ThreadImage& t) {
  Writer w;
  w.s64_nz(s::kTid, t.tid);
  w.str_nz(s::kName, t.name);
  w.bytes_nz(s::kRegs, t.regs);
  w.bytes_nz(s::kXstate, t.xstate);
  w.u64_nz(s::kFsBase, t.fs_base);
  w.u64_nz(s::kGsBase, t.gs_base);
  w.u64_nz(s::kSigmask, t.sigmask);
  for (const auto& si : t.pending) w.bytes(s::kPending, si);
  w.u64_nz(s::kRseqAbiPointer, t.rseq.abi_pointer);
  w.u64_nz(s::kRseqAbiSize, t.rseq.abi_size);
  w.u64_nz(s::kRseqSignature, t.rseq.signature);
  w.u64_nz(s::kRseqFlags, t.rseq.flags);
  w.u64_nz(s::kRobustListHead, t.robust_list_head);
  w.u64_nz(s::kRobustListLen, t.robust_list_len);
  w.u64_nz(s::kClearChildTid, t.clear_child_tid);
  w.u64_nz(s::kAltstackSp, t.sigaltstack.sp);
  w.u64_nz(s::kAltstackFlags, t.sigaltstack.flags);
  w.u64_nz(s::kAltstackSize, t.sigaltstack.size);
  w.u64_nz(s::kRestart, static_cast<uint64_t>(t.restart));
  return w;
}

Writer encode_area(const MemoryAreaImage& a) {
  Writer w;
  w.u64_nz(s::kStart, a.start);
  w.u64_nz(s::kEnd, a.end);
  w.u64_nz(s::kProt, a.prot);
  w.u64_nz(s::kFlags, a.flags);
  w.u64_nz(s::kKind, static_cast<uint64_t>(a.kind));
  w.str_nz(s::kPath, a.path);
  w.u64_nz(s::kFileOffset, a.file_offset);
  w.u64_nz(s::kInode, a.inode);
  w.u64_nz(s::kDev, a.dev);
  w.u64_nz(s::kSource, static_cast<uint64_t>(a.source));
  w.u64_nz(s::kSharedId, a.shared_id);
  return w;
}

Writer encode_sigaction(int signo, const SigactionImage& sa) {
  Writer w;
  w.u64(s::kSigno, signo);
  w.u64_nz(s::kHandler, sa.handler);
  w.u64_nz(s::kSaFlags, sa.flags);
  w.u64_nz(s::kRestorer, sa.restorer);
  w.u64_nz(s::kMask, sa.mask);
  return w;
}

Writer encode_itimer(int which, const ItimerImage& it) {
  Writer w;
  w.u64_nz(s::kWhich, which);
  w.u64_nz(s::kIntervalUs, it.interval_us);
  w.u64_nz(s::kValueUs, it.value_us);
  return w;
}

Writer encode_posix_timer(const PosixTimerImage& t) {
  Writer w;
  w.s64_nz(s::kTimerId, t.id);
  w.s64_nz(s::kClockId, t.clock_id);
  w.s64_nz(s::kNotify, t.notify);
  w.s64_nz(s::kSignal, t.signo);
  w.s64_nz(s::kNotifyTid, t.notify_tid);
  w.u64_nz(s::kSigevValue, t.sigev_value);
  w.u64_nz(s::kIntervalNs, t.interval_ns);
  w.u64_nz(s::kValueNs, t.value_ns);
  w.u64_nz(s::kOverrun, t.overrun);
  return w;
}

Writer encode_fd(const FdImage& f) {
  Writer w;
  w.s64_nz(s::kFdNumber, f.fd);
  w.u64_nz(s::kFdFlags, f.flags);
  w.str_nz(s::kFdKind, f.kind);
  w.bytes_nz(s::kFdPayload, f.payload);
  return w;
}

Writer encode_body(const ProcessImage& p) {
  Writer w;
  w.s64_nz(s::kPid, p.pid);
  w.s64_nz(s::kPpid, p.ppid);
  w.s64_nz(s::kPgid, p.pgid);
  w.s64_nz(s::kSid, p.sid);
  w.str_nz(s::kComm, p.comm);
  w.str_nz(s::kExe, p.exe);
  w.str_nz(s::kCwd, p.cwd);
  w.u64_nz(s::kUmask, p.umask);
  w.u64_nz(s::kPersonality, p.personality);
  w.message_nz(s::kCreds, encode_creds(p.creds));
  for (const auto& l : p.rlimits) w.message(s::kRlimit, encode_rlimit(l));
  w.message_nz(s::kMm, encode_mm(p.mm));
  for (const auto& t : p.threads) w.message(s::kThread, encode_thread(t));
  for (const auto& a : p.areas) w.message(s::kArea, encode_area(a));
  for (int i = 0; i < kSignalCount; i++) {
    if (p.sigactions[i] != SigactionImage{}) {
      w.message(s::kSigaction, encode_sigaction(i + 1, p.sigactions[i]));
    }
  }
  for (const auto& si : p.shared_pending) w.bytes(s::kSharedPending, si);
  for (int i = 0; i < 3; i++) {
    if (p.itimers[i] != ItimerImage{}) w.message(s::kItimer, encode_itimer(i, p.itimers[i]));
  }
  for (const auto& t : p.posix_timers) w.message(s::kPosixTimer, encode_posix_timer(t));
  for (const auto& f : p.fds) w.message(s::kFd, encode_fd(f));
  return w;
}

void put_le(uint8_t* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// --- decoding -------------------------------------------------------------

// Stores an integer field into a member of any integer (or enum) type,
// refusing values that do not fit rather than truncating them.
template <class T>
Status set(const Field& f, T& out, uint64_t max = std::numeric_limits<uint64_t>::max()) {
  if constexpr (std::is_enum_v<T>) {
    FROST_ASSIGN(uint64_t v, wire::as_u64(f));
    if (v > max) return Error::corruption(fmt::format("image: field {}: unknown value {}", f.tag, v));
    out = static_cast<T>(v);
  } else if constexpr (std::is_signed_v<T>) {
    FROST_ASSIGN(int64_t v, wire::as_s64(f));
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      return Error::corruption(fmt::format("image: field {}: {} out of range", f.tag, v));
    }
    out = static_cast<T>(v);
  } else {
    FROST_ASSIGN(uint64_t v, wire::as_u64(f));
    uint64_t limit = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    if (v > limit) return Error::corruption(fmt::format("image: field {}: {} out of range", f.tag, v));
    out = static_cast<T>(v);
  }
  return Status::Ok();
}

// Memory a decode may allocate for repeated elements, charged per element at
// the element's in-memory size. Every element costs at least two bytes of
// input, so without a budget a blob of empty messages could ask for ~100x its
// size; with it, a decode stays within kBudgetPerByte x the blob.
constexpr size_t kBudgetPerByte = 16;
constexpr size_t kBudgetFloor = 1 << 20;

class Decoder {
 public:
  explicit Decoder(size_t blob_size) : budget_(blob_size * kBudgetPerByte + kBudgetFloor) {}

  Status body(std::span<const uint8_t> in, ProcessImage& p) {
    return each_field(in, [&](const Field& f) { return process_field(f, p); });
  }

 private:
  template <class Fn>
  static Status each_field(std::span<const uint8_t> in, Fn fn) {
    wire::Reader r(in);
    while (!r.done()) {
      FROST_ASSIGN(Field f, r.next());
      FROST_TRY(fn(f));
    }
    return Status::Ok();
  }

  // Appends an element to a repeated field, if the budget allows it.
  template <class T>
  Result<T*> grow(std::vector<T>& v) {
    size_t cost = sizeof(T);
    if (cost > budget_) return Error::corruption("image: more elements than the blob can hold");
    budget_ -= cost;
    return &v.emplace_back();
  }

  Status bytes_element(const Field& f, std::vector<std::vector<uint8_t>>& v) {
    FROST_ASSIGN(auto* e, grow(v));
    *e = wire::as_bytes(f);
    return Status::Ok();
  }

  template <class T>
  Status int_element(const Field& f, std::vector<T>& v) {
    FROST_ASSIGN(T * e, grow(v));
    return set(f, *e);
  }

  Status creds_field(const Field& f, Credentials& c) {
    if (f.tag >= s::kRuid && f.tag <= s::kFsuid) return set(f, c.uids[f.tag - s::kRuid]);
    if (f.tag >= s::kRgid && f.tag <= s::kFsgid) return set(f, c.gids[f.tag - s::kRgid]);
    switch (f.tag) {
      case s::kGroup: return int_element(f, c.groups);
      case s::kCapInheritable: return set(f, c.cap_inheritable);
      case s::kCapPermitted: return set(f, c.cap_permitted);
      case s::kCapEffective: return set(f, c.cap_effective);
      case s::kCapBounding: return set(f, c.cap_bounding);
      case s::kCapAmbient: return set(f, c.cap_ambient);
      case s::kSecurebits: return set(f, c.securebits);
      case s::kNoNewPrivs: return set(f, c.no_new_privs);
    }
    return Status::Ok();
  }

  static Status rlimit_field(const Field& f, Rlimit& l) {
    switch (f.tag) {
      case s::kResource: return set(f, l.resource);
      case s::kCur: return set(f, l.cur);
      case s::kMax: return set(f, l.max);
    }
    return Status::Ok();
  }

  Status mm_field(const Field& f, MmFields& m) {
    uint64_t* fields[] = {&m.start_code, &m.end_code, &m.start_data, &m.end_data,
                          &m.start_brk,  &m.brk,      &m.start_stack, &m.arg_start,
                          &m.arg_end,    &m.env_start, &m.env_end};
    if (f.tag >= s::kStartCode && f.tag < s::kStartCode + std::size(fields)) {
      return set(f, *fields[f.tag - s::kStartCode]);
    }
    if (f.tag == s::kAuxv) return int_element(f, m.auxv);
    return Status::Ok();
  }

  Status thread_field(const Field& f, ThreadImage& t) {
    switch (f.tag) {
      case s::kTid: return set(f, t.tid);
      case s::kName: t.name = wire::as_string(f); break;
      case s::kRegs: t.regs = wire::as_bytes(f); break;
      case s::kXstate: t.xstate = wire::as_bytes(f); break;
      case s::kFsBase: return set(f, t.fs_base);
      case s::kGsBase: return set(f, t.gs_base);
      case s::kSigmask: return set(f, t.sigmask);
      case s::kPending: return bytes_element(f, t.pending);
      case s::kRseqAbiPointer: return set(f, t.rseq.abi_pointer);
      case s::kRseqAbiSize: return set(f, t.rseq.abi_size);
      case s::kRseqSignature: return set(f, t.rseq.signature);
      case s::kRseqFlags: return set(f, t.rseq.flags);
      case s::kRobustListHead: return set(f, t.robust_list_head);
      case s::kRobustListLen: return set(f, t.robust_list_len);
      case s::kClearChildTid: return set(f, t.clear_child_tid);
      case s::kAltstackSp: return set(f, t.sigaltstack.sp);
      case s::kAltstackFlags: return set(f, t.sigaltstack.flags);
      case s::kAltstackSize: return set(f, t.sigaltstack.size);
      case s::kRestart: return set(f, t.restart, kSyscallRestartLast);
    }
    return Status::Ok();
  }

  static Status area_field(const Field& f, MemoryAreaImage& a) {
    switch (f.tag) {
      case s::kStart: return set(f, a.start);
      case s::kEnd: return set(f, a.end);
      case s::kProt: return set(f, a.prot);
      case s::kFlags: return set(f, a.flags);
      case s::kKind: return set(f, a.kind, kAreaKindLast);
      case s::kPath: a.path = wire::as_string(f); break;
      case s::kFileOffset: return set(f, a.file_offset);
      case s::kInode: return set(f, a.inode);
      case s::kDev: return set(f, a.dev);
      case s::kSource: return set(f, a.source, kContentSourceLast);
      case s::kSharedId: return set(f, a.shared_id);
    }
    return Status::Ok();
  }

  // A sigaction names its signal inside the message, so it is decoded aside
  // and placed once its number is known to be 1..64.
  static Status sigaction_field(const Field& f, uint32_t& signo, SigactionImage& sa) {
    switch (f.tag) {
      case s::kSigno: return set(f, signo, kSignalCount);
      case s::kHandler: return set(f, sa.handler);
      case s::kSaFlags: return set(f, sa.flags);
      case s::kRestorer: return set(f, sa.restorer);
      case s::kMask: return set(f, sa.mask);
    }
    return Status::Ok();
  }

  static Status itimer_field(const Field& f, uint32_t& which, ItimerImage& it) {
    switch (f.tag) {
      case s::kWhich: return set(f, which, 2);
      case s::kIntervalUs: return set(f, it.interval_us);
      case s::kValueUs: return set(f, it.value_us);
    }
    return Status::Ok();
  }

  static Status posix_timer_field(const Field& f, PosixTimerImage& t) {
    switch (f.tag) {
      case s::kTimerId: return set(f, t.id);
      case s::kClockId: return set(f, t.clock_id);
      case s::kNotify: return set(f, t.notify);
      case s::kSignal: return set(f, t.signo);
      case s::kNotifyTid: return set(f, t.notify_tid);
      case s::kSigevValue: return set(f, t.sigev_value);
      case s::kIntervalNs: return set(f, t.interval_ns);
      case s::kValueNs: return set(f, t.value_ns);
      case s::kOverrun: return set(f, t.overrun);
    }
    return Status::Ok();
  }

  static Status fd_field(const Field& f, FdImage& d) {
    switch (f.tag) {
      case s::kFdNumber: return set(f, d.fd);
      case s::kFdFlags: return set(f, d.flags);
      case s::kFdKind: d.kind = wire::as_string(f); break;
      case s::kFdPayload: d.payload = wire::as_bytes(f); break;
    }
    return Status::Ok();
  }

  Status sigaction(const Field& f, ProcessImage& p) {
    uint32_t signo = 0;
    SigactionImage sa;
    FROST_TRY(each_field(f.payload, [&](const Field& g) { return sigaction_field(g, signo, sa); }));
    if (signo == 0) return Error::corruption("image: sigaction without a signal number");
    p.sigactions[signo - 1] = sa;
    return Status::Ok();
  }

  Status itimer(const Field& f, ProcessImage& p) {
    uint32_t which = 0;
    ItimerImage it;
    FROST_TRY(each_field(f.payload, [&](const Field& g) { return itimer_field(g, which, it); }));
    p.itimers[which] = it;
    return Status::Ok();
  }

  // Decodes a nested message into a new element of a repeated field.
  template <class T, class FieldFn>
  Status element(const Field& f, std::vector<T>& v, FieldFn fn) {
    FROST_ASSIGN(T * e, grow(v));
    return each_field(f.payload, [&](const Field& g) { return fn(g, *e); });
  }

  Status process_field(const Field& f, ProcessImage& p) {
    switch (f.tag) {
      case s::kPid: return set(f, p.pid);
      case s::kPpid: return set(f, p.ppid);
      case s::kPgid: return set(f, p.pgid);
      case s::kSid: return set(f, p.sid);
      case s::kComm: p.comm = wire::as_string(f); break;
      case s::kExe: p.exe = wire::as_string(f); break;
      case s::kCwd: p.cwd = wire::as_string(f); break;
      case s::kUmask: return set(f, p.umask);
      case s::kPersonality: return set(f, p.personality);
      case s::kCreds:
        return each_field(f.payload, [&](const Field& g) { return creds_field(g, p.creds); });
      case s::kRlimit: return element(f, p.rlimits, rlimit_field);
      case s::kMm: return each_field(f.payload, [&](const Field& g) { return mm_field(g, p.mm); });
      case s::kThread: return element(f, p.threads, [this](const Field& g, ThreadImage& t) { return thread_field(g, t); });
      case s::kArea: return element(f, p.areas, area_field);
      case s::kSigaction: return sigaction(f, p);
      case s::kSharedPending: return bytes_element(f, p.shared_pending);
      case s::kItimer: return itimer(f, p);
      case s::kPosixTimer: return element(f, p.posix_timers, posix_timer_field);
      case s::kFd: return element(f, p.fds, fd_field);
    }
    return Status::Ok();  // a field from a newer minor version
  }

  size_t budget_;
};

// Checks magic and version, then the checksum; returns the body.
Result<std::span<const uint8_t>> open_blob(std::span<const uint8_t> blob, ProcessImage& p) {
  if (blob.size() < s::kHeaderSize + s::kTrailerSize) {
    return Error::corruption(fmt::format("image: {} bytes is shorter than any image", blob.size()));
  }
  if (std::memcmp(blob.data(), s::kMagic, sizeof(s::kMagic)) != 0) {
    return Error::corruption("image: bad magic");
  }
  // The version comes before the checksum: another major may checksum differently.
  p.format_major = static_cast<uint16_t>(get_le(blob.data() + 4, 2));
  p.format_minor = static_cast<uint16_t>(get_le(blob.data() + 6, 2));
  if (p.format_major != kFormatMajor) {
    return Error(ErrorKind::kUnsupported,
                 fmt::format("image: format version {}.{}, this frost reads {}.x",
                             p.format_major, p.format_minor, kFormatMajor));
  }
  uint64_t body_len = get_le(blob.data() + 8, 4);
  if (body_len != blob.size() - s::kHeaderSize - s::kTrailerSize) {
    return Error::corruption(fmt::format("image: body of {} bytes in a blob of {}", body_len,
                                         blob.size()));
  }
  size_t covered = s::kHeaderSize + body_len;
  if (XXH3_64bits(blob.data(), covered) != get_le(blob.data() + covered, 8)) {
    return Error::corruption("image: checksum mismatch");
  }
  return blob.subspan(s::kHeaderSize, body_len);
}

}  // namespace

std::vector<uint8_t> encode(const ProcessImage& image) {
  std::vector<uint8_t> body = encode_body(image).take();
  std::vector<uint8_t> out(s::kHeaderSize + body.size() + s::kTrailerSize);
  uint8_t* p = out.data();
  std::memcpy(p, s::kMagic, sizeof(s::kMagic));
  put_le(p + 4, kFormatMajor, 2);
  put_le(p + 6, kFormatMinor, 2);
  put_le(p + 8, body.size(), 4);
  if (!body.empty()) std::memcpy(p + s::kHeaderSize, body.data(), body.size());
  size_t covered = s::kHeaderSize + body.size();
  put_le(p + covered, XXH3_64bits(p, covered), 8);
  return out;
}

Result<ProcessImage> decode(std::span<const uint8_t> blob) {
  ProcessImage p;
  FROST_ASSIGN(auto body, open_blob(blob, p));
  Decoder d(blob.size());
  FROST_TRY(d.body(body, p));
  return p;
}

}  // namespace frost::image
