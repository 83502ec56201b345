// A shared library opened at call time (dlopen / LoadLibrary), so that no GPU runtime is a
// link-time dependency and a missing one means "backend absent".
#pragma once

#include <string>
#include <vector>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace strata {

class DynLib {
 public:
  // Tries each candidate in order. On failure returns false and sets `error` to the loader's
  // message for the first candidate (the one a user would recognise).
  bool open(const std::vector<std::string>& candidates, std::string* error) {
    std::string first;
    for (const auto& c : candidates) {
      if (c.empty()) continue;
      std::string err;
      if (openOne(c, &err)) {
        path_ = c;
        return true;
      }
      if (first.empty()) first = err;
    }
    if (error) *error = first.empty() ? "no library candidates" : first;
    return false;
  }

  // Looks up a symbol into a function pointer; false when missing.
  template <class F>
  bool sym(const char* name, F* out) const {
    void* p = rawSym(name);
    *out = reinterpret_cast<F>(p);
    return p != nullptr;
  }

  const std::string& path() const { return path_; }

  // Never closed on purpose: GPU runtimes start threads and register atexit handlers, and
  // unloading a library under them is a known way to crash at process exit.

 private:
#ifdef _WIN32
  bool openOne(const std::string& name, std::string* err) {
    std::wstring w = widen(name);
    bool hasDir = name.find_first_of("\\/") != std::string::npos;
    // System32 and the application directory only: a DLL with a GPU runtime's name dropped in
    // the current directory (a cloned repo, say) must never be loaded.
    DWORD flags = hasDir ? (LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_DEFAULT_DIRS)
                         : LOAD_LIBRARY_SEARCH_DEFAULT_DIRS;
    handle_ = LoadLibraryExW(w.c_str(), nullptr, flags);
    if (!handle_) {
      *err = name + ": LoadLibrary error " + std::to_string(GetLastError());
      return false;
    }
    return true;
  }
  void* rawSym(const char* name) const {
    return handle_ ? reinterpret_cast<void*>(GetProcAddress(handle_, name)) : nullptr;
  }
  static std::wstring widen(const std::string& s) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s.c_str(), -1, nullptr, 0);
    std::wstring w(n > 0 ? n - 1 : 0, L'\0');
    if (n > 1) MultiByteToWideChar(CP_UTF8, 0, s.c_str(), -1, &w[0], n);
    return w;
  }
  HMODULE handle_ = nullptr;
#else
  bool openOne(const std::string& name, std::string* err) {
    // RTLD_LOCAL: a fake or second copy of a runtime must not satisfy other libraries' symbols.
    handle_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* e = dlerror();
      *err = e ? e : (name + ": dlopen failed");
      return false;
    }
    return true;
  }
  void* rawSym(const char* name) const { return handle_ ? dlsym(handle_, name) : nullptr; }
  void* handle_ = nullptr;
#endif
  std::string path_;
};

}  // namespace strata
