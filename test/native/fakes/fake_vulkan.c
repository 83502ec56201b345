// FAKE libvulkan.so.1 (test only, not a Vulkan loader or driver): injects the heap reports of GPUs this GPU-less machine cannot produce.
//
// Device 0: a Strix Halo iGPU as RADV reports it ("AMD Radeon Graphics (RADV GFX1151)",
// integrated): heap 0 is the BIOS carve-out (device-local), heap 1 the GTT pool (host-visible,
// not device-local). Sizes in MiB: -DFAKE_CARVEOUT_MIB (default 512), -DFAKE_GTT_MIB (default
// 112640 = 110 GiB, a raised amdgpu.gttsize), used: -DFAKE_CARVEOUT_USED_MIB, -DFAKE_GTT_USED_MIB.
// Device 1: a discrete RTX 4090 (24 GiB device-local heap + a 64 GiB host heap that llama.cpp
// does not count). Device 2: a CPU (software) device like lavapipe. VK_EXT_memory_budget and
// VK_EXT_pci_bus_info are offered; budget = heap size - FAKE_OTHER_MIB (other processes).
#include <stdint.h>
#include <string.h>

#ifndef FAKE_CARVEOUT_MIB
#define FAKE_CARVEOUT_MIB 512ULL
#endif
#ifndef FAKE_GTT_MIB
#define FAKE_GTT_MIB 112640ULL
#endif
#ifndef FAKE_CARVEOUT_USED_MIB
#define FAKE_CARVEOUT_USED_MIB 100ULL
#endif
#ifndef FAKE_GTT_USED_MIB
#define FAKE_GTT_USED_MIB 1024ULL
#endif
#ifndef FAKE_OTHER_MIB
#define FAKE_OTHER_MIB 0ULL
#endif
#define MIB (1024ULL * 1024ULL)

typedef int32_t VkResult;
typedef void (*PFN)(void);
struct base { int32_t sType; void* pNext; };
struct ext { char name[256]; uint32_t spec; };
struct heap { uint64_t size; uint32_t flags; };
struct memprops { uint32_t typeCount; struct { uint32_t flags, heap; } types[32]; uint32_t heapCount; struct heap heaps[16]; };
struct memprops2 { int32_t sType; void* pNext; struct memprops p; };
struct budget { int32_t sType; void* pNext; uint64_t heapBudget[16]; uint64_t heapUsage[16]; };
struct idprops { int32_t sType; void* pNext; uint8_t dev[16], drv[16], luid[8]; uint32_t mask, luidValid; };
struct pciinfo { int32_t sType; void* pNext; uint32_t domain, bus, device, function; };
struct props { uint32_t api, driver, vendor, device; int32_t type; char name[256]; uint8_t uuid[16]; };
struct props2 { int32_t sType; void* pNext; struct props p; };

static int instance_token;
static int devices[3];

struct fake_dev { const char* name; uint32_t vendor; int32_t type; int heaps; struct heap h[2]; uint64_t used[2]; uint32_t bus; };
static const struct fake_dev fake[3] = {
    {"AMD Radeon Graphics (RADV GFX1151)", 0x1002, 1, 2,
     {{FAKE_CARVEOUT_MIB * MIB, 1}, {FAKE_GTT_MIB * MIB, 0}}, {FAKE_CARVEOUT_USED_MIB * MIB, FAKE_GTT_USED_MIB * MIB}, 0xc5},
    {"NVIDIA GeForce RTX 4090", 0x10de, 2, 2, {{24564ULL * MIB, 1}, {65536ULL * MIB, 0}}, {500ULL * MIB, 0}, 0x01},
    {"llvmpipe (LLVM 15.0.6, 256 bits)", 0x10005, 4, 1, {{2048ULL * MIB, 1}, {0, 0}}, {0, 0}, 0},
};

static int which(void* pd) { return (int)((int*)pd - devices); }

