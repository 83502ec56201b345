// AMD GPUs as the Linux amdgpu driver reports them in sysfs. This is the number that decides how
// much of a Strix Halo's 128 GB the iGPU can use: VRAM is the BIOS carve-out, GTT is system RAM
// the GPU may map (its size set by amdgpu.gttsize / ttm.pages_limit), and HIP and Vulkan
// allocations on an APU land in both. Reading it needs no GPU runtime and no context.
//
// Budget: a discrete GPU gets its free VRAM. An APU gets free VRAM plus free GTT, the latter
// capped by MemAvailable because GTT pages are ordinary RAM that the CPU side is also using.
#include "probe.h"

#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#endif

namespace strata {

#ifndef __linux__

void probeAmdgpuSysfs(const ProbeOptions&, const SystemMemory&, std::vector<Device>&, BackendStatus& st) {
  st.status = "unsupported";
  st.detail = "amdgpu sysfs exists only on Linux";
}

#else

namespace {

std::string readLine(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!std::getline(f, s)) return "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::optional<uint64_t> readU64(const std::string& path) {
  std::string s = readLine(path);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno || end == s.c_str()) return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool isCardName(const std::string& n, int* number) {
  if (n.size() < 5 || n.compare(0, 4, "card") != 0) return false;  // skips "card1-DP-1" connectors
  for (size_t i = 4; i < n.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(n[i]))) return false;
  *number = std::atoi(n.c_str() + 4);
  return true;
}

// KFD names the ISA as major*10000 + minor*100 + stepping; minor and stepping print in hex.
std::string gfxName(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "gfx%u%x%x", static_cast<unsigned>(v / 10000), static_cast<unsigned>((v / 100) % 100),
                static_cast<unsigned>(v % 100));
  return buf;
}

