// Accelerator probe: what compute devices this machine has and how much memory each can take.
// Plain C++ (no Node), shared by the addon and the strata_probe CLI.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace strata {

struct ProbeOptions {
  // Library overrides; empty = the platform's normal search. Tests point these at fakes.
  std::string cudaLib, nvmlLib, hipLib, vulkanLib;
  // List Vulkan's CPU (software) devices too: off normally, as in llama.cpp; tests turn it on to
  // drive the whole Vulkan path through Mesa's lavapipe on a machine without a GPU.
  bool vulkanCpu = false;
  // Root of the sysfs tree (amdgpu, KFD); tests point it at a fake tree.
  std::string sysfsRoot = "/sys";
  // Backends to run ("cuda", "hip", "vulkan", "amdgpu", "dxgi", "metal", "cpu"); empty = all.
  std::set<std::string> only;

  bool wants(const char* backend) const { return only.empty() || only.count(backend) > 0; }
};

struct MemPool {
  uint64_t totalBytes = 0;
  uint64_t usedBytes = 0;
};

struct Device {
  // "cuda" | "hip" | "vulkan" | "metal" | "cpu" are llama.cpp backends. "amdgpu" (Linux kernel
  // driver, sysfs) and "dxgi" (Windows) are the operating system's view of a GPU: listed because
  // their numbers are the ones that bind (GTT on an APU, the WDDM budget); join them to the
  // backend entries of the same GPU by pciBusId / luid.
  std::string backend;
  int index = 0;  // ordinal within the backend (what llama.cpp's device list uses)
  std::string name;
  std::string architecture;     // "sm_90", "gfx1151", "x86_64"; empty = unknown
  std::optional<bool> integrated;  // shares system RAM with the CPU (APU, Apple silicon, the CPU)
  std::optional<uint64_t> totalBytes, freeBytes, budgetBytes;
  std::string memorySource;     // where free/budget came from: "nvml", "cuda-context", ...
  std::string pciBusId;         // "0000:c5:00.0", lower case; empty = unknown
  std::string luid;             // Windows adapter LUID, hex; empty = unknown
  std::optional<uint32_t> vendorId;
  std::string driverVersion;
  // amdgpu: the BIOS carve-out (VRAM) and GTT. Vulkan, integrated GPUs: the device-local heaps
  // and the other (host-visible) heaps, which on RADV are the same two pools.
  std::optional<MemPool> vram, gtt;
  // Vulkan: limits.maxStorageBufferRange when the device lacks 64-bit shader indexing (the
  // largest tensor one llama.cpp op may touch there); unset = no such limit.
  std::optional<uint64_t> maxStorageBufferBytes;
};

struct BackendStatus {
  std::string backend;
  // "ok": library loaded and asked (it may have 0 devices); "absent": no library / no driver /
  // no device, the normal case on most machines; "error": present but failed; "unsupported":
  // not on this OS.
  std::string status;
  std::string detail;
  std::string library;
  std::string version;
  double ms = 0;
};

struct SystemMemory {
  uint64_t totalBytes = 0;
  uint64_t availableBytes = 0;
  std::string source;
};

struct ProbeResult {
  SystemMemory system;
  std::vector<Device> devices;
  std::vector<BackendStatus> backends;
};

// One function per source. Each appends its devices and fills `st` (backend name preset).
void probeCuda(const ProbeOptions&, std::vector<Device>&, BackendStatus& st);
void probeHip(const ProbeOptions&, std::vector<Device>&, BackendStatus& st);
void probeVulkan(const ProbeOptions&, std::vector<Device>&, BackendStatus& st);
void probeAmdgpuSysfs(const ProbeOptions&, const SystemMemory&, std::vector<Device>&, BackendStatus& st);
void probeDxgi(const ProbeOptions&, std::vector<Device>&, BackendStatus& st);
void probeMetal(const ProbeOptions&, std::vector<Device>&, BackendStatus& st);
SystemMemory readSystemMemory();
void probeCpu(const SystemMemory&, std::vector<Device>&, BackendStatus& st);

// Runs every wanted source; never throws for a source's failure (it becomes a status).
ProbeResult probeAll(const ProbeOptions&);
std::string toJson(const ProbeResult&, bool pretty = false);

// Shared helpers.
std::string hexId(uint32_t v);  // 0x1002 -> "0x1002"
std::string lowerPciId(std::string s);  // normalises "00000000:65:00.0" / "0000:65:00.0"
std::string envOr(const char* name, const std::string& fallback);

}  // namespace strata
