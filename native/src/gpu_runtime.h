// Building blocks of the probes that open a GPU runtime at run time (cuda.cpp, hip.cpp,
// vulkan.cpp): the status of a backend that is not there or failed, opening its library, the
// head of each device record, the calls CUDA and HIP make in the same shape, and the per-device
// notes that end up in the status detail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dynlib.h"
#include "probe.h"

namespace strata {

// Sets the backend's status ("absent", "error", "unsupported") and why.
inline void fail(BackendStatus& st, const char* status, std::string detail) {
  st.status = status;
  st.detail = std::move(detail);
}

// The runtime exists on this OS: not so for CUDA and HIP on macOS ("unsupported"), unless a
// test names a library (`libOverride`) to drive the code there anyway.
inline bool runtimeExistsHere(const std::string& libOverride, const char* runtime, BackendStatus& st) {
#ifdef __APPLE__
  if (libOverride.empty()) {
    fail(st, "unsupported", std::string(runtime) + " does not exist on macOS");
    return false;
  }
#else
  (void)libOverride;
  (void)runtime;
  (void)st;
#endif
  return true;
}

// Opens the runtime's library (the first candidate that loads) and records which one it is;
// where none loads the backend is "absent", with the loader's message.
inline bool openRuntime(DynLib& lib, const std::vector<std::string>& candidates, BackendStatus& st) {
  std::string error;
  if (!lib.open(candidates, &error)) {
    fail(st, "absent", error);
    return false;
  }
  st.library = lib.path();
  return true;
}

// A device record with what every GPU backend knows first.
inline Device gpuDevice(const char* backend, int index, uint32_t vendorId, const std::string& driverVersion = "") {
  Device d;
  d.backend = backend;
  d.index = index;
  d.vendorId = vendorId;
  d.driverVersion = driverVersion;
  return d;
}

// Name, total memory and PCI bus id, which the CUDA driver API and HIP ask for with calls of
// the same shape (0 = success; `busId` may be missing). Returns the bus id as the runtime wrote
// it (NVML wants it so), "" when unknown; the record gets it normalised.
template <class R, class Dev>
std::string readNameMemoryBus(Device& d, Dev dev, R (*getName)(char*, int, Dev), R (*totalMem)(size_t*, Dev),
                              R (*busId)(char*, int, Dev)) {
  char name[256] = {0};
  if (getName(name, sizeof name - 1, dev) == 0) d.name = name;
  size_t total = 0;
  if (totalMem(&total, dev) == 0) d.totalBytes = total;
  char bus[32] = {0};
  if (busId && busId(bus, sizeof bus - 1, dev) == 0) d.pciBusId = lowerPciId(bus);
  return bus;
}

// What went wrong with single devices ("device 1: free memory unknown (...)"), for the status
// detail, which otherwise just counts the devices.
class DeviceNotes {
 public:
  void add(int index, const std::string& note) { text_ += "device " + std::to_string(index) + ": " + note + "; "; }
  std::string detail(int count) const { return text_.empty() ? countOnly(count) : text_.substr(0, text_.size() - 2); }
  static std::string countOnly(int count) { return std::to_string(count) + " device(s)"; }

 private:
  std::string text_;
};

}  // namespace strata
