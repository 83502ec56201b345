// GPUs through the Vulkan loader (libvulkan.so.1 / vulkan-1.dll / libvulkan.1.dylib): every GPU
// with a Vulkan driver, whatever the vendor, which is what llama.cpp's Vulkan backend sees.
//
// Which devices, and how much memory, follow llama.cpp's Vulkan backend (ggml-vulkan.cpp at the
// pinned commit: ggml_vk_instance_init, ggml_backend_vk_get_device_memory), so that the probe,
// `llama-server --list-devices` and the planner agree; docs/vulkan-memory.md has the rule:
// - Devices: GGML_VK_VISIBLE_DEVICES, when set, lists physical devices by index, of any type
//   (lavapipe included), in its order. Otherwise discrete and integrated GPUs; CPU (software)
//   devices only when the caller asks (vulkanCpu), as llama.cpp uses them only when named.
// - Memory: an integrated GPU counts EVERY heap (on an AMD APU under RADV: the device-local BIOS
//   carve-out and the host-visible GTT heap), since llama.cpp allocates its buffers from either;
//   other devices count their device-local heaps. Free = budget - usage per heap
//   (VK_EXT_memory_budget, which accounts for other processes), else the heap size. For an
//   integrated GPU the two kinds of heap are reported as `vram` (device-local) and `gtt` (the
//   rest), as the amdgpu sysfs source does, because GTT pages are system RAM the host also needs.
//
// The loader is opened at run time, so the few Vulkan types needed are declared here. They are
// core ABI, frozen since Vulkan 1.0/1.1; VkPhysicalDeviceProperties is declared only up to the
// fields we read and padded, so the 800 bytes of limits need not be transcribed.
#include <cctype>
#include <cstdlib>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gpu_runtime.h"

