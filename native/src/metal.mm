// Apple GPUs through Metal. recommendedMaxWorkingSetSize is the figure llama.cpp's Metal backend
// plans against: on Apple silicon it is the share of unified memory (about 2/3 to 3/4 of RAM) the
// GPU may keep resident, so it, not RAM, is the device's total. Metal is weak-linked: a system
// without it would report the backend absent instead of failing to load the addon.
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#include <dlfcn.h>

#include "probe.h"

namespace strata {

void probeMetal(const ProbeOptions&, std::vector<Device>& out, BackendStatus& st) {
  // Looked up rather than compared with nullptr: the compiler may assume a non-weak function exists.
  if (!dlsym(RTLD_DEFAULT, "MTLCopyAllDevices")) {
    st.status = "absent";
    st.detail = "Metal.framework is not available";
    return;
  }
  int index = 0;
  @autoreleasepool {
    NSArray<id<MTLDevice>>* devices = MTLCopyAllDevices();  // +1: released below (no ARC here)
    for (id<MTLDevice> dev in devices) {
      Device d;
      d.backend = "metal";
      d.index = index++;
      d.name = dev.name ? std::string(dev.name.UTF8String) : "Apple GPU";
      if ([dev respondsToSelector:@selector(hasUnifiedMemory)]) d.integrated = static_cast<bool>(dev.hasUnifiedMemory);
      if (@available(macOS 14.0, *)) {
        if (dev.architecture.name) d.architecture = dev.architecture.name.UTF8String;  // "applegpu_g14s"
      }
      uint64_t working = dev.recommendedMaxWorkingSetSize;
      d.totalBytes = working;
      uint64_t used = dev.currentAllocatedSize;  // this process only: other apps are not counted
      d.freeBytes = working > used ? working - used : 0;
      d.budgetBytes = d.freeBytes;
      d.memorySource = "recommendedMaxWorkingSetSize";
      out.push_back(d);
    }
    [devices release];
  }
  if (index == 0) {
    st.status = "absent";
    st.detail = "no Metal device";
  } else {
    st.detail = std::to_string(index) + " device(s)";
  }
}

}  // namespace strata
