// Child-lifetime guard: start a process that dies when this process dies, even by SIGKILL.
//   Linux:   PR_SET_PDEATHSIG(SIGKILL), set in the child between fork and exec.
//   macOS:   a small watcher process (kqueue EVFILT_PROC on parent and child).
//   Windows: a kill-on-close job object that only this process holds a handle to.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata {

struct StdioSpec {
  enum Kind { Null, Fd, Path, Connect } kind = Null;
  int fd = -1;       // Fd: a descriptor of this process (POSIX), or 0/1/2 meaning ours (Windows)
  // Path: opened for reading (stdin) or appending (stdout/stderr).
  // Connect: a local stream server of ours (Unix socket / named pipe) to connect to; the child
  // gets the connection. This is how the wrapper gives JS a stream ("pipe") portably: Node
  // listens, we connect, Node's 'connection' is the child's end.
  std::string path;
};

struct SpawnRequest {
  std::string file;               // a path (the TypeScript wrapper resolves PATH lookups)
  std::vector<std::string> args;  // argv[1..]; argv[0] is `file`
  std::optional<std::string> cwd;
  std::optional<std::vector<std::string>> env;  // "KEY=value"; unset = inherit ours
  StdioSpec stdio[3];
  bool newProcessGroup = true;  // so the caller can signal the child's whole group
};

struct Child {
  int pid = 0;
  intptr_t handle = 0;  // Windows process HANDLE, kept open until reaped; unused on POSIX
};

struct ExitStatus {
  std::optional<int> code;    // exit code, if it exited
  std::optional<int> signal;  // signal number, if a signal ended it (POSIX)
};

class SpawnError : public std::runtime_error {
 public:
  SpawnError(int err, std::string code, std::string syscall, const std::string& msg)
      : std::runtime_error(msg), err(err), code(std::move(code)), syscall(std::move(syscall)) {}
  int err;            // errno (POSIX) or GetLastError (Windows)
  std::string code;   // "ENOENT", like Node's errors
  std::string syscall;
};

Child spawnGuarded(const SpawnRequest&);  // throws SpawnError

// Blocks until the child has exited, without reaping it: until reapExit, the pid stays taken
// (a zombie, or an open handle on Windows), so a kill() racing with the exit can never hit a
// new process that reused the pid.
void waitForExit(const Child&);
ExitStatus reapExit(const Child&);  // call once, after waitForExit

const char* guardKind();  // "pdeathsig" | "kqueue-watcher" | "job-object"

}  // namespace strata
