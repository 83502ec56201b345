// Windows GPUs through DXGI: every hardware adapter with its dedicated memory, and the budget the
// OS grants this process on it (IDXGIAdapter3::QueryVideoMemoryInfo), which is what WDDM will
// actually let an application commit. Join with the Vulkan/CUDA entries of the same GPU by LUID.
// DXGI has no integrated flag: the Vulkan entry with the same LUID carries it.
#include <windows.h>
#include <dxgi1_4.h>

#include <cstdio>
#include <cstring>

#include "dynlib.h"
#include "probe.h"

namespace strata {
namespace {

template <class T>
void release(T*& p) {
  if (p) p->Release();
  p = nullptr;
}

std::string narrow(const wchar_t* w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
  std::string s(n > 0 ? static_cast<size_t>(n - 1) : 0, '\0');
  if (n > 1) WideCharToMultiByte(CP_UTF8, 0, w, -1, &s[0], n, nullptr, nullptr);
  return s;
}

// The LUID's bytes in memory order, as Vulkan's deviceLUID reports them.
std::string luidHex(const LUID& l) {
  unsigned char b[sizeof(LUID)];
  std::memcpy(b, &l, sizeof b);
  char out[2 * sizeof(LUID) + 1];
  for (size_t i = 0; i < sizeof b; ++i) std::snprintf(out + 2 * i, 3, "%02x", b[i]);
  return out;
}

}  // namespace

void probeDxgi(const ProbeOptions&, std::vector<Device>& out, BackendStatus& st) {
  DynLib lib;
  std::string error;
  if (!lib.open({"dxgi.dll"}, &error)) {
    st.status = "absent";
    st.detail = error;
    return;
  }
  st.library = lib.path();
  HRESULT(WINAPI * create)(REFIID, void**) = nullptr;
  if (!lib.sym("CreateDXGIFactory1", &create)) {
    st.status = "error";
    st.detail = "dxgi.dll has no CreateDXGIFactory1";
    return;
  }
  IDXGIFactory1* factory = nullptr;
  HRESULT hr = create(__uuidof(IDXGIFactory1), reinterpret_cast<void**>(&factory));
  if (FAILED(hr)) {
    st.status = "error";
    char buf[64];
    std::snprintf(buf, sizeof buf, "CreateDXGIFactory1: HRESULT 0x%08lx", static_cast<unsigned long>(hr));
    st.detail = buf;
    return;
  }
  int index = 0;
  IDXGIAdapter1* adapter = nullptr;
  for (UINT i = 0; factory->EnumAdapters1(i, &adapter) != DXGI_ERROR_NOT_FOUND; ++i) {
    DXGI_ADAPTER_DESC1 desc{};
    if (FAILED(adapter->GetDesc1(&desc)) || (desc.Flags & DXGI_ADAPTER_FLAG_SOFTWARE)) {
      release(adapter);  // the Microsoft Basic Render Driver is no GPU
      continue;
    }
    Device d;
    d.backend = "dxgi";
    d.index = index++;
    d.name = narrow(desc.Description);
    d.vendorId = desc.VendorId;
    d.luid = luidHex(desc.AdapterLuid);
    d.totalBytes = static_cast<uint64_t>(desc.DedicatedVideoMemory);
    IDXGIAdapter3* a3 = nullptr;
    if (SUCCEEDED(adapter->QueryInterface(__uuidof(IDXGIAdapter3), reinterpret_cast<void**>(&a3)))) {
      DXGI_QUERY_VIDEO_MEMORY_INFO local{};
      if (SUCCEEDED(a3->QueryVideoMemoryInfo(0, DXGI_MEMORY_SEGMENT_GROUP_LOCAL, &local))) {
        uint64_t avail = local.Budget > local.CurrentUsage ? local.Budget - local.CurrentUsage : 0;
        d.freeBytes = avail;
        d.budgetBytes = avail;
        d.memorySource = "dxgi-budget";
      }
      release(a3);
    }
    out.push_back(d);
    release(adapter);
  }
  release(factory);
  st.detail = std::to_string(index) + " adapter(s)";
  if (index == 0) st.status = "absent";
}

}  // namespace strata
