// The restore side of a lazy melt (docs/LAZY_MELT.md): which areas the page
// server fills instead of the melt, the userfaultfd made inside the new
// process for them, and letting the process go once every page is in.
//
// The stub arms PR_SET_PDEATHSIG=SIGKILL before anything else. An eager
// melt clears it before the process runs; a lazy one keeps it until the page
// server is done, so that a server that dies takes the process with it: a
// process whose userfaultfd is closed under it reads zeros where its data
// should be, and one whose server hangs hangs with it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "common/result.h"
#include "image/process_image.h"
#include "lazy/page_server.h"
#include "proc/remote_syscall.h"
#include "restore/melt_files.h"
#include "restore/page_fill.h"
#include "store/store.h"

namespace frost::restore {

// The areas served lazily: private anonymous ones the snapshot holds pages
// for (`filled`). Shared objects and private file mappings stay eager
// (missing-page mode does not cover private file mappings).
std::vector<bool> lazy_areas(const image::ProcessImage& image, const MeltFiles& files,
                             const std::vector<bool>& filled);

// Their snapshot pages, sorted, for fill_pages to leave out.
std::vector<VpnRange> lazy_vpn_ranges(const image::ProcessImage& image, const std::vector<bool>& lazy);

// Makes a userfaultfd in the process (through its leader, seized by the
// calling thread) and a page server with the lazy areas registered; they
// must be mapped. The caller sets the pending count once it knows it.
//
// The process keeps a copy of the userfaultfd (close-on-exec) at *kept_fd
// until the server is done: frost's fds close before its exit raises the
// parent-death signal, and a userfaultfd nobody holds any more lets faults
// read zeros. The caller must spare *kept_fd when it closes frost's helpers.
Result<std::unique_ptr<lazy::PageServer>> start_page_server(proc::RemoteSyscall& leader, store::Store& store,
                                                            store::SnapshotId id, const image::ProcessImage& image,
                                                            const std::vector<bool>& lazy, int* kept_fd);

// Lets a served process go (seize, remote calls, detach), waiting a while
// for another tracer to let go: closes its copy of the userfaultfd at
// kept_fd if it still is `uffd` (kcmp; the program may have closed and
// reused the number), and clears its parent-death signal. Ok if it is gone.
Status release_served_process(pid_t pid, int uffd, int kept_fd);

}  // namespace frost::restore
