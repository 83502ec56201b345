// strata_probe: the accelerator probe without Node, for machines where node is not installed
// (a GPU box to compare against nvidia-smi) and for tests. Prints the JSON the addon returns.
//
//   strata_probe [--pretty] [--tsv] [--backends cuda,hip,...]
//   env: STRATA_CUDA_LIB STRATA_NVML_LIB STRATA_HIP_LIB STRATA_VULKAN_LIB STRATA_SYSFS_ROOT
//        STRATA_VULKAN_CPU=1 (list software Vulkan devices too)
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include "probe.h"

int main(int argc, char** argv) {
  strata::ProbeOptions o;
  bool pretty = false, tsv = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pretty") pretty = true;
    else if (a == "--tsv") tsv = true;
    else if (a == "--backends" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string b;
      while (std::getline(ss, b, ',')) o.only.insert(b);
    } else {
      std::fprintf(stderr, "usage: %s [--pretty] [--tsv] [--backends cuda,hip,vulkan,amdgpu,dxgi,metal,cpu]\n", argv[0]);
      return 2;
    }
  }
  o.cudaLib = strata::envOr("STRATA_CUDA_LIB", "");
  o.nvmlLib = strata::envOr("STRATA_NVML_LIB", "");
  o.hipLib = strata::envOr("STRATA_HIP_LIB", "");
  o.vulkanLib = strata::envOr("STRATA_VULKAN_LIB", "");
  o.sysfsRoot = strata::envOr("STRATA_SYSFS_ROOT", "/sys");
  o.vulkanCpu = strata::envOr("STRATA_VULKAN_CPU", "") == "1";

  strata::ProbeResult r = strata::probeAll(o);
  if (tsv) {
    // One line per device, numbers in bytes, "-" for unknown: easy to join with nvidia-smi in awk.
    auto num = [](const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : std::string("-"); };
    std::printf("backend\tindex\tpciBusId\ttotalBytes\tfreeBytes\tbudgetBytes\tmemorySource\tname\n");
    for (const auto& d : r.devices) {
      std::printf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.backend.c_str(), d.index, d.pciBusId.empty() ? "-" : d.pciBusId.c_str(),
                  num(d.totalBytes).c_str(), num(d.freeBytes).c_str(), num(d.budgetBytes).c_str(),
                  d.memorySource.empty() ? "-" : d.memorySource.c_str(), d.name.c_str());
    }
    for (const auto& b : r.backends) std::fprintf(stderr, "# %s: %s %s\n", b.backend.c_str(), b.status.c_str(), b.detail.c_str());
    return 0;
  }
  std::printf("%s\n", strata::toJson(r, pretty).c_str());
  return 0;
}
