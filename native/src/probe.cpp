// Runs the probe sources in a fixed order and times each one.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "probe.h"

namespace strata {

std::string hexId(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

std::string lowerPciId(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // NVML and nvidia-smi write an 8-digit domain ("00000000:65:00.0"); sysfs and CUDA write 4.
  size_t colon = s.find(':');
  if (colon == 8 && s.compare(0, 4, "0000") == 0) s.erase(0, 4);
  return s;
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

namespace {

template <class F>
void timed(ProbeResult& r, const ProbeOptions& o, const char* backend, F&& run) {
  if (!o.wants(backend)) return;
  BackendStatus st;
  st.backend = backend;
  auto t0 = std::chrono::steady_clock::now();
  try {
    run(st);
  } catch (const std::exception& e) {
    st.status = "error";
    st.detail = e.what();
  }
  st.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (st.status.empty()) st.status = "ok";
  r.backends.push_back(st);
}

}  // namespace

ProbeResult probeAll(const ProbeOptions& o) {
  // Vendor runtimes are not all safe to initialise from two threads at once; one probe at a time.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);

  ProbeResult r;
  r.system = readSystemMemory();
  timed(r, o, "cuda", [&](BackendStatus& st) { probeCuda(o, r.devices, st); });
  timed(r, o, "hip", [&](BackendStatus& st) { probeHip(o, r.devices, st); });
  timed(r, o, "vulkan", [&](BackendStatus& st) { probeVulkan(o, r.devices, st); });
  timed(r, o, "amdgpu", [&](BackendStatus& st) { probeAmdgpuSysfs(o, r.system, r.devices, st); });
  timed(r, o, "dxgi", [&](BackendStatus& st) { probeDxgi(o, r.devices, st); });
  timed(r, o, "metal", [&](BackendStatus& st) { probeMetal(o, r.devices, st); });
  timed(r, o, "cpu", [&](BackendStatus& st) { probeCpu(r.system, r.devices, st); });
  return r;
}

#ifndef _WIN32
void probeDxgi(const ProbeOptions&, std::vector<Device>&, BackendStatus& st) {
  st.status = "unsupported";
  st.detail = "DXGI exists only on Windows";
}
#endif
#ifndef __APPLE__
void probeMetal(const ProbeOptions&, std::vector<Device>&, BackendStatus& st) {
  st.status = "unsupported";
  st.detail = "Metal exists only on macOS";
}
#endif

}  // namespace strata
