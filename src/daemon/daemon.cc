#include "daemon/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <list>
#include <thread>

#include <fmt/format.h>

#include "cli/frost_home.h"
#include "daemon/control_socket.h"
#include "daemon/service.h"

namespace frost::daemon {
namespace {

// Answers one connection: one request, progress lines, one reply.
void serve_connection(Service& service, UniqueFd conn) {
  timeval timeout{30, 0};  // a client that never sends its request
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  Result<uid_t> uid = peer_uid(conn.get());
  std::string buffer;
  Result<std::string> line = read_line(conn.get(), buffer);
  if (!uid.ok() || !line.ok()) return;
  json request;
  try {
    request = json::parse(*line);
  } catch (const json::exception& e) {
    (void)send_line(conn.get(), reply_for_error(Error::invalid(fmt::format("not JSON: {}", e.what()))).dump());
    return;
  }
  int fd = conn.get();
  ProgressFn progress = [fd](uint64_t done, uint64_t total) {
    (void)send_line(fd, json{{"progress", {{"done", done}, {"total", total}}}}.dump());
  };
  Result<json> result = service.handle(request, Caller{*uid}, progress);
  // An fd for the client (attach) leaves with the answer and is closed here.
  UniqueFd pass;
  if (result.ok() && result->contains("_fd")) {
    pass = UniqueFd(result->at("_fd").get<int>());
    result->erase("_fd");
  }
  json reply = result.ok() ? json{{"ok", true}, {"result", *result}} : reply_for_error(result.error());
  if (!result.ok()) daemon_log(fmt::format("{} (uid {}): {}", request.value("op", std::string("?")), *uid, result.error().to_string()));
  (void)send_line(conn.get(), reply.dump(), pass.get());
}

// Connection threads, joined as they finish and all at the end.
class Workers {
 public:
  void start(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    reap_locked();
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([fn = std::move(fn), done] {
                          fn();
                          *done = true;
                        }),
                        done});
  }
  void join_all() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& w : threads_) w.thread.join();
    threads_.clear();
  }

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap_locked() {
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (*it->done) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::mutex mu_;
  std::list<Worker> threads_;
};

}  // namespace

void daemon_log(const std::string& line) {
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::string flat = line;
  for (char& c : flat) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "%s frostd: %s\n", when, flat.c_str());
  std::fflush(stderr);
}

Status run_daemon(const DaemonOptions& options) {
  // Signals are taken by the poll loop below; every thread made from here on inherits the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd sigfd(::signalfd(-1, &stop, SFD_CLOEXEC));
  if (!sigfd) return Error::io("signalfd");

  FROST_TRY(cli::ensure_home(options.home));
  std::string path = cli::store_path(options.home);
  store::StoreOptions so;
  Result<std::unique_ptr<store::Store>> opened = store::Store::open_or_create(path, so);
  if (!opened.ok()) {
    if (opened.error().kind() == ErrorKind::kBusy) {
      return Error(ErrorKind::kBusy, fmt::format("the store {} is held by another frostd or frost command", path));
    }
    return opened.error().context("cannot open store " + path);
  }
  FROST_ASSIGN(Registry registry, Registry::load(options.home));
  FROST_ASSIGN(UniqueFd listener, listen_control(options.home));
  Service service(ServiceOptions{options.home, true}, std::move(*opened), std::move(registry));
  daemon_log(fmt::format("serving {} on {} (pid {})", path, socket_path(options.home), ::getpid()));

  if (options.recover) {
    Result<json> r = service.handle(json{{"op", "recover"}}, Caller{0});
    if (!r.ok()) {
      daemon_log("recover: " + r.error().to_string());
    } else {
      for (const json& p : (*r)["recovered"]) {
        daemon_log(fmt::format("recovered '{}' as pid {} from snapshot {}", p.value("name", ""), p.value("pid", 0),
                               p.value("snapshot", uint64_t(0))));
      }
      for (const json& p : (*r)["failed"]) {
        daemon_log(fmt::format("could not recover '{}': {}", p.value("name", ""), p.value("error", "")));
      }
    }
  }

  std::atomic<bool> stopping{false};
  std::mutex timer_mu;
  std::condition_variable timer_cv;
  std::thread timer([&] {
    std::unique_lock<std::mutex> lock(timer_mu);
    while (!stopping) {
      lock.unlock();
      auto wait = service.tick();
      lock.lock();
      timer_cv.wait_for(lock, wait, [&] { return stopping.load(); });
    }
  });

  Workers workers;
  for (;;) {
    pollfd fds[2] = {{listener.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      (void)!::read(sigfd.get(), &si, sizeof si);
      daemon_log(fmt::format("signal {}: stopping", si.ssi_signo));
      break;
    }
    if (fds[0].revents & POLLIN) {
      UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      auto shared = std::make_shared<UniqueFd>(std::move(conn));
      workers.start([&service, shared] { serve_connection(service, std::move(*shared)); });
    }
  }
  // Stop taking requests first, then let the ones under way finish.
  ::unlink(socket_path(options.home).c_str());
  listener.reset();
  {
    std::lock_guard<std::mutex> lock(timer_mu);
    stopping = true;
  }
  timer_cv.notify_all();
  timer.join();
  workers.join_all();
  daemon_log("stopped");
  return Status::Ok();  // the service waits for its page servers as it goes
}

}  // namespace frost::daemon
