// Child-lifetime guard for Windows. See guard.h.
//
// Every child goes into one job object, created on first use with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE. Only this process holds a handle to it and never closes it;
// when the process ends, however it ends (TerminateProcess and crashes included), the kernel
// closes the handle and kills everything in the job. The child starts suspended and runs only
// once it is inside the job, so it cannot start anything outside it first.
#include "guard.h"

#include <windows.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cwchar>
#include <string>
#include <vector>

namespace strata {
namespace {

std::wstring widen(const std::string& s) {
  if (s.empty()) return std::wstring();
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

std::string message(DWORD e) {
  wchar_t* buf = nullptr;
  DWORD n = FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0,
                           reinterpret_cast<wchar_t*>(&buf), 0, nullptr);
  std::string out;
  if (n && buf) {
    int len = WideCharToMultiByte(CP_UTF8, 0, buf, static_cast<int>(n), nullptr, 0, nullptr, nullptr);
    out.resize(static_cast<size_t>(len));
    WideCharToMultiByte(CP_UTF8, 0, buf, static_cast<int>(n), &out[0], len, nullptr, nullptr);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  }
  if (buf) LocalFree(buf);
  return out.empty() ? "Windows error " + std::to_string(e) : out;
}

// Node-style codes for the errors a caller can act on.
std::string codeFor(DWORD e) {
  switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_DIRECTORY: return "ENOENT";
    case ERROR_ACCESS_DENIED: return "EACCES";
    case ERROR_BAD_EXE_FORMAT: return "ENOEXEC";
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return "ENOMEM";
    case ERROR_INVALID_HANDLE: return "EBADF";
    default: return "EWIN" + std::to_string(e);
  }
}

SpawnError lastError(const std::string& syscall, const std::string& what) {
  DWORD e = GetLastError();
  return SpawnError(static_cast<int>(e), codeFor(e), syscall, what + ": " + message(e));
}

HANDLE theJob() {
  static HANDLE job = [] {
    HANDLE j = CreateJobObjectW(nullptr, nullptr);
    if (!j) return static_cast<HANDLE>(nullptr);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION info{};
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(j, JobObjectExtendedLimitInformation, &info, sizeof info)) {
      CloseHandle(j);
      return static_cast<HANDLE>(nullptr);
    }
    return j;
  }();
  return job;
}

// The inverse of CommandLineToArgvW (the MSVC runtime's rules): backslashes are literal except
// before a quote, so they double there and before the closing quote.
void appendArg(std::wstring& cmd, const std::wstring& arg) {
  if (!cmd.empty()) cmd += L' ';
  if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
    cmd += arg;
    return;
  }
  cmd += L'"';
  for (auto it = arg.begin();; ++it) {
    size_t backslashes = 0;
    while (it != arg.end() && *it == L'\\') {
      ++it;
      ++backslashes;
    }
    if (it == arg.end()) {
      cmd.append(backslashes * 2, L'\\');
      break;
    }
    if (*it == L'"') {
      cmd.append(backslashes * 2 + 1, L'\\');
      cmd += L'"';
    } else {
      cmd.append(backslashes, L'\\');
      cmd += *it;
    }
  }
  cmd += L'"';
}

bool hasVar(const std::vector<std::wstring>& vars, const wchar_t* name) {
  size_t n = wcslen(name);
  for (const auto& v : vars) {
    if (v.size() > n && v[n] == L'=' && CompareStringOrdinal(v.c_str(), static_cast<int>(n), name, static_cast<int>(n), TRUE) == CSTR_EQUAL)
      return true;
  }
  return false;
}

