// AMD GPUs through the HIP runtime (libamdhip64 on Linux, amdhip64_N.dll on Windows).
//
// hipDeviceProp_t is the trap: its layout changed in ROCm 6 (hipDeviceProp_tR0600) and the
// plain symbol "hipGetDeviceProperties" that dlsym finds is the legacy R0000 entry point, while
// C code compiled against ROCm 6 headers reaches R0600 through a macro. So everything that has
// its own call is read through that call (hipDeviceGetName, hipDeviceTotalMem,
// hipDeviceGetPCIBusId, hipMemGetInfo, hipDeviceGetAttribute), and the properties struct is used
// for the one field with no other source, gcnArchName: we call the versioned entry point when
// the library exports it, into a buffer far larger than any layout, and look for the arch
// string itself ("gfx" + hex digits, NUL- or ':'-terminated) instead of trusting an offset.
#include <cstring>
#include <string>
#include <vector>

#include "gpu_runtime.h"

namespace strata {
namespace {

using hipError_t = int;
constexpr hipError_t hipSuccess = 0;
constexpr hipError_t hipErrorNoDevice = 100;
constexpr hipError_t hipErrorInsufficientDriver = 35;
// hipDeviceAttributeIntegrated in the enum ROCm 5.0 renumbered; ROCm 6 and 7 kept the numbers
// (retired entries became hipDeviceAttributeUnusedN rather than being removed).
constexpr int ATTR_INTEGRATED = 16;
constexpr int HIP_VERSION_5_0 = 50000000;  // hipRuntimeGetVersion: major*1e7 + minor*1e5 + patch

struct Hip {
  hipError_t (*init)(unsigned) = nullptr;
  hipError_t (*getDeviceCount)(int*) = nullptr;
  hipError_t (*deviceGetName)(char*, int, int) = nullptr;
  hipError_t (*deviceTotalMem)(size_t*, int) = nullptr;
  hipError_t (*deviceGetAttribute)(int*, int, int) = nullptr;
  hipError_t (*deviceGetPCIBusId)(char*, int, int) = nullptr;
  hipError_t (*runtimeGetVersion)(int*) = nullptr;
  hipError_t (*setDevice)(int) = nullptr;
  hipError_t (*memGetInfo)(size_t*, size_t*) = nullptr;
  hipError_t (*getProperties)(void*, int) = nullptr;
  const char* (*getErrorName)(hipError_t) = nullptr;

