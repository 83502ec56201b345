// Child-lifetime guard for Linux and macOS. See guard.h.
//
// Between fork() and execve() the child is a copy of a multi-threaded process (Node): another
// thread may have held malloc's lock at the fork, so the child may only make async-signal-safe
// calls. Everything it needs (argv, envp, open files, the parent's pid) is prepared before the
// fork, and its failures travel back as {step, errno} over a close-on-exec pipe: EOF on the
// pipe means execve succeeded.
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif
#ifdef __APPLE__
#include <crt_externs.h>
#include <sys/event.h>
#endif

namespace strata {
namespace {

enum Step : int { STEP_PRCTL = 1, STEP_SETPGID, STEP_DUP, STEP_CHDIR, STEP_EXEC };

struct ChildFailure {
  int step;
  int err;
};

struct Plan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: stay
  int src[3];       // descriptors to become 0, 1, 2
  int errFd;        // write end of the status pipe
  pid_t parent;
  bool newGroup;
  sigset_t emptyMask;
};

char** currentEnviron() {
#ifdef __APPLE__
  return *_NSGetEnviron();  // `environ` is not exported to shared libraries on macOS
#else
  return ::environ;  // declared by <unistd.h> (glibc, with _GNU_SOURCE, which g++ defines)
#endif
}

std::string errnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOEXEC: return "ENOEXEC";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ETXTBSY: return "ETXTBSY";
    case EBADF: return "EBADF";
    default: return "E" + std::to_string(e);
  }
}

[[noreturn]] void fail(const Plan& p, int step) {
  ChildFailure f{step, errno};
  ssize_t n = write(p.errFd, &f, sizeof f);
  (void)n;
  _exit(127);
}

// Runs in the child. Async-signal-safe calls only.
[[noreturn]] void childAfterFork(const Plan& p) {
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(p, STEP_PRCTL);
  // If the parent died between fork() and prctl(), no death signal will ever come: we have
  // been re-parented already, so check and go.
  if (getppid() != p.parent) _exit(128 + SIGKILL);
#endif
  if (p.newGroup && setpgid(0, 0) != 0) fail(p, STEP_SETPGID);

  // stdio. A source that is itself 0..2 but meant for another slot (stdout <-> stderr, say) is
  // first moved out of the way so that dup2 cannot clobber it.
  int src[3] = {p.src[0], p.src[1], p.src[2]};
  for (int i = 0; i < 3; ++i) {
    if (src[i] < 3 && src[i] != i) {
      src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
      if (src[i] < 0) fail(p, STEP_DUP);
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (src[i] == i) {
      if (fcntl(i, F_SETFD, 0) != 0) fail(p, STEP_DUP);  // keep it across exec
    } else if (dup2(src[i], i) != i) {
      fail(p, STEP_DUP);
    }
  }
#if defined(__linux__) && defined(SYS_close_range)
  // Node's descriptors are close-on-exec already; this catches any an addon or library opened
  // without it (a leaked listening socket would keep the sidecar's port alive in llama-server).
  // CLOSE_RANGE_CLOEXEC (Linux 5.11) rather than closing: the status pipe must survive until
  // exec. On older kernels this fails harmlessly.
  syscall(SYS_close_range, 3u, ~0u, 1u << 2);
#endif

  // Node ignores SIGPIPE and has handlers installed; ignored dispositions survive exec, so
  // restore defaults, then unblock (everything was blocked across the fork).
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // KILL/STOP just fail
  sigprocmask(SIG_SETMASK, &p.emptyMask, nullptr);

  if (p.cwd && chdir(p.cwd) != 0) fail(p, STEP_CHDIR);
  execve(p.path, p.argv, p.envp);
  fail(p, STEP_EXEC);
}

#ifdef __APPLE__
// The watcher: forked, never exec'd, so syscalls only. It holds no descriptor of ours (a copy
// of a pipe or socket would keep it open after we close it) and waits in kqueue for either the
// parent or the child to exit.
[[noreturn]] void watcherMain(pid_t parent, pid_t child, bool group) {
  int maxFd = static_cast<int>(sysconf(_SC_OPEN_MAX));
  if (maxFd < 0 || maxFd > 65536) maxFd = 65536;
  for (int fd = 0; fd < maxFd; ++fd) close(fd);
  setsid();  // a Ctrl-C aimed at the parent's terminal group must not kill the watcher
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  auto killChild = [&]() {
    if (group) kill(-child, SIGKILL);
    kill(child, SIGKILL);
    _exit(0);
  };
  int kq = kqueue();
  if (kq < 0) _exit(1);
  struct kevent ev;
  EV_SET(&ev, parent, EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, 0, nullptr);
  if (kevent(kq, &ev, 1, nullptr, 0, nullptr) < 0) killChild();  // ESRCH: the parent is gone already
  EV_SET(&ev, child, EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, 0, nullptr);
  if (kevent(kq, &ev, 1, nullptr, 0, nullptr) < 0) _exit(0);  // the child is gone already
  for (;;) {
    struct kevent got;
    int n = kevent(kq, nullptr, 0, &got, 1, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) _exit(1);
    if (static_cast<pid_t>(got.ident) == parent) killChild();
    _exit(0);  // the child exited on its own
  }
}

void startWatcher(pid_t parent, pid_t child, bool group) {
  // Double fork: the watcher is adopted by launchd at once, so it never lingers as our zombie.
  pid_t mid = fork();
  if (mid == 0) {
    if (fork() == 0) watcherMain(parent, child, group);
    _exit(0);
  }
  if (mid > 0) {
    int st = 0;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
  }
}
#endif

class Fds {
 public:
  ~Fds() {
    for (int fd : owned_) close(fd);
  }
  void own(int fd) { owned_.push_back(fd); }

 private:
  std::vector<int> owned_;
};

int connectLocal(const std::string& path, Fds& fds) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw SpawnError(ENAMETOOLONG, "ENAMETOOLONG", "connect", "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) throw SpawnError(errno, errnoName(errno), "socket", "cannot create a socket");
  fds.own(fd);
  fcntl(fd, F_SETFD, FD_CLOEXEC);  // only the dup2'd copy may reach the child
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    throw SpawnError(e, errnoName(e), "connect", "cannot connect to " + path + ": " + std::strerror(e));
  }
  return fd;
}