// CreateProcess wants the block sorted case-insensitively. Programs misbehave without SYSTEMROOT
// (Winsock, crypto), so like libuv we add it and its companions from ours when missing.
std::vector<wchar_t> envBlock(const std::vector<std::string>& env) {
  std::vector<std::wstring> vars;
  for (const auto& e : env) vars.push_back(widen(e));
  for (const wchar_t* k : {L"SYSTEMROOT", L"SYSTEMDRIVE", L"TEMP"}) {
    if (hasVar(vars, k)) continue;
    wchar_t buf[MAX_PATH];
    DWORD n = GetEnvironmentVariableW(k, buf, MAX_PATH);
    if (n > 0 && n < MAX_PATH) vars.push_back(std::wstring(k) + L"=" + buf);
  }
  std::sort(vars.begin(), vars.end(), [](const std::wstring& a, const std::wstring& b) {
    return CompareStringOrdinal(a.c_str(), -1, b.c_str(), -1, TRUE) == CSTR_LESS_THAN;
  });
  std::vector<wchar_t> block;
  for (const auto& v : vars) {
    block.insert(block.end(), v.begin(), v.end());
    block.push_back(L'\0');
  }
  block.push_back(L'\0');
  if (vars.empty()) block.push_back(L'\0');
  return block;
}

class Handles {
 public:
  ~Handles() {
    for (HANDLE h : owned_) CloseHandle(h);
  }
  HANDLE own(HANDLE h) {
    owned_.push_back(h);
    return h;
  }

 private:
  std::vector<HANDLE> owned_;
};

HANDLE stdioHandle(const StdioSpec& s, int slot, Handles& handles) {
  SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};  // inheritable
  if (s.kind == StdioSpec::Fd) {
    // Only our own 0/1/2 can be named: Node's other descriptors belong to its C runtime, whose
    // table this library cannot read. Callers pass a path instead.
    DWORD which = s.fd == 0 ? STD_INPUT_HANDLE : s.fd == 1 ? STD_OUTPUT_HANDLE : s.fd == 2 ? STD_ERROR_HANDLE : 0;
    if (!which) throw SpawnError(ERROR_INVALID_HANDLE, "EBADF", "spawn", "on Windows only descriptors 0, 1 and 2 can be passed; give a file path");
    HANDLE src = GetStdHandle(which);
    if (src && src != INVALID_HANDLE_VALUE) {
      HANDLE dup = nullptr;
      if (!DuplicateHandle(GetCurrentProcess(), src, GetCurrentProcess(), &dup, 0, TRUE, DUPLICATE_SAME_ACCESS))
        throw lastError("DuplicateHandle", "cannot pass on a standard handle");
      return handles.own(dup);
    }
    // No console (a GUI parent): fall through to NUL.
  }
  if (s.kind == StdioSpec::Connect) {
    // The client end of a named pipe Node is listening on.
    std::wstring pipe = widen(s.path);
    for (int attempt = 0; attempt < 2; ++attempt) {
      HANDLE h = CreateFileW(pipe.c_str(), GENERIC_READ | GENERIC_WRITE, 0, &sa, OPEN_EXISTING, 0, nullptr);
      if (h != INVALID_HANDLE_VALUE) return handles.own(h);
      if (GetLastError() != ERROR_PIPE_BUSY || !WaitNamedPipeW(pipe.c_str(), 2000)) break;
    }
    throw lastError("connect", "cannot connect to " + s.path);
  }
  std::wstring path = s.kind == StdioSpec::Path ? widen(s.path) : L"NUL";
  // FILE_APPEND_DATA without FILE_WRITE_DATA: every write lands at the end, like O_APPEND.
  DWORD access = slot == 0 ? GENERIC_READ : (FILE_APPEND_DATA | SYNCHRONIZE);
  HANDLE h = CreateFileW(path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                         slot == 0 ? OPEN_EXISTING : OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) throw lastError("open", "cannot open " + (s.kind == StdioSpec::Path ? s.path : std::string("NUL")));
  return handles.own(h);
}

bool endsWithNoCase(const std::string& s, const char* suffix) {
  size_t n = strlen(suffix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (tolower(static_cast<unsigned char>(s[s.size() - n + i])) != suffix[i]) return false;
  return true;
}

}  // namespace