  std::string err(hipError_t r) const {
    const char* n = getErrorName ? getErrorName(r) : nullptr;
    return n ? std::string(n) : "hipError_t " + std::to_string(r);
  }
};

std::vector<std::string> candidates(const ProbeOptions& o) {
  if (!o.hipLib.empty()) return {o.hipLib};
#ifdef _WIN32
  std::vector<std::string> c;
  std::string hipPath = envOr("HIP_PATH", "");
  for (const char* n : {"amdhip64_7.dll", "amdhip64_6.dll", "amdhip64.dll"}) {
    if (!hipPath.empty()) c.push_back(hipPath + "\\bin\\" + n);
    c.push_back(n);  // the AMD display driver installs these into System32
  }
  return c;
#else
  std::string rocm = envOr("ROCM_PATH", "/opt/rocm");
  return {"libamdhip64.so", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5",
          rocm + "/lib/libamdhip64.so"};
#endif
}

bool isHex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Finds "gfxNNNN" in a filled hipDeviceProp_t of unknown layout. The other fields are numbers,
// flags, UUID/LUID bytes and `name`; `name` (the first 256 bytes in every layout) is skipped
// because it is the one text a vendor could fill with anything.
std::string findGcnArch(const unsigned char* buf, size_t size) {
  for (size_t i = 256; i + 5 < size; ++i) {
    if (buf[i] != 'g' || buf[i + 1] != 'f' || buf[i + 2] != 'x') continue;
    size_t j = i + 3;
    while (j < size && isHex(buf[j])) ++j;
    size_t digits = j - (i + 3);
    if (digits < 3 || digits > 5 || j >= size) continue;
    if (buf[j] != 0 && buf[j] != ':') continue;
    return std::string(reinterpret_cast<const char*>(buf + i), j - i);  // ":sramecc+:xnack-" dropped
  }
  return "";
}

}  // namespace

void probeHip(const ProbeOptions& o, std::vector<Device>& out, BackendStatus& st) {
  DynLib lib;
  if (!runtimeExistsHere(o.hipLib, "HIP", st) || !openRuntime(lib, candidates(o), st)) return;

  Hip h;
  lib.sym("hipGetErrorName", &h.getErrorName);
  lib.sym("hipRuntimeGetVersion", &h.runtimeGetVersion);
  lib.sym("hipDeviceGetPCIBusId", &h.deviceGetPCIBusId);
  lib.sym("hipDeviceGetAttribute", &h.deviceGetAttribute);
  lib.sym("hipSetDevice", &h.setDevice);
  lib.sym("hipMemGetInfo", &h.memGetInfo);
  if (!lib.sym("hipGetDevicePropertiesR0600", &h.getProperties)) lib.sym("hipGetDeviceProperties", &h.getProperties);
  if (!lib.sym("hipInit", &h.init) || !lib.sym("hipGetDeviceCount", &h.getDeviceCount) ||
      !lib.sym("hipDeviceGetName", &h.deviceGetName) || !lib.sym("hipDeviceTotalMem", &h.deviceTotalMem)) {
    fail(st, "error", lib.path() + " lacks a required HIP function");
    return;
  }

  int version = 0;
  if (h.runtimeGetVersion && h.runtimeGetVersion(&version) == hipSuccess && version > 0) {
    st.version = std::to_string(version / 10000000) + "." + std::to_string((version / 100000) % 100) + "." +
                 std::to_string(version % 100000);
  }

  hipError_t r = h.init(0);
  if (r == hipErrorNoDevice || r == hipErrorInsufficientDriver) {
    fail(st, "absent", "HIP runtime present, but " + h.err(r) + " (no usable AMD GPU or amdgpu/KFD driver)");
    return;
  }
  if (r != hipSuccess) {
    fail(st, "error", "hipInit: " + h.err(r));
    return;
  }
  int count = 0;
  r = h.getDeviceCount(&count);
  if (r == hipErrorNoDevice) count = 0;
  else if (r != hipSuccess) {
    fail(st, "error", "hipGetDeviceCount: " + h.err(r));
    return;
  }

  DeviceNotes notes;
  // Far larger than any hipDeviceProp_t (R0600 is about 1.5 KB): a future, larger layout still
  // fits, and the tail stays zero so the scan stops.
  std::vector<unsigned char> props(64 * 1024);
  for (int i = 0; i < count; ++i) {
    Device d = gpuDevice("hip", i, 0x1002, st.version);
    readNameMemoryBus(d, i, h.deviceGetName, h.deviceTotalMem, h.deviceGetPCIBusId);

    if (h.deviceGetAttribute && version >= HIP_VERSION_5_0) {
      int integrated = 0;
      if (h.deviceGetAttribute(&integrated, ATTR_INTEGRATED, i) == hipSuccess) d.integrated = integrated != 0;
    }

    if (h.getProperties) {
      std::fill(props.begin(), props.end(), 0);
      if (h.getProperties(props.data(), i) == hipSuccess) d.architecture = findGcnArch(props.data(), props.size());
    }

    // hipMemGetInfo reports on the current device. It brings up HIP's context for the device,
    // which costs a little memory on it for the life of this process; there is no context-free
    // query in HIP (amdgpu sysfs, probed separately, is the context-free view on Linux).
    if (h.setDevice && h.memGetInfo && (r = h.setDevice(i)) == hipSuccess) {
      size_t f = 0, t = 0;
      if ((r = h.memGetInfo(&f, &t)) == hipSuccess) {
        d.freeBytes = f;
        d.budgetBytes = f;
        d.memorySource = "hipMemGetInfo";
      }
    }
    if (!d.freeBytes) notes.add(i, "free memory unknown (" + h.err(r) + ")");
    out.push_back(d);
  }
  st.detail = notes.detail(count);
}

}  // namespace strata
