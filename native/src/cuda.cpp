// NVIDIA GPUs through the CUDA driver API (libcuda / nvcuda.dll), free memory through NVML.
//
// Why NVML for free memory: cuMemGetInfo needs a current context, and creating one costs a few
// hundred MB of the very GPU memory we are measuring, takes 100+ ms, and on a GPU in
// exclusive-process mode would fail or lock llama-server out. NVML (what nvidia-smi uses) reads
// the same counters without a context. Only where NVML is missing or says "not supported"
// (Jetson-style integrated parts, WSL builds without it) do we fall back to the device's primary
// context, retained and released around a single cuMemGetInfo, and never on a device whose
// compute mode forbids or monopolises contexts.
#include <cstdio>
#include <string>

#include "gpu_runtime.h"

namespace strata {
namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st*;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr int ATTR_INTEGRATED = 18;
constexpr int ATTR_COMPUTE_MODE = 20;
constexpr int ATTR_CC_MAJOR = 75;
constexpr int ATTR_CC_MINOR = 76;
constexpr int COMPUTEMODE_PROHIBITED = 2;
constexpr int COMPUTEMODE_EXCLUSIVE_PROCESS = 3;

struct Cuda {
  CUresult (*init)(unsigned) = nullptr;
  CUresult (*driverGetVersion)(int*) = nullptr;
  CUresult (*deviceGetCount)(int*) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*deviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*deviceTotalMem)(size_t*, CUdevice) = nullptr;
  CUresult (*deviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*deviceGetPCIBusId)(char*, int, CUdevice) = nullptr;
  CUresult (*primaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*primaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*ctxPush)(CUcontext) = nullptr;
  CUresult (*ctxPop)(CUcontext*) = nullptr;
  CUresult (*memGetInfo)(size_t*, size_t*) = nullptr;
  CUresult (*getErrorName)(CUresult, const char**) = nullptr;

  std::string err(CUresult r) const {
    const char* name = nullptr;
    if (getErrorName && getErrorName(r, &name) == CUDA_SUCCESS && name) return name;
    return "CUresult " + std::to_string(r);
  }
};

using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};

struct Nvml {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*byPciBusId)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*memoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  bool ready = false;
  std::string why;  // reason it is not ready, for the status line
};

std::vector<std::string> cudaCandidates(const ProbeOptions& o) {
  if (!o.cudaLib.empty()) return {o.cudaLib};
#ifdef _WIN32
  return {"nvcuda.dll"};
#else
  return {"libcuda.so.1", "libcuda.so"};
#endif
}

std::vector<std::string> nvmlCandidates(const ProbeOptions& o) {
  if (!o.nvmlLib.empty()) return {o.nvmlLib};
#ifdef _WIN32
  std::vector<std::string> c = {"nvml.dll"};
  std::string pf = envOr("ProgramW6432", envOr("ProgramFiles", ""));
  if (!pf.empty()) c.push_back(pf + "\\NVIDIA Corporation\\NVSMI\\nvml.dll");
  return c;
#else
  return {"libnvidia-ml.so.1", "libnvidia-ml.so"};
#endif
}

void openNvml(const ProbeOptions& o, Nvml& n) {
  DynLib lib;  // dlopen again returns the already loaded library; it is never closed (DynLib)
  std::string error;
  if (!lib.open(nvmlCandidates(o), &error)) {
    n.why = "NVML not loaded (" + error + ")";
    return;
  }
  // Each probe initialises and shuts NVML down again; NVML reference-counts init/shutdown.
  if (!lib.sym("nvmlInit_v2", &n.init) || !lib.sym("nvmlShutdown", &n.shutdown) ||
      !lib.sym("nvmlDeviceGetHandleByPciBusId_v2", &n.byPciBusId) ||
      !lib.sym("nvmlDeviceGetMemoryInfo", &n.memoryInfo)) {
    n.why = "NVML lacks the functions needed";
    return;
  }
  nvmlReturn_t r = n.init();
  if (r != 0) {
    n.why = "nvmlInit failed (" + std::to_string(r) + ")";
    return;
  }
  n.ready = true;
}

// Free bytes through the primary context; false if that is not allowed or fails.
bool contextFree(const Cuda& cu, CUdevice dev, int computeMode, uint64_t* freeBytes, std::string* why) {
  if (computeMode == COMPUTEMODE_PROHIBITED || computeMode == COMPUTEMODE_EXCLUSIVE_PROCESS) {
    *why = "compute mode forbids a probe context";
    return false;
  }
  if (!cu.primaryCtxRetain || !cu.primaryCtxRelease || !cu.ctxPush || !cu.ctxPop || !cu.memGetInfo) {
    *why = "driver lacks the context functions";
    return false;
  }
  CUcontext ctx = nullptr;
  CUresult r = cu.primaryCtxRetain(&ctx, dev);
  if (r != CUDA_SUCCESS) {
    *why = "cuDevicePrimaryCtxRetain: " + cu.err(r);
    return false;
  }
  bool ok = false;
  if ((r = cu.ctxPush(ctx)) == CUDA_SUCCESS) {
    size_t f = 0, t = 0;
    r = cu.memGetInfo(&f, &t);
    ok = r == CUDA_SUCCESS;
    if (ok) *freeBytes = f;
    else *why = "cuMemGetInfo: " + cu.err(r);
    CUcontext popped = nullptr;
    cu.ctxPop(&popped);
  } else {
    *why = "cuCtxPushCurrent: " + cu.err(r);
  }
  cu.primaryCtxRelease(dev);
  return ok;
}

}  // namespace