namespace strata {
namespace {

using VkResult = int32_t;
using VkInstance = struct VkInstance_T*;
using VkPhysicalDevice = struct VkPhysicalDevice_T*;
using PFN_vkVoidFunction = void (*)();

constexpr VkResult VK_SUCCESS = 0;
constexpr VkResult VK_INCOMPLETE = 5;
constexpr VkResult VK_ERROR_INCOMPATIBLE_DRIVER = -9;
constexpr int32_t ST_APPLICATION_INFO = 0;
constexpr int32_t ST_INSTANCE_CREATE_INFO = 1;
constexpr int32_t ST_PHYSICAL_DEVICE_PROPERTIES_2 = 1000059001;
constexpr int32_t ST_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2 = 1000059006;
constexpr int32_t ST_PHYSICAL_DEVICE_ID_PROPERTIES = 1000071004;
constexpr int32_t ST_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT = 1000212000;
constexpr int32_t ST_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT = 1000237000;
constexpr uint32_t HEAP_DEVICE_LOCAL = 0x1;
constexpr uint32_t INSTANCE_CREATE_ENUMERATE_PORTABILITY = 0x1;
constexpr int32_t TYPE_OTHER = 0, TYPE_INTEGRATED = 1, TYPE_CPU = 4;
constexpr uint32_t apiVersion(uint32_t major, uint32_t minor) { return (major << 22) | (minor << 12); }

struct VkApplicationInfo {
  int32_t sType;
  const void* pNext;
  const char* pApplicationName;
  uint32_t applicationVersion;
  const char* pEngineName;
  uint32_t engineVersion;
  uint32_t apiVersion;
};
struct VkInstanceCreateInfo {
  int32_t sType;
  const void* pNext;
  uint32_t flags;
  const VkApplicationInfo* pApplicationInfo;
  uint32_t enabledLayerCount;
  const char* const* ppEnabledLayerNames;
  uint32_t enabledExtensionCount;
  const char* const* ppEnabledExtensionNames;
};
struct VkExtensionProperties {
  char extensionName[256];
  uint32_t specVersion;
};
struct VkMemoryType {
  uint32_t propertyFlags, heapIndex;
};
struct VkMemoryHeap {
  uint64_t size;
  uint32_t flags;
};
struct VkPhysicalDeviceMemoryProperties {
  uint32_t memoryTypeCount;
  VkMemoryType memoryTypes[32];
  uint32_t memoryHeapCount;
  VkMemoryHeap memoryHeaps[16];
};
static_assert(sizeof(VkPhysicalDeviceMemoryProperties) == 520, "Vulkan ABI");
struct VkPhysicalDeviceMemoryProperties2 {
  int32_t sType;
  void* pNext;
  VkPhysicalDeviceMemoryProperties memoryProperties;
};
struct VkPhysicalDeviceMemoryBudgetPropertiesEXT {
  int32_t sType;
  void* pNext;
  uint64_t heapBudget[16];
  uint64_t heapUsage[16];
};
struct VkPhysicalDeviceIDProperties {
  int32_t sType;
  void* pNext;
  uint8_t deviceUUID[16];
  uint8_t driverUUID[16];
  uint8_t deviceLUID[8];
  uint32_t deviceNodeMask;
  uint32_t deviceLUIDValid;
};
struct VkPhysicalDevicePCIBusInfoPropertiesEXT {
  int32_t sType;
  void* pNext;
  uint32_t pciDomain, pciBus, pciDevice, pciFunction;
};
// The head of VkPhysicalDeviceProperties; `rest` takes limits and sparse properties (824 bytes
// in all today) with room to spare.
struct VkPhysicalDeviceProperties {
  uint32_t apiVersion;
  uint32_t driverVersion;
  uint32_t vendorID;
  uint32_t deviceID;
  int32_t deviceType;
  char deviceName[256];
  uint8_t pipelineCacheUUID[16];
  alignas(8) unsigned char rest[4096];
};
struct VkPhysicalDeviceProperties2 {
  int32_t sType;
  void* pNext;
  VkPhysicalDeviceProperties properties;
};
static_assert(offsetof(VkPhysicalDeviceProperties2, properties) == 16, "Vulkan ABI");
static_assert(offsetof(VkPhysicalDeviceProperties, rest) == 296, "Vulkan ABI: VkPhysicalDeviceLimits follows pipelineCacheUUID, 8-aligned");
constexpr size_t LIMITS_MAX_STORAGE_BUFFER_RANGE = 28;

#if defined(_WIN32)
#define VKAPI __stdcall
#else
#define VKAPI
#endif

struct Vk {
  PFN_vkVoidFunction(VKAPI* getInstanceProcAddr)(VkInstance, const char*) = nullptr;
  VkResult(VKAPI* enumerateInstanceVersion)(uint32_t*) = nullptr;
  VkResult(VKAPI* enumerateInstanceExtensionProperties)(const char*, uint32_t*, VkExtensionProperties*) = nullptr;
  VkResult(VKAPI* createInstance)(const VkInstanceCreateInfo*, const void*, VkInstance*) = nullptr;
  void(VKAPI* destroyInstance)(VkInstance, const void*) = nullptr;
  VkResult(VKAPI* enumeratePhysicalDevices)(VkInstance, uint32_t*, VkPhysicalDevice*) = nullptr;
  VkResult(VKAPI* enumerateDeviceExtensionProperties)(VkPhysicalDevice, const char*, uint32_t*, VkExtensionProperties*) = nullptr;
  void(VKAPI* getProperties)(VkPhysicalDevice, VkPhysicalDeviceProperties*) = nullptr;
  void(VKAPI* getProperties2)(VkPhysicalDevice, VkPhysicalDeviceProperties2*) = nullptr;
  void(VKAPI* getMemoryProperties)(VkPhysicalDevice, VkPhysicalDeviceMemoryProperties*) = nullptr;
  void(VKAPI* getMemoryProperties2)(VkPhysicalDevice, VkPhysicalDeviceMemoryProperties2*) = nullptr;

