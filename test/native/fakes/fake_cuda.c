// FAKE libcuda.so.1 (test only, not NVIDIA's driver): injects CUDA driver answers this GPU-less machine cannot produce.
//
// Two devices: an H100 (discrete, sm_90, NVML knows it) and a GB10-like integrated part
// (sm_121) for which the fake NVML says "not supported", so the probe must fall back to a
// primary context. cuMemGetInfo fails unless a context is current, and releasing a context
// that was never retained fails, so an unbalanced probe shows up as missing numbers.
// Build-time knobs: -DFAKE_INIT_RESULT=<CUresult> for cuInit, -DFAKE_MODE0=<compute mode>,
// -DFAKE_INIT_SLEEP_MS=<ms> for a driver that hangs in cuInit.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#ifndef FAKE_INIT_RESULT
#define FAKE_INIT_RESULT 0
#endif
#ifndef FAKE_MODE0
#define FAKE_MODE0 0
#endif

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;

struct dev {
  const char* name;
  const char* bus;
  size_t total, ctxFree;
  int major, minor, integrated, mode;
};
static const struct dev devs[2] = {
    {"NVIDIA H100 80GB HBM3", "0000:65:00.0", 85520809984ULL, 84200000000ULL, 9, 0, 0, FAKE_MODE0},
    {"NVIDIA GB10", "000F:01:00.0", 128849018880ULL, 100000000000ULL, 12, 1, 1, 0},
};
static int initialized;
static int retained[2];
static intptr_t current;  // 0 = no context, else device handle

// Device handles differ from ordinals, as they may in the real driver.
static const struct dev* get(CUdevice d) { return d == 100 ? &devs[0] : d == 101 ? &devs[1] : NULL; }

CUresult cuInit(unsigned flags) {
  (void)flags;
#ifdef FAKE_INIT_SLEEP_MS
  struct timespec ts = {FAKE_INIT_SLEEP_MS / 1000, (FAKE_INIT_SLEEP_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
#endif
  if (FAKE_INIT_RESULT) return FAKE_INIT_RESULT;
  initialized = 1;
  return 0;
}
CUresult cuDriverGetVersion(int* v) { *v = 12080; return 0; }
CUresult cuDeviceGetCount(int* n) {
  if (!initialized) return 3;  // CUDA_ERROR_NOT_INITIALIZED
  *n = 2;
  return 0;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (ordinal < 0 || ordinal > 1) return 101;
  *d = 100 + ordinal;
  return 0;
}
CUresult cuDeviceGetName(char* buf, int len, CUdevice d) {
  if (!get(d)) return 101;
  snprintf(buf, (size_t)len, "%s", get(d)->name);
  return 0;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  if (!get(d)) return 101;
  *bytes = get(d)->total;
  return 0;
}
CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  const struct dev* x = get(d);
  if (!x) return 101;
  switch (attr) {
    case 75: *v = x->major; return 0;
    case 76: *v = x->minor; return 0;
    case 18: *v = x->integrated; return 0;
    case 20: *v = x->mode; return 0;
    default: return 1;  // CUDA_ERROR_INVALID_VALUE: the probe must not depend on other attributes
  }
}
CUresult cuDeviceGetPCIBusId(char* buf, int len, CUdevice d) {
  if (!get(d)) return 101;
  snprintf(buf, (size_t)len, "%s", get(d)->bus);
  return 0;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice d) {
  if (!get(d)) return 101;
  retained[d - 100]++;
  *c = (CUcontext)(intptr_t)d;
  return 0;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
  if (!get(d) || retained[d - 100] <= 0) return 201;  // CUDA_ERROR_INVALID_CONTEXT
  retained[d - 100]--;
  return 0;
}
CUresult cuCtxPushCurrent_v2(CUcontext c) {
  if (current) return 216;  // this fake keeps a one-deep stack: a missing pop shows up here
  current = (intptr_t)c;
  return 0;
}
CUresult cuCtxPopCurrent_v2(CUcontext* c) {
  if (!current) return 201;
  if (c) *c = (CUcontext)current;
  current = 0;
  return 0;
}
CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* total) {
  const struct dev* x = get((CUdevice)current);
  if (!x) return 201;
  *freeBytes = x->ctxFree;
  *total = x->total;
  return 0;
}
CUresult cuGetErrorName(CUresult r, const char** s) {
  switch (r) {
    case 100: *s = "CUDA_ERROR_NO_DEVICE"; return 0;
    case 201: *s = "CUDA_ERROR_INVALID_CONTEXT"; return 0;
    case 999: *s = "CUDA_ERROR_UNKNOWN"; return 0;
    default: return 1;
  }
}