const char* guardKind() { return "job-object"; }

Child spawnGuarded(const SpawnRequest& req) {
  // CreateProcess runs .bat/.cmd through cmd.exe, which re-parses the arguments by its own rules
  // (the "BatBadBut" class of injection); nothing Strata starts is a script.
  if (endsWithNoCase(req.file, ".bat") || endsWithNoCase(req.file, ".cmd"))
    throw SpawnError(ERROR_BAD_EXE_FORMAT, "ENOEXEC", "spawn", "batch files cannot be started guarded: " + req.file);
  HANDLE job = theJob();
  if (!job) throw lastError("CreateJobObject", "cannot create the job object that ties children to this process");

  Handles handles;
  HANDLE std3[3];
  for (int i = 0; i < 3; ++i) std3[i] = stdioHandle(req.stdio[i], i, handles);

  std::wstring app = widen(req.file);
  std::wstring cmd;
  appendArg(cmd, app);
  for (const auto& a : req.args) appendArg(cmd, widen(a));
  std::vector<wchar_t> env;
  if (req.env) env = envBlock(*req.env);
  std::wstring cwd = req.cwd ? widen(*req.cwd) : std::wstring();

  // Inherit exactly these three handles, not every inheritable handle Node happens to hold.
  std::vector<HANDLE> inherit;
  for (HANDLE h : std3)
    if (std::find(inherit.begin(), inherit.end(), h) == inherit.end()) inherit.push_back(h);
  SIZE_T size = 0;
  InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
  std::vector<unsigned char> attrBuf(size);
  auto* attrs = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(attrBuf.data());
  if (!InitializeProcThreadAttributeList(attrs, 1, 0, &size)) throw lastError("InitializeProcThreadAttributeList", "spawn " + req.file);
  if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit.data(), inherit.size() * sizeof(HANDLE), nullptr, nullptr)) {
    DeleteProcThreadAttributeList(attrs);
    throw lastError("UpdateProcThreadAttribute", "spawn " + req.file);
  }

  STARTUPINFOEXW si{};
  si.StartupInfo.cb = sizeof si;
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = std3[0];
  si.StartupInfo.hStdOutput = std3[1];
  si.StartupInfo.hStdError = std3[2];
  si.lpAttributeList = attrs;
  DWORD flags = CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT | CREATE_NO_WINDOW;
  if (req.newProcessGroup) flags |= CREATE_NEW_PROCESS_GROUP;

  PROCESS_INFORMATION pi{};
  BOOL ok = CreateProcessW(app.c_str(), &cmd[0], nullptr, nullptr, TRUE, flags, req.env ? env.data() : nullptr,
                           req.cwd ? cwd.c_str() : nullptr, &si.StartupInfo, &pi);
  DWORD createErr = GetLastError();
  DeleteProcThreadAttributeList(attrs);
  if (!ok) {
    SetLastError(createErr);
    throw lastError("CreateProcess", "spawn " + req.file + " " + codeFor(createErr));
  }
  if (!AssignProcessToJobObject(job, pi.hProcess)) {
    SpawnError e = lastError("AssignProcessToJobObject", "cannot put " + req.file + " into the job object");
    TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    throw e;
  }
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  return Child{static_cast<int>(pi.dwProcessId), reinterpret_cast<intptr_t>(pi.hProcess)};
}

// The open process handle keeps the pid from being reused until reapExit closes it.
void waitForExit(const Child& c) { WaitForSingleObject(reinterpret_cast<HANDLE>(c.handle), INFINITE); }

ExitStatus reapExit(const Child& c) {
  ExitStatus s;
  DWORD code = 0;
  HANDLE h = reinterpret_cast<HANDLE>(c.handle);
  if (GetExitCodeProcess(h, &code)) s.code = static_cast<int>(code);
  CloseHandle(h);
  return s;
}

}  // namespace strata