void probeCuda(const ProbeOptions& o, std::vector<Device>& out, BackendStatus& st) {
  DynLib lib;
  if (!runtimeExistsHere(o.cudaLib, "CUDA", st) || !openRuntime(lib, cudaCandidates(o), st)) return;

  Cuda cu;
  lib.sym("cuGetErrorName", &cu.getErrorName);
  lib.sym("cuDriverGetVersion", &cu.driverGetVersion);
  lib.sym("cuDeviceGetPCIBusId", &cu.deviceGetPCIBusId);
  lib.sym("cuDevicePrimaryCtxRetain", &cu.primaryCtxRetain);
  if (!lib.sym("cuDevicePrimaryCtxRelease_v2", &cu.primaryCtxRelease)) lib.sym("cuDevicePrimaryCtxRelease", &cu.primaryCtxRelease);
  lib.sym("cuCtxPushCurrent_v2", &cu.ctxPush);
  lib.sym("cuCtxPopCurrent_v2", &cu.ctxPop);
  lib.sym("cuMemGetInfo_v2", &cu.memGetInfo);
  if (!lib.sym("cuInit", &cu.init) || !lib.sym("cuDeviceGetCount", &cu.deviceGetCount) ||
      !lib.sym("cuDeviceGet", &cu.deviceGet) || !lib.sym("cuDeviceGetName", &cu.deviceGetName) ||
      !lib.sym("cuDeviceTotalMem_v2", &cu.deviceTotalMem) || !lib.sym("cuDeviceGetAttribute", &cu.deviceGetAttribute)) {
    fail(st, "error", lib.path() + " lacks a required CUDA driver function (driver too old?)");
    return;
  }

  int version = 0;
  if (cu.driverGetVersion && cu.driverGetVersion(&version) == CUDA_SUCCESS && version > 0) {
    st.version = std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
  }

  CUresult r = cu.init(0);
  if (r == CUDA_ERROR_NO_DEVICE) {
    fail(st, "absent", "the CUDA driver reports no device");
    return;
  }
  if (r != CUDA_SUCCESS) {
    fail(st, "error", "cuInit: " + cu.err(r) +
                          (r == CUDA_ERROR_STUB_LIBRARY ? " (the toolkit's stub libcuda is on the library path, not the driver's)" : ""));
    return;
  }
  int count = 0;
  if ((r = cu.deviceGetCount(&count)) != CUDA_SUCCESS) {
    fail(st, "error", "cuDeviceGetCount: " + cu.err(r));
    return;
  }

  Nvml nvml;
  if (count > 0) openNvml(o, nvml);

  DeviceNotes notes;
  for (int i = 0; i < count; ++i) {
    CUdevice dev = 0;
    if ((r = cu.deviceGet(&dev, i)) != CUDA_SUCCESS) {
      notes.add(i, "cuDeviceGet: " + cu.err(r));
      continue;
    }
    Device d = gpuDevice("cuda", i, 0x10de, st.version);
    std::string bus = readNameMemoryBus(d, dev, cu.deviceGetName, cu.deviceTotalMem, cu.deviceGetPCIBusId);

    int major = 0, minor = 0, integrated = 0, mode = 0;
    if (cu.deviceGetAttribute(&major, ATTR_CC_MAJOR, dev) == CUDA_SUCCESS &&
        cu.deviceGetAttribute(&minor, ATTR_CC_MINOR, dev) == CUDA_SUCCESS) {
      d.architecture = "sm_" + std::to_string(major) + std::to_string(minor);
    }
    if (cu.deviceGetAttribute(&integrated, ATTR_INTEGRATED, dev) == CUDA_SUCCESS) d.integrated = integrated != 0;
    cu.deviceGetAttribute(&mode, ATTR_COMPUTE_MODE, dev);

    std::string why;
    if (nvml.ready && !bus.empty()) {
      nvmlDevice_t h = nullptr;
      nvmlMemory_t m{};
      nvmlReturn_t nr = nvml.byPciBusId(bus.c_str(), &h);
      if (nr == 0) nr = nvml.memoryInfo(h, &m);
      if (nr == 0) {
        d.freeBytes = m.free;
        d.memorySource = "nvml";
      } else {
        why = "NVML error " + std::to_string(nr);
      }
    } else {
      why = nvml.ready ? "no PCI bus id for NVML" : nvml.why;
    }
    if (!d.freeBytes) {
      uint64_t f = 0;
      std::string ctxWhy;
      if (contextFree(cu, dev, mode, &f, &ctxWhy)) {
        d.freeBytes = f;
        d.memorySource = "cuda-context";
      } else {
        notes.add(i, "free memory unknown (" + why + "; " + ctxWhy + ")");
      }
    }
    d.budgetBytes = d.freeBytes;
    out.push_back(d);
  }
  if (nvml.ready) nvml.shutdown();
  st.detail = notes.detail(count);
}

}  // namespace strata
