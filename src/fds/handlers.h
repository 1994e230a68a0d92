// The handlers fd_table.cc lists, one per kind (each defined in its own file).
#pragma once

#include "fds/fd_handler.h"

namespace frost::fds {

const FdHandler& file_handler();          // fd_file.cc
const FdHandler& deleted_file_handler();  // fd_file.cc
const FdHandler& dir_handler();           // fd_file.cc
const FdHandler& char_device_handler();   // fd_chr.cc
const FdHandler& tty_handler();           // fd_tty.cc
const FdHandler& pipe_handler();          // fd_pipe.cc
const FdHandler& memfd_handler();         // fd_memfd.cc

}  // namespace frost::fds