  template <class F>
  bool load(VkInstance inst, const char* name, F* out) {
    *out = reinterpret_cast<F>(getInstanceProcAddr(inst, name));
    return *out != nullptr;
  }
};

std::vector<std::string> candidates(const ProbeOptions& o) {
  if (!o.vulkanLib.empty()) return {o.vulkanLib};
#if defined(_WIN32)
  return {"vulkan-1.dll"};
#elif defined(__APPLE__)
  return {"libvulkan.1.dylib", "/usr/local/lib/libvulkan.1.dylib", "libMoltenVK.dylib"};
#else
  return {"libvulkan.so.1", "libvulkan.so"};
#endif
}

std::vector<std::string> extensionNames(std::vector<VkExtensionProperties>& props) {
  std::vector<std::string> names;
  for (auto& p : props) {
    p.extensionName[sizeof p.extensionName - 1] = 0;
    names.emplace_back(p.extensionName);
  }
  return names;
}

bool has(const std::vector<std::string>& v, const char* s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

// RADV names AMD GPUs "AMD Radeon Graphics (RADV GFX1151)": the ISA is right there.
std::string archFromName(const std::string& name) {
  size_t p = name.find("GFX");
  if (p == std::string::npos) return "";
  std::string arch = "gfx";
  for (size_t i = p + 3; i < name.size() && std::isxdigit(static_cast<unsigned char>(name[i])); ++i)
    arch += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  return arch.size() >= 6 ? arch : "";
}

}  // namespace

void probeVulkan(const ProbeOptions& o, std::vector<Device>& out, BackendStatus& st) {
  DynLib lib;
  if (!openRuntime(lib, candidates(o), st)) return;
  Vk vk;
  if (!lib.sym("vkGetInstanceProcAddr", &vk.getInstanceProcAddr)) {
    fail(st, "error", lib.path() + " has no vkGetInstanceProcAddr");
    return;
  }
  vk.load(nullptr, "vkEnumerateInstanceVersion", &vk.enumerateInstanceVersion);  // absent: a 1.0 loader
  if (!vk.load(nullptr, "vkCreateInstance", &vk.createInstance) ||
      !vk.load(nullptr, "vkEnumerateInstanceExtensionProperties", &vk.enumerateInstanceExtensionProperties)) {
    fail(st, "error", "the Vulkan loader lacks vkCreateInstance");
    return;
  }
  uint32_t loaderVersion = apiVersion(1, 0);
  if (vk.enumerateInstanceVersion) vk.enumerateInstanceVersion(&loaderVersion);
  st.version = std::to_string(loaderVersion >> 22) + "." + std::to_string((loaderVersion >> 12) & 0x3ff) + "." +
               std::to_string(loaderVersion & 0xfff);

  uint32_t n = 0;
  vk.enumerateInstanceExtensionProperties(nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> instExtProps(n);
  if (n) vk.enumerateInstanceExtensionProperties(nullptr, &n, instExtProps.data());
  instExtProps.resize(n);
  auto instExts = extensionNames(instExtProps);
  std::vector<const char*> enable;
  bool khrProps2 = has(instExts, "VK_KHR_get_physical_device_properties2");
  if (khrProps2) enable.push_back("VK_KHR_get_physical_device_properties2");
  bool portability = has(instExts, "VK_KHR_portability_enumeration");  // MoltenVK lists only with it
  if (portability) enable.push_back("VK_KHR_portability_enumeration");

  VkApplicationInfo app{ST_APPLICATION_INFO, nullptr, "strata-probe", 1, "strata", 1,
                        loaderVersion >= apiVersion(1, 1) ? apiVersion(1, 1) : apiVersion(1, 0)};
  VkInstanceCreateInfo ci{ST_INSTANCE_CREATE_INFO, nullptr, portability ? INSTANCE_CREATE_ENUMERATE_PORTABILITY : 0u,
                          &app, 0, nullptr, static_cast<uint32_t>(enable.size()), enable.data()};
  VkInstance inst = nullptr;
  VkResult r = vk.createInstance(&ci, nullptr, &inst);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
    fail(st, "absent", "Vulkan loader present, but no Vulkan driver (ICD) is installed");
    return;
  }
  if (r != VK_SUCCESS) {
    fail(st, "error", "vkCreateInstance: VkResult " + std::to_string(r));
    return;
  }
  vk.load(inst, "vkDestroyInstance", &vk.destroyInstance);
  vk.load(inst, "vkEnumeratePhysicalDevices", &vk.enumeratePhysicalDevices);
  vk.load(inst, "vkEnumerateDeviceExtensionProperties", &vk.enumerateDeviceExtensionProperties);
  vk.load(inst, "vkGetPhysicalDeviceProperties", &vk.getProperties);
  vk.load(inst, "vkGetPhysicalDeviceMemoryProperties", &vk.getMemoryProperties);
  if (!vk.load(inst, "vkGetPhysicalDeviceProperties2", &vk.getProperties2) && khrProps2)
    vk.load(inst, "vkGetPhysicalDeviceProperties2KHR", &vk.getProperties2);
  if (!vk.load(inst, "vkGetPhysicalDeviceMemoryProperties2", &vk.getMemoryProperties2) && khrProps2)
    vk.load(inst, "vkGetPhysicalDeviceMemoryProperties2KHR", &vk.getMemoryProperties2);
  if (!vk.enumeratePhysicalDevices || !vk.getProperties || !vk.getMemoryProperties || !vk.enumerateDeviceExtensionProperties) {
    if (vk.destroyInstance) vk.destroyInstance(inst, nullptr);
    fail(st, "error", "the Vulkan instance lacks core 1.0 functions");
    return;
  }

  uint32_t count = 0;
  vk.enumeratePhysicalDevices(inst, &count, nullptr);
  std::vector<VkPhysicalDevice> devs(count);
  if (count) {
    r = vk.enumeratePhysicalDevices(inst, &count, devs.data());
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) count = 0;
  }
  devs.resize(count);

