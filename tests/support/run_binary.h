// Running a built binary the way a user would, for the tests of the `frost`
// command: a private FROST_HOME, stdout and stderr captured through files (so
// nothing can block on a full pipe), and the exit status.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace frost::testing {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "frost-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs binary with args (argv[0] is the binary), FROST_HOME=home, the given
// umask and stdin from /dev/null; waits for it.
inline Outcome run_binary(const std::string& binary, const std::vector<std::string>& args, const fs::path& home,
                          mode_t mask = 022) {
  TempDir scratch;
  fs::path out = scratch.path() / "out", err = scratch.path() / "err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int n = ::open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || n < 0 || ::dup2(n, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
    ::umask(mask);
    ::setenv("FROST_HOME", home.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  Outcome r;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// A failure as the CLI promises to report it: a non-zero exit, nothing on
// stdout, one line "frost: ..." on stderr that mentions `mentions`.
inline void expect_one_line_error(const Outcome& r, const std::string& mentions) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(r.err.starts_with("frost: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
}

// Damages a file: flips a byte every `step` bytes from `from` on (a store's
// blocks, to test that damage is found and nothing is made of it).
inline void flip_bytes(const fs::path& file, uint64_t from, uint64_t step) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t size = fs::file_size(file);
  for (uint64_t at = from; at < size; at += step) {
    f.seekg(std::streamoff(at));
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x5a);
    f.seekp(std::streamoff(at));
    f.write(&c, 1);
  }
}

}  // namespace frost::testing
