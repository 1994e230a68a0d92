// Files the new process needs while it is being built, opened by frost before
// the stub exists and handed to it as helper fds: the files its areas map,
// one memfd per shared object (filled from the store by frost), its exe (for
// PR_SET_MM_MAP) and the caller's terminal for --shell-job.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "image/process_image.h"

namespace frost::restore {

class MeltFiles {
 public:
  // Opens everything the image's areas and exe need. A mapped file that is
  // gone, or was replaced since the freeze (another inode), fails the melt:
  // mapping other code or data under the process would corrupt it.
  static Result<MeltFiles> open(const image::ProcessImage& image);

  // Adds the caller's terminal; returns its helper index.
  int add_terminal(int fd);

  // Local fds in helper order: the stub places helper i at helper_base + i.
  std::vector<int> helper_fds() const;
  // Helper index of the file or memfd an area maps, or -1 (anonymous).
  int area_helper(size_t area_index) const;
  // Helper index of the exe, or -1 when it could not be opened (deleted).
  int exe_helper() const { return exe_helper_; }
  // The memfd of a shared object, for filling it from here.
  int shared_object_fd(uint64_t shared_id) const;
  // The memfd made for the shared object with this saved device and inode, or -1.
  int shared_object_by_inode(uint64_t dev, uint64_t inode) const;
  // Size of a shared object in bytes.
  uint64_t shared_object_size(uint64_t shared_id) const;

 private:
  int add(UniqueFd fd);
  std::vector<UniqueFd> fds_;
  std::vector<int> area_helper_;
  std::map<uint64_t, int> shared_helper_;
  std::map<uint64_t, uint64_t> shared_size_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> shared_by_inode_;
  int exe_helper_ = -1;
};

}  // namespace frost::restore