  // GGML_VK_VISIBLE_DEVICES: llama.cpp's own choice of physical devices ("0", "1,0").
  std::vector<uint32_t> chosen;
  const std::string visible = envOr("GGML_VK_VISIBLE_DEVICES", "");
  const bool named = !visible.empty();
  if (named) {
    std::string tok;
    for (size_t i = 0; i <= visible.size(); ++i) {
      char c = i < visible.size() ? visible[i] : ',';
      if (c == ',' || c == ' ') {
        if (tok.empty()) continue;
        char* end = nullptr;
        unsigned long v = std::strtoul(tok.c_str(), &end, 10);
        if (*end || v >= devs.size()) {
          if (vk.destroyInstance) vk.destroyInstance(inst, nullptr);
          fail(st, "error", "GGML_VK_VISIBLE_DEVICES names device " + tok + ", but Vulkan has " + std::to_string(devs.size()) +
                                " (llama.cpp refuses to start with it too): fix or unset the variable");
          return;
        }
        chosen.push_back(static_cast<uint32_t>(v));
        tok.clear();
      } else {
        tok += c;
      }
    }
  } else {
    for (uint32_t i = 0; i < devs.size(); ++i) chosen.push_back(i);
  }

  int index = 0, skippedCpu = 0;
  for (uint32_t pick : chosen) {
    VkPhysicalDevice pd = devs[pick];
    uint32_t en = 0;
    vk.enumerateDeviceExtensionProperties(pd, nullptr, &en, nullptr);
    std::vector<VkExtensionProperties> devExtProps(en);
    if (en) vk.enumerateDeviceExtensionProperties(pd, nullptr, &en, devExtProps.data());
    devExtProps.resize(en);
    auto devExts = extensionNames(devExtProps);
    bool budgetExt = has(devExts, "VK_EXT_memory_budget");
    bool pciExt = has(devExts, "VK_EXT_pci_bus_info");

    // Heap-allocated: VkPhysicalDeviceProperties with its padding is too big for a thread stack
    // we do not own (the addon probes on a libuv worker).
    auto p1 = std::make_unique<VkPhysicalDeviceProperties>();
    vk.getProperties(pd, p1.get());
    bool dev11 = p1->apiVersion >= apiVersion(1, 1);

    Device d = gpuDevice("vulkan", index, p1->vendorID);
    p1->deviceName[sizeof p1->deviceName - 1] = 0;
    d.name = p1->deviceName;
    if (p1->deviceType == TYPE_CPU && !o.vulkanCpu && !named) {
      ++skippedCpu;  // lavapipe, SwiftShader: llama.cpp's Vulkan backend skips them too
      continue;
    }
    if (p1->deviceType != TYPE_OTHER) d.integrated = p1->deviceType == TYPE_INTEGRATED || p1->deviceType == TYPE_CPU;
    // limits.maxStorageBufferRange: llama.cpp refuses an op whose tensors exceed it (unless the
    // device has 64-bit shader indexing), which keeps e.g. a 152k-vocab output layer off
    // lavapipe (128 MiB). VkPhysicalDeviceLimits starts `rest`; the field is its eighth uint32.
    if (!has(devExts, "VK_EXT_shader_64bit_indexing")) {
      uint32_t range = 0;
      std::memcpy(&range, p1->rest + LIMITS_MAX_STORAGE_BUFFER_RANGE, sizeof range);
      if (range) d.maxStorageBufferBytes = range;
    }
    if (p1->vendorID == 0x1002) d.architecture = archFromName(d.name);

    if (vk.getProperties2 && (dev11 || khrProps2)) {
      VkPhysicalDeviceIDProperties idp{};
      VkPhysicalDevicePCIBusInfoPropertiesEXT pci{};
      auto p2 = std::make_unique<VkPhysicalDeviceProperties2>();
      p2->sType = ST_PHYSICAL_DEVICE_PROPERTIES_2;
      void** tail = &p2->pNext;
      if (dev11) {
        idp.sType = ST_PHYSICAL_DEVICE_ID_PROPERTIES;
        *tail = &idp;
        tail = &idp.pNext;
      }
      if (pciExt) {
        pci.sType = ST_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT;
        *tail = &pci;
      }
      vk.getProperties2(pd, p2.get());
      if (pciExt) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", pci.pciDomain, pci.pciBus, pci.pciDevice, pci.pciFunction);
        d.pciBusId = buf;
      }
      if (dev11 && idp.deviceLUIDValid) {
        char buf[20];
        for (int i = 0; i < 8; ++i) std::snprintf(buf + 2 * i, 3, "%02x", idp.deviceLUID[i]);
        d.luid = buf;
      }
    }