// The KFD topology node with the same PCI location carries the ISA.
std::string kfdArch(const std::string& root, const std::string& pci) {
  unsigned dom = 0, bus = 0, dev = 0, fn = 0;
  if (std::sscanf(pci.c_str(), "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) return "";
  uint64_t location = (bus << 8) | (dev << 3) | fn;
  std::string nodes = root + "/class/kfd/kfd/topology/nodes";
  for (const auto& n : listDir(nodes)) {
    std::ifstream f(nodes + "/" + n + "/properties");
    std::string key;
    uint64_t value = 0, loc = UINT64_MAX, domain = 0, gfx = 0;
    while (f >> key >> value) {
      if (key == "location_id") loc = value;
      else if (key == "domain") domain = value;
      else if (key == "gfx_target_version") gfx = value;
    }
    if (gfx && loc == location && domain == dom) return gfxName(gfx);
  }
  return "";
}

// Authoritative APU test: the driver's own flag (AMDGPU_IDS_FLAGS_FUSION), via the render node.
// The struct layouts are kernel UAPI (include/uapi/drm/amdgpu_drm.h) and append-only.
std::optional<bool> ioctlIsApu(const std::string& renderNode) {
  struct drm_amdgpu_info {
    uint64_t return_pointer;
    uint32_t return_size;
    uint32_t query;
    uint32_t pad[4];
  };
  static_assert(sizeof(drm_amdgpu_info) == 32, "amdgpu UAPI");
  constexpr unsigned long DRM_IOCTL_AMDGPU_INFO = 0x40206445;  // DRM_IOW(0x40 + 0x05, 32 bytes)
  constexpr uint32_t AMDGPU_INFO_DEV_INFO = 0x16;
  constexpr size_t IDS_FLAGS_OFFSET = 136;  // drm_amdgpu_info_device.ids_flags
  constexpr uint64_t AMDGPU_IDS_FLAGS_FUSION = 0x1;

  int fd = open(renderNode.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;  // typically EACCES: the user is not in the "render" group
  alignas(8) unsigned char dev[1024] = {0};
  drm_amdgpu_info req{};
  req.return_pointer = reinterpret_cast<uintptr_t>(dev);
  req.return_size = sizeof dev;
  req.query = AMDGPU_INFO_DEV_INFO;
  int rc = ioctl(fd, DRM_IOCTL_AMDGPU_INFO, &req);
  close(fd);
  if (rc != 0) return std::nullopt;
  uint64_t flags = 0;
  std::memcpy(&flags, dev + IDS_FLAGS_OFFSET, sizeof flags);
  return (flags & AMDGPU_IDS_FLAGS_FUSION) != 0;
}

// Fallback when the render node cannot be opened: ISAs that only ever shipped in APUs.
// (gfx942 is left out: it is both MI300A, an APU, and MI300X, which is not.)
std::optional<bool> isaIsApu(const std::string& arch) {
  static const char* const apus[] = {"gfx801", "gfx810", "gfx902", "gfx909", "gfx90c", "gfx1033", "gfx1035",
                                     "gfx1036", "gfx1103", "gfx1150", "gfx1151", "gfx1152", "gfx1153"};
  if (arch.empty()) return std::nullopt;
  for (const char* a : apus)
    if (arch == a) return true;
  return std::nullopt;  // not knowing an ISA does not make it discrete
}

std::string realBasename(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) return "";
  const char* slash = std::strrchr(buf, '/');
  return slash ? slash + 1 : buf;
}

}  // namespace

void probeAmdgpuSysfs(const ProbeOptions& o, const SystemMemory& sys, std::vector<Device>& out, BackendStatus& st) {
  std::string drm = o.sysfsRoot + "/class/drm";
  std::vector<std::pair<int, std::string>> cards;
  for (const auto& n : listDir(drm)) {
    int num = 0;
    if (isCardName(n, &num)) cards.emplace_back(num, n);
  }
  if (cards.empty()) {
    st.status = "absent";
    st.detail = "no DRM cards under " + drm;
    return;
  }
  std::sort(cards.begin(), cards.end());
  bool realSys = o.sysfsRoot == "/sys";
  int index = 0;
  std::string notes;
  for (const auto& [num, card] : cards) {
    std::string dev = drm + "/" + card + "/device";
    if (readLine(dev + "/vendor") != "0x1002") continue;
    auto vramTotal = readU64(dev + "/mem_info_vram_total");
    if (!vramTotal) {
      notes += card + ": AMD, but no mem_info_vram_total (radeon driver, or amdgpu too old); ";
      continue;
    }
    MemPool vram{*vramTotal, readU64(dev + "/mem_info_vram_used").value_or(0)};
    MemPool gtt{readU64(dev + "/mem_info_gtt_total").value_or(0), readU64(dev + "/mem_info_gtt_used").value_or(0)};

    Device d;
    d.backend = "amdgpu";
    d.index = index++;
    d.vendorId = 0x1002;
    d.pciBusId = lowerPciId(realBasename(dev));
    std::string product = readLine(dev + "/product_name");
    std::string deviceId = readLine(dev + "/device");
    d.name = !product.empty() ? product : "AMD GPU " + (deviceId.empty() ? card : deviceId);
    d.architecture = kfdArch(o.sysfsRoot, d.pciBusId);
    if (realSys) {
      for (const auto& n : listDir(dev + "/drm")) {
        if (n.compare(0, 7, "renderD") == 0) d.integrated = ioctlIsApu("/dev/dri/" + n);
      }
    }
    if (!d.integrated) d.integrated = isaIsApu(d.architecture);
    d.vram = vram;
    d.gtt = gtt;

    uint64_t vramFree = vram.totalBytes > vram.usedBytes ? vram.totalBytes - vram.usedBytes : 0;
    uint64_t gttFree = gtt.totalBytes > gtt.usedBytes ? gtt.totalBytes - gtt.usedBytes : 0;
    if (d.integrated.value_or(false)) {
      d.totalBytes = vram.totalBytes + gtt.totalBytes;
      d.freeBytes = vramFree + gttFree;
      d.budgetBytes = vramFree + std::min(gttFree, sys.availableBytes);
    } else {
      d.totalBytes = vram.totalBytes;
      d.freeBytes = vramFree;
      d.budgetBytes = vramFree;
    }
    d.memorySource = "amdgpu-sysfs";
    out.push_back(d);
  }
  if (index == 0) {
    st.status = "absent";
    st.detail = notes.empty() ? "no AMD GPU under " + drm : notes.substr(0, notes.size() - 2);
    return;
  }
  st.detail = std::to_string(index) + " device(s)" + (notes.empty() ? "" : "; " + notes.substr(0, notes.size() - 2));
}

#endif

}  // namespace strata
