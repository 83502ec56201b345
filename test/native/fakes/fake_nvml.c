// FAKE libnvidia-ml.so.1 (test only, not NVIDIA's NVML): memory answers for the fake libcuda's devices.
// Knows the H100 at 0000:65:00.0; says NOT_SUPPORTED for the integrated part, like NVML on
// Jetson-style devices, so the probe's context fallback is exercised for that one.
#include <string.h>
#include <strings.h>

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

static int inits;

int nvmlInit_v2(void) { inits++; return 0; }
int nvmlShutdown(void) { return inits-- > 0 ? 0 : 1; }
int nvmlDeviceGetHandleByPciBusId_v2(const char* bus, void** h) {
  if (!inits) return 1;  // NVML_ERROR_UNINITIALIZED
  // NVML accepts both the 4- and 8-digit domain forms.
  if (!strcasecmp(bus, "0000:65:00.0") || !strcasecmp(bus, "00000000:65:00.0")) {
    *h = (void*)1;
    return 0;
  }
  if (!strcasecmp(bus, "000F:01:00.0")) return 3;  // NVML_ERROR_NOT_SUPPORTED
  return 6;  // NVML_ERROR_NOT_FOUND
}
int nvmlDeviceGetMemoryInfo(void* h, nvmlMemory_t* m) {
  if (h != (void*)1) return 2;
  m->total = 85520809984ULL;
  m->used = 524288000ULL;
  m->free = m->total - m->used;
  return 0;
}