    VkPhysicalDeviceMemoryProperties2 mp2{};
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{};
    const VkPhysicalDeviceMemoryProperties* mp = &mp2.memoryProperties;
    bool haveBudget = false;
    if (budgetExt && vk.getMemoryProperties2) {
      mp2.sType = ST_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
      budget.sType = ST_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT;
      mp2.pNext = &budget;
      vk.getMemoryProperties2(pd, &mp2);
      haveBudget = true;
    } else {
      vk.getMemoryProperties(pd, &mp2.memoryProperties);
    }
    // llama.cpp: is_integrated_gpu || (heap.flags & eDeviceLocal).
    const bool allHeaps = p1->deviceType == TYPE_INTEGRATED;
    uint64_t total = 0, avail = 0;
    MemPool local, shared;
    uint32_t heaps = mp->memoryHeapCount < 16 ? mp->memoryHeapCount : 16;
    for (uint32_t h = 0; h < heaps; ++h) {
      const bool deviceLocal = mp->memoryHeaps[h].flags & HEAP_DEVICE_LOCAL;
      if (!deviceLocal && !allHeaps) continue;
      const uint64_t size = mp->memoryHeaps[h].size;
      total += size;
      // Free to us: budget - usage (the budget already leaves out what other processes hold).
      uint64_t free = size;
      if (haveBudget) free = budget.heapBudget[h] > budget.heapUsage[h] ? budget.heapBudget[h] - budget.heapUsage[h] : 0;
      if (free > size) free = size;
      avail += free;
      MemPool& pool = deviceLocal ? local : shared;
      pool.totalBytes += size;
      pool.usedBytes += size - free;
    }
    d.totalBytes = total;
    d.freeBytes = avail;
    d.budgetBytes = avail;
    d.memorySource = haveBudget ? "VK_EXT_memory_budget" : "vulkan-heaps";
    if (allHeaps) {
      d.vram = local;
      d.gtt = shared;
    }
    ++index;
    out.push_back(d);
  }
  if (vk.destroyInstance) vk.destroyInstance(inst, nullptr);
  st.detail = DeviceNotes::countOnly(index);
  if (skippedCpu) st.detail += ", " + std::to_string(skippedCpu) + " CPU (software) device(s) skipped";
}

}  // namespace strata