int openStdio(const StdioSpec& s, int slot, Fds& fds) {
  if (s.kind == StdioSpec::Connect) return connectLocal(s.path, fds);
  if (s.kind == StdioSpec::Fd) {
    if (fcntl(s.fd, F_GETFD) < 0) throw SpawnError(errno, "EBADF", "fcntl", "stdio descriptor " + std::to_string(s.fd) + " is not open");
    return s.fd;
  }
  const char* path = s.kind == StdioSpec::Path ? s.path.c_str() : "/dev/null";
  int flags = slot == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND);
  int fd = open(path, flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    throw SpawnError(e, errnoName(e), "open", std::string("cannot open ") + path + ": " + std::strerror(e));
  }
  fds.own(fd);
  return fd;
}

}  // namespace

const char* guardKind() {
#ifdef __linux__
  return "pdeathsig";
#else
  return "kqueue-watcher";
#endif
}

Child spawnGuarded(const SpawnRequest& req) {
#ifdef __linux__
  // PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process. Node's main
  // thread lives as long as the process; a worker thread does not.
  if (syscall(SYS_gettid) != getpid()) {
    throw SpawnError(EPERM, "ERR_STRATA_NOT_MAIN_THREAD", "spawn",
                     "spawnGuarded must be called from the main thread: the death signal is tied to the forking thread");
  }
#endif
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(req.file.c_str()));
  for (const auto& a : req.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char* const* envv = currentEnviron();
  if (req.env) {
    for (const auto& e : *req.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    envv = envp.data();
  }

  Fds fds;
  Plan p{};
  p.path = req.file.c_str();
  p.argv = argv.data();
  p.envp = envv;
  p.cwd = req.cwd ? req.cwd->c_str() : nullptr;
  for (int i = 0; i < 3; ++i) p.src[i] = openStdio(req.stdio[i], i, fds);
  p.parent = getpid();
  p.newGroup = req.newProcessGroup;
  sigemptyset(&p.emptyMask);

  int pipeFds[2];
#ifdef __linux__
  if (pipe2(pipeFds, O_CLOEXEC) != 0) throw SpawnError(errno, errnoName(errno), "pipe", "pipe2 failed");
#else
  // No pipe2 on macOS: a fork on another thread could inherit these without CLOEXEC for an
  // instant, which only delays its exec-status EOF; acceptable for a status pipe.
  if (pipe(pipeFds) != 0) throw SpawnError(errno, errnoName(errno), "pipe", "pipe failed");
  fcntl(pipeFds[0], F_SETFD, FD_CLOEXEC);
  fcntl(pipeFds[1], F_SETFD, FD_CLOEXEC);
#endif
  p.errFd = pipeFds[1];

  // Block every signal across fork so that none of Node's handlers can run in the child before
  // it has reset them; the parent restores its mask right after.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) childAfterFork(p);
  int forkErr = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(pipeFds[1]);
  if (pid < 0) {
    close(pipeFds[0]);
    throw SpawnError(forkErr, errnoName(forkErr), "fork", std::string("fork failed: ") + std::strerror(forkErr));
  }

  ChildFailure f{};
  ssize_t n;
  do {
    n = read(pipeFds[0], &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  close(pipeFds[0]);
  if (n == static_cast<ssize_t>(sizeof f)) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    const char* syscallName = f.step == STEP_EXEC ? "execve" : f.step == STEP_CHDIR ? "chdir" : f.step == STEP_DUP ? "dup2"
                              : f.step == STEP_SETPGID ? "setpgid" : "prctl";
    std::string what = f.step == STEP_CHDIR ? "cannot enter " + *req.cwd : "cannot run " + req.file;
    throw SpawnError(f.err, errnoName(f.err), syscallName,
                     "spawn " + req.file + " " + errnoName(f.err) + ": " + what + " (" + syscallName + ": " + std::strerror(f.err) + ")");
  }
#ifdef __APPLE__
  startWatcher(p.parent, pid, req.newProcessGroup);
#endif
  return Child{static_cast<int>(pid), 0};
}

void waitForExit(const Child& c) {
  siginfo_t si;
  // WNOWAIT: observe the exit but leave the zombie, so the pid stays ours until reapExit().
  while (waitid(P_PID, static_cast<id_t>(c.pid), &si, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) return;  // ECHILD: something else in this process reaped it
  }
}

ExitStatus reapExit(const Child& c) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(c.pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  ExitStatus s;
  if (r != c.pid) return s;  // reaped elsewhere (a waitpid(-1) somewhere): unknown
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

}  // namespace strata
