// Turns the stub's address space (a copy of frost's) into the image's, with
// remote system calls made by the stub's leader thread:
//
//   1. map the restorer window in a gap of the image: a code page holding the
//      `syscall` gadget (and the pause loop new threads start in) and a
//      scratch page for the arguments of calls;
//   2. unregister the stub's rseq area and unmap every other area of frost's;
//   3. move [vvar], [vvar_vclock] and [vdso] to the saved addresses (mremap:
//      the kernel lets a process move its own special mappings whole);
//   4. map every area, writable while it is filled; then set the final
//      protections, and the mm fields with one PR_SET_MM_MAP;
//   5. finally unmap the window.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "common/result.h"
#include "image/process_image.h"
#include "proc/remote_syscall.h"
#include "restore/melt_files.h"

namespace frost::restore {

class AddressSpace {
 public:
  AddressSpace(proc::RemoteSyscall& leader, const image::ProcessImage& image, const MeltFiles& files,
               int helper_base)
      : leader_(leader), image_(image), files_(files), helper_base_(helper_base) {}

  // Steps 1-3.
  Status prepare();
  // Step 4, first half. `filled` lists the areas that get pages written into them.
  Status map_areas(const std::vector<bool>& filled);
  // Step 4, second half.
  Status finish_areas(const std::vector<bool>& filled);
  Status set_mm_fields();
  // Step 5.
  Status drop_window();

  // The `syscall` instruction new threads return from: they start at
  // gadget() + 2, a pause() loop.
  uint64_t gadget() const { return window_; }
  // A page for call arguments.
  uint64_t scratch() const { return window_ + kPage; }
  static constexpr uint64_t kScratchSize = 4096;

 private:
  static constexpr uint64_t kPage = 4096;
  Result<uint64_t> find_window(uint64_t size) const;
  Status unmap_stub_areas();
  Status move_special_areas();

  proc::RemoteSyscall& leader_;
  const image::ProcessImage& image_;
  const MeltFiles& files_;
  int helper_base_;
  uint64_t window_ = 0, window_size_ = 0;
};

}  // namespace frost::restore
