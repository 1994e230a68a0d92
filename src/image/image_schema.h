// The image format's field numbers, declared in one place (as CRIU's
// images/*.proto are). docs/IMAGE.md gives the byte layout around them.
//
// Rules that keep old and new readers compatible: a number is never reused
// nor given another meaning; a new field gets a new number and a minor version
// bump; a change an old reader would misread bumps the major version.
#pragma once

#include <cstdint>

namespace frost::image::schema {

// Header of every image blob: magic, then major and minor version (u16 LE each).
inline constexpr uint8_t kMagic[4] = {'F', 'R', 'I', 'M'};
inline constexpr size_t kHeaderSize = 12;  // magic 4, major 2, minor 2, body length 4
inline constexpr size_t kTrailerSize = 8;  // XXH3-64 of header and body, LE

// Top level: ProcessImage.
enum Process : uint32_t {
  kPid = 1, kPpid = 2, kPgid = 3, kSid = 4,
  kComm = 5, kExe = 6, kCwd = 7, kUmask = 8, kPersonality = 9,
  kCreds = 10,         // message Creds
  kRlimit = 11,        // message Rlimit, repeated
  kMm = 12,            // message Mm
  kThread = 13,        // message Thread, repeated
  kArea = 14,          // message Area, repeated
  kSigaction = 15,     // message Sigaction, repeated (only those not all zero)
  kSharedPending = 16, // bytes (siginfo_t), repeated
  kItimer = 17,        // message Itimer, repeated (only those not all zero)
  kPosixTimer = 18,    // message PosixTimer, repeated
  kFd = 19,            // message Fd, repeated
};

enum Creds : uint32_t {
  kRuid = 1, kEuid = 2, kSuid = 3, kFsuid = 4,
  kRgid = 5, kEgid = 6, kSgid = 7, kFsgid = 8,
  kGroup = 9,  // repeated
  kCapInheritable = 10, kCapPermitted = 11, kCapEffective = 12,
  kCapBounding = 13, kCapAmbient = 14, kSecurebits = 15, kNoNewPrivs = 16,
};

enum Rlimit : uint32_t { kResource = 1, kCur = 2, kMax = 3 };

enum Mm : uint32_t {
  kStartCode = 1, kEndCode = 2, kStartData = 3, kEndData = 4,
  kStartBrk = 5, kBrk = 6, kStartStack = 7,
  kArgStart = 8, kArgEnd = 9, kEnvStart = 10, kEnvEnd = 11,
  kAuxv = 12,  // repeated
};

enum Thread : uint32_t {
  kTid = 1, kName = 2, kRegs = 3, kXstate = 4, kFsBase = 5, kGsBase = 6,
  kSigmask = 7,
  kPending = 8,  // bytes (siginfo_t), repeated
  kRseqAbiPointer = 9, kRseqAbiSize = 10, kRseqSignature = 11, kRseqFlags = 12,
  kRobustListHead = 13, kRobustListLen = 14, kClearChildTid = 15,
  kAltstackSp = 16, kAltstackFlags = 17, kAltstackSize = 18,
  kRestart = 19,
};

enum Area : uint32_t {
  kStart = 1, kEnd = 2, kProt = 3, kFlags = 4, kKind = 5, kPath = 6,
  kFileOffset = 7, kInode = 8, kDev = 9, kSource = 10, kSharedId = 11,
};

enum Sigaction : uint32_t { kSigno = 1, kHandler = 2, kSaFlags = 3, kRestorer = 4, kMask = 5 };

enum Itimer : uint32_t { kWhich = 1, kIntervalUs = 2, kValueUs = 3 };

enum PosixTimer : uint32_t {
  kTimerId = 1, kClockId = 2, kNotify = 3, kSignal = 4, kNotifyTid = 5,
  kSigevValue = 6, kIntervalNs = 7, kValueNs = 8, kOverrun = 9,
};

enum Fd : uint32_t { kFdNumber = 1, kFdFlags = 2, kFdKind = 3, kFdPayload = 4 };

}  // namespace frost::image::schema
