// FAKE libamdhip64.so (test only, not AMD's HIP runtime): injects HIP answers this GPU-less machine cannot produce.
//
// Device 0: a Strix Halo iGPU (gfx1151, integrated). Device 1: an RX 7900 XTX (gfx1100).
// The properties calls imitate the ROCm trap: with ROCm 6+ (default), the versioned
// hipGetDevicePropertiesR0600 puts gcnArchName at its R0600 offset while the legacy
// "hipGetDeviceProperties" symbol fills the old R0000 layout, here with a wrong ISA, so a probe
// that binds the legacy name reports the wrong architecture. -DFAKE_ROCM5 builds a ROCm 5
// runtime: no R0600 symbol, legacy layout, right ISA. -DFAKE_INIT_RESULT sets hipInit's result.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef FAKE_INIT_RESULT
#define FAKE_INIT_RESULT 0
#endif

typedef int hipError_t;

struct dev {
  const char* name;
  const char* bus;
  const char* arch;
  size_t total, free;
  int integrated;
};
static const struct dev devs[2] = {
    {"Radeon 8060S Graphics", "0000:C5:00.0", "gfx1151", 68719476736ULL, 60000000000ULL, 1},
    {"AMD Radeon RX 7900 XTX", "0000:03:00.0", "gfx1100:sramecc-:xnack-", 25753026560ULL, 25000000000ULL, 0},
};
static int current;

hipError_t hipInit(unsigned f) { (void)f; return FAKE_INIT_RESULT; }
hipError_t hipGetDeviceCount(int* n) { *n = 2; return 0; }
hipError_t hipRuntimeGetVersion(int* v) {
#ifdef FAKE_ROCM5
  *v = 50731921;
#else
  *v = 60443483;
#endif
  return 0;
}
hipError_t hipDeviceGetName(char* buf, int len, int d) {
  if (d < 0 || d > 1) return 101;
  snprintf(buf, (size_t)len, "%s", devs[d].name);
  return 0;
}
hipError_t hipDeviceTotalMem(size_t* b, int d) {
  if (d < 0 || d > 1) return 101;
  *b = devs[d].total;
  return 0;
}
hipError_t hipDeviceGetAttribute(int* v, int attr, int d) {
  if (d < 0 || d > 1) return 101;
  if (attr == 16) {  // hipDeviceAttributeIntegrated
    *v = devs[d].integrated;
    return 0;
  }
  return 1;  // hipErrorInvalidValue: nothing else may be relied on
}
hipError_t hipDeviceGetPCIBusId(char* buf, int len, int d) {
  if (d < 0 || d > 1) return 101;
  snprintf(buf, (size_t)len, "%s", devs[d].bus);
  return 0;
}
hipError_t hipSetDevice(int d) {
  if (d < 0 || d > 1) return 101;
  current = d;
  return 0;
}
hipError_t hipMemGetInfo(size_t* f, size_t* t) {
  *f = devs[current].free;
  *t = devs[current].total;
  return 0;
}
const char* hipGetErrorName(hipError_t e) {
  switch (e) {
    case 100: return "hipErrorNoDevice";
    case 101: return "hipErrorInvalidDevice";
    default: return "hipErrorUnknown";
  }
}

// Offsets as in the real layouts: R0000 (ROCm <= 5) and R0600 (ROCm >= 6).
static void fill(unsigned char* p, int d, size_t archOffset, size_t size, const char* arch) {
  memset(p, 0, size);
  snprintf((char*)p, 256, "%s", devs[d].name);
  // A decoy right after the name (R0600 puts the UUID there): looks like "gfx" but is no ISA.
  memcpy(p + 256, "gfxZ\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 16);
  snprintf((char*)p + archOffset, 256, "%s", arch);
}
hipError_t hipGetDeviceProperties(void* p, int d) {  // legacy R0000 entry point
  if (d < 0 || d > 1) return 101;
#ifdef FAKE_ROCM5
  fill((unsigned char*)p, d, 396, 792, devs[d].arch);
#else
  fill((unsigned char*)p, d, 396, 792, "gfx906");  // what a wrong binding would report
#endif
  return 0;
}
#ifndef FAKE_ROCM5
hipError_t hipGetDevicePropertiesR0600(void* p, int d) {
  if (d < 0 || d > 1) return 101;
  fill((unsigned char*)p, d, 1160, 1480, devs[d].arch);
  return 0;
}
#endif
