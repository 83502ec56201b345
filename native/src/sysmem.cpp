// System RAM and the CPU "device" (llama.cpp's CPU backend and every unified-memory GPU draw on
// the same RAM, which is why the planner must not add them up).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "probe.h"

#ifdef _WIN32
#include <windows.h>
#elif defined(__APPLE__)
#include <mach/mach.h>
#include <sys/sysctl.h>
#include <sys/utsname.h>
#else
#include <sys/utsname.h>
#endif

namespace strata {
namespace {

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  size_t b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

#if !defined(_WIN32)
std::string machine() {
  struct utsname u;
  return uname(&u) == 0 ? std::string(u.machine) : std::string();
}
#endif

}  // namespace

#if defined(_WIN32)

SystemMemory readSystemMemory() {
  SystemMemory m;
  MEMORYSTATUSEX s;
  s.dwLength = sizeof s;
  if (GlobalMemoryStatusEx(&s)) {
    m.totalBytes = s.ullTotalPhys;
    m.availableBytes = s.ullAvailPhys;
    m.source = "GlobalMemoryStatusEx";
  }
  return m;
}

static std::string cpuName() {
  wchar_t buf[256];
  DWORD size = sizeof buf;
  if (RegGetValueW(HKEY_LOCAL_MACHINE, L"HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0",
                   L"ProcessorNameString", RRF_RT_REG_SZ, nullptr, buf, &size) != ERROR_SUCCESS)
    return "CPU";
  char out[512];
  int n = WideCharToMultiByte(CP_UTF8, 0, buf, -1, out, sizeof out, nullptr, nullptr);
  return n > 0 ? trim(out) : std::string("CPU");
}

static std::string cpuArch() {
  SYSTEM_INFO si;
  GetNativeSystemInfo(&si);
  switch (si.wProcessorArchitecture) {
    case PROCESSOR_ARCHITECTURE_AMD64: return "x86_64";
    case PROCESSOR_ARCHITECTURE_ARM64: return "arm64";
    case PROCESSOR_ARCHITECTURE_INTEL: return "x86";
    default: return "";
  }
}

#elif defined(__APPLE__)

SystemMemory readSystemMemory() {
  SystemMemory m;
  uint64_t total = 0;
  size_t len = sizeof total;
  if (sysctlbyname("hw.memsize", &total, &len, nullptr, 0) == 0) m.totalBytes = total;
  // "Available" the way vm_stat users compute it: free + inactive pages. macOS compresses and
  // purges under pressure, so this is a floor rather than an exact figure.
  vm_statistics64_data_t vm;
  mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
  vm_size_t page = 0;
  if (host_page_size(mach_host_self(), &page) == KERN_SUCCESS &&
      host_statistics64(mach_host_self(), HOST_VM_INFO64, reinterpret_cast<host_info64_t>(&vm), &count) == KERN_SUCCESS) {
    m.availableBytes = (static_cast<uint64_t>(vm.free_count) + vm.inactive_count) * page;
  }
  m.source = "sysctl+host_statistics64";
  return m;
}

static std::string cpuName() {
  char buf[256] = {0};
  size_t len = sizeof buf - 1;
  if (sysctlbyname("machdep.cpu.brand_string", buf, &len, nullptr, 0) == 0) return trim(buf);
  return "CPU";
}

static std::string cpuArch() { return machine(); }

#else  // Linux and other Unix with /proc

SystemMemory readSystemMemory() {
  SystemMemory m;
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  bool haveAvail = false;
  uint64_t freeKb = 0, buffersKb = 0, cachedKb = 0;
  while (f >> key >> kb) {
    std::getline(f, unit);  // " kB" or nothing
    if (key == "MemTotal:") m.totalBytes = kb * 1024;
    else if (key == "MemAvailable:") m.availableBytes = kb * 1024, haveAvail = true;
    else if (key == "MemFree:") freeKb = kb;
    else if (key == "Buffers:") buffersKb = kb;
    else if (key == "Cached:") cachedKb = kb;
  }
  // Kernels before 3.14 have no MemAvailable; free + page cache is the classic estimate.
  if (!haveAvail) m.availableBytes = (freeKb + buffersKb + cachedKb) * 1024;
  m.source = m.totalBytes ? "/proc/meminfo" : "";
  return m;
}

static std::string cpuName() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    // x86: "model name"; some ARM kernels: "Hardware" or "Model".
    for (const char* k : {"model name", "Hardware", "Model"}) {
      if (line.compare(0, std::strlen(k), k) == 0) {
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string v = trim(line.substr(colon + 1));
          if (!v.empty()) return v;
        }
      }
    }
  }
  return "CPU";
}

static std::string cpuArch() { return machine(); }

#endif

void probeCpu(const SystemMemory& mem, std::vector<Device>& out, BackendStatus& st) {
  Device d;
  d.backend = "cpu";
  d.name = cpuName();
  d.architecture = cpuArch();
  d.integrated = true;
  d.totalBytes = mem.totalBytes;
  d.freeBytes = mem.availableBytes;
  d.budgetBytes = mem.availableBytes;
  d.memorySource = mem.source;
  out.push_back(d);
  if (!mem.totalBytes) {
    st.status = "error";
    st.detail = "could not read the system memory size";
  }
}

}  // namespace strata
