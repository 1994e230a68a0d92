// Where frost keeps its state: $FROST_HOME (default /var/lib/frost), a private
// directory holding the store file "store". Header-only so that tools (the demo)
// find the same store as the `frost` command.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/result.h"

namespace frost::cli {

inline constexpr const char* kDefaultHome = "/var/lib/frost";
inline constexpr const char* kStoreFileName = "store";

// $FROST_HOME, or the default when it is unset or empty.
// Trailing slashes are dropped so that "/tmp/x/" names the same directory as "/tmp/x".
inline std::string frost_home() {
  const char* env = std::getenv("FROST_HOME");
  std::string home = env != nullptr && *env != '\0' ? env : kDefaultHome;
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  return home;
}

inline std::string store_path(const std::string& home) { return home + "/" + kStoreFileName; }

// Creates home with mode 0700 when it does not exist, and its missing parents
// as `mkdir -p` would. The mode is set again after mkdir because the umask may
// have taken bits away; an existing directory is left as its owner made it.
inline Status ensure_home(const std::string& home) {
  if (home.empty()) return Error::invalid("FROST_HOME is empty");
  for (size_t slash = home.find('/', 1); slash != std::string::npos; slash = home.find('/', slash + 1)) {
    std::string parent = home.substr(0, slash);
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return Error::io("cannot create FROST_HOME " + home + " (at " + parent + ")");
    }
  }
  if (::mkdir(home.c_str(), 0700) == 0) {
    if (::chmod(home.c_str(), 0700) != 0) return Error::io("cannot set the mode of " + home);
    return Status::Ok();
  }
  int err = errno;
  struct stat st {};
  if (err != EEXIST) return Error::io("cannot create FROST_HOME " + home, err);
  if (::stat(home.c_str(), &st) != 0) return Error::io("cannot stat FROST_HOME " + home);
  if (!S_ISDIR(st.st_mode)) return Error::invalid("FROST_HOME " + home + " is not a directory");
  return Status::Ok();
}

}  // namespace frost::cli
