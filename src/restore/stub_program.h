// The program a melt's stub execs: a few hundred bytes of machine code in a
// memfd, made for each melt, with the melt's own table appended.
//
// The stub is born sharing frost's memory (vfork_clone) and gets memory of
// its own by exec; exec then undoes some of what the stub set up before it,
// and this program puts that back before reporting: the personality (exec
// rewrites some of its flags), FD_CLOEXEC on the fds that had it (exec
// would have closed them), and every signal disposition exec reset (caught
// handlers, and flags, masks and restorers of all). Then it writes its
// report to the status pipe and waits in pause() for frost to seize it.
//
// Nothing but the kernel is involved: no loader, no libc, one read-only
// executable segment at a fixed address that the melt unmaps like any other
// area of the stub.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "image/process_image.h"

namespace frost::restore {

// The steps the program reports on, after those of the stub before exec.
enum StubProgramStep : int {
  kStubProgramSigaction = 9,     // the same step as the stub's own sigactions
  kStubProgramCloexec = 11,
  kStubProgramPersonality = 12,
};

struct StubProgramPlan {
  int status_fd = -1;                 // where the report goes (kept across exec)
  uint32_t personality = 0;
  std::vector<int> cloexec_fds;       // to mark FD_CLOEXEC
  const image::SigactionImage* sigactions = nullptr;  // image::kSignalCount of them
};

// A read-only fd of the program, ready for execveat(fd, "", ..., AT_EMPTY_PATH)
// (a writable fd of it would make exec fail with ETXTBSY).
Result<UniqueFd> make_stub_program(const StubProgramPlan& plan);

}  // namespace frost::restore
