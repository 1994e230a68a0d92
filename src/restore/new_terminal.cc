#include "restore/new_terminal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>

namespace frost::restore {

Result<NewTerminal> open_new_terminal(uid_t owner) {
  NewTerminal t;
  t.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.master) return Error::io("opening a new pseudo-terminal (/dev/ptmx)");
  if (::unlockpt(t.master.get()) != 0) return Error::io("unlocking the new pseudo-terminal");
  // TIOCGPTPEER opens the slave through the master: no path lookup that
  // another mount of devpts could redirect.
  t.slave = UniqueFd(::ioctl(t.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!t.slave) return Error::io("opening the new pseudo-terminal's slave");
  char name[64];
  if (::ptsname_r(t.master.get(), name, sizeof name) != 0) return Error::io("naming the new pseudo-terminal");
  t.path = name;
  if (::fchown(t.slave.get(), owner, gid_t(-1)) != 0) return Error::io(fmt::format("giving {} to uid {}", t.path, owner));
  if (::fchmod(t.slave.get(), 0620) != 0) return Error::io(fmt::format("setting the mode of {}", t.path));
  // A size until someone attaches and brings theirs.
  winsize ws{24, 80, 0, 0};
  (void)::ioctl(t.master.get(), TIOCSWINSZ, &ws);
  return t;
}

}  // namespace frost::restore