static VkResult enumerateInstanceVersion(uint32_t* v) { *v = (1u << 22) | (3u << 12) | 280u; return 0; }
static VkResult enumerateInstanceExtensionProperties(const char* l, uint32_t* n, struct ext* p) {
  (void)l; (void)p; *n = 0; return 0;
}
static VkResult createInstance(const void* ci, const void* a, void** inst) { (void)ci; (void)a; *inst = &instance_token; return 0; }
static void destroyInstance(void* i, const void* a) { (void)i; (void)a; }
static VkResult enumeratePhysicalDevices(void* i, uint32_t* n, void** out) {
  (void)i;
  if (!out) { *n = 3; return 0; }
  uint32_t k = *n < 3 ? *n : 3;
  for (uint32_t j = 0; j < k; ++j) out[j] = &devices[j];
  *n = k;
  return k < 3 ? 5 : 0;
}
static VkResult enumerateDeviceExtensionProperties(void* pd, const char* l, uint32_t* n, struct ext* p) {
  (void)l;
  int gpu = which(pd) < 2;
  if (!p) { *n = gpu ? 2 : 0; return 0; }
  if (gpu && *n >= 2) {
    strcpy(p[0].name, "VK_EXT_memory_budget");
    strcpy(p[1].name, "VK_EXT_pci_bus_info");
  }
  return 0;
}
static void fillProps(void* pd, struct props* p) {
  const struct fake_dev* d = &fake[which(pd)];
  p->api = (1u << 22) | (3u << 12);
  p->driver = 1;
  p->vendor = d->vendor;
  p->device = 0x1586;
  p->type = d->type;
  strcpy(p->name, d->name);
}
static void getProperties(void* pd, struct props* p) { fillProps(pd, p); }
static void getProperties2(void* pd, struct props2* p) {
  fillProps(pd, &p->p);
  for (struct base* b = p->pNext; b; b = b->pNext) {
    if (b->sType == 1000212000) {
      struct pciinfo* pci = (struct pciinfo*)b;
      pci->domain = 0; pci->bus = fake[which(pd)].bus; pci->device = 0; pci->function = 0;
    }
  }
}
static void fillMem(void* pd, struct memprops* m) {
  const struct fake_dev* d = &fake[which(pd)];
  memset(m, 0, sizeof *m);
  m->heapCount = d->heaps;
  for (int h = 0; h < d->heaps; ++h) m->heaps[h] = d->h[h];
}
static void getMemoryProperties(void* pd, struct memprops* m) { fillMem(pd, m); }
static void getMemoryProperties2(void* pd, struct memprops2* m) {
  fillMem(pd, &m->p);
  const struct fake_dev* d = &fake[which(pd)];
  for (struct base* b = m->pNext; b; b = b->pNext) {
    if (b->sType == 1000237000) {
      struct budget* bu = (struct budget*)b;
      for (int h = 0; h < d->heaps; ++h) {
        bu->heapBudget[h] = d->h[h].size - FAKE_OTHER_MIB * MIB;
        bu->heapUsage[h] = d->used[h];
      }
    }
  }
}

PFN vkGetInstanceProcAddr(void* inst, const char* name) {
  (void)inst;
  static const struct { const char* n; PFN f; } table[] = {
      {"vkEnumerateInstanceVersion", (PFN)enumerateInstanceVersion},
      {"vkEnumerateInstanceExtensionProperties", (PFN)enumerateInstanceExtensionProperties},
      {"vkCreateInstance", (PFN)createInstance},
      {"vkDestroyInstance", (PFN)destroyInstance},
      {"vkEnumeratePhysicalDevices", (PFN)enumeratePhysicalDevices},
      {"vkEnumerateDeviceExtensionProperties", (PFN)enumerateDeviceExtensionProperties},
      {"vkGetPhysicalDeviceProperties", (PFN)getProperties},
      {"vkGetPhysicalDeviceProperties2", (PFN)getProperties2},
      {"vkGetPhysicalDeviceMemoryProperties", (PFN)getMemoryProperties},
      {"vkGetPhysicalDeviceMemoryProperties2", (PFN)getMemoryProperties2},
  };
  for (unsigned i = 0; i < sizeof table / sizeof table[0]; ++i)
    if (strcmp(table[i].n, name) == 0) return table[i].f;
  return 0;
}
