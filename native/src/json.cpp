// ProbeResult -> JSON. One serialiser for the addon (which hands the string to JSON.parse) and
// the CLI, so both print exactly the same thing.
#include <cstdio>
#include <sstream>

#include "probe.h"

namespace strata {
namespace {

// Device names come from drivers: escape everything JSON requires, pass other bytes through.
void str(std::ostringstream& o, const std::string& s) {
  o << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': o << "\\\""; break;
      case '\\': o << "\\\\"; break;
      case '\n': o << "\\n"; break;
      case '\r': o << "\\r"; break;
      case '\t': o << "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o << buf;
        } else {
          o << static_cast<char>(c);
        }
    }
  }
  o << '"';
}

class Obj {
 public:
  Obj(std::ostringstream& o, bool pretty, int depth) : o_(o), pretty_(pretty), depth_(depth) { o_ << '{'; }
  ~Obj() {
    if (pretty_ && !first_) nl(depth_);
    o_ << '}';
  }
  std::ostringstream& key(const char* k) {
    if (!first_) o_ << ',';
    first_ = false;
    if (pretty_) nl(depth_ + 1);
    str(o_, k);
    o_ << (pretty_ ? ": " : ":");
    return o_;
  }
  void s(const char* k, const std::string& v) { str(key(k), v); }
  void sOrNull(const char* k, const std::string& v) {
    if (v.empty()) key(k) << "null";
    else s(k, v);
  }
  void n(const char* k, uint64_t v) { key(k) << v; }
  void n(const char* k, const std::optional<uint64_t>& v) {
    if (v) key(k) << *v;
    else key(k) << "null";
  }
  void b(const char* k, const std::optional<bool>& v) { key(k) << (v ? (*v ? "true" : "false") : "null"); }
  void nl(int d) {
    o_ << '\n';
    for (int i = 0; i < d; ++i) o_ << "  ";
  }
  int depth() const { return depth_; }
  bool pretty() const { return pretty_; }

 private:
  std::ostringstream& o_;
  bool pretty_;
  int depth_;
  bool first_ = true;
};

void pool(Obj& parent, const char* k, const std::optional<MemPool>& p, std::ostringstream& o) {
  if (!p) return;
  parent.key(k);
  Obj v(o, false, 0);
  v.n("totalBytes", p->totalBytes);
  v.n("usedBytes", p->usedBytes);
}

}  // namespace

std::string toJson(const ProbeResult& r, bool pretty) {
  std::ostringstream o;
  {
    Obj root(o, pretty, 0);
    root.n("schema", 1);
    root.key("system");
    {
      Obj s(o, false, 0);
      s.n("totalBytes", r.system.totalBytes);
      s.n("availableBytes", r.system.availableBytes);
      s.s("source", r.system.source);
    }
    root.key("devices") << '[';
    for (size_t i = 0; i < r.devices.size(); ++i) {
      const Device& d = r.devices[i];
      if (i) o << ',';
      if (pretty) root.nl(2);
      Obj v(o, false, 0);
      v.s("backend", d.backend);
      v.n("index", static_cast<uint64_t>(d.index));
      v.s("name", d.name);
      v.sOrNull("architecture", d.architecture);
      v.b("integrated", d.integrated);
      v.n("totalBytes", d.totalBytes);
      v.n("freeBytes", d.freeBytes);
      v.n("budgetBytes", d.budgetBytes);
      v.sOrNull("memorySource", d.memorySource);
      v.sOrNull("pciBusId", d.pciBusId);
      if (!d.luid.empty()) v.s("luid", d.luid);
      if (d.vendorId) v.s("vendorId", hexId(*d.vendorId));
      if (!d.driverVersion.empty()) v.s("driverVersion", d.driverVersion);
      if (d.maxStorageBufferBytes) v.n("maxStorageBufferBytes", d.maxStorageBufferBytes);
      pool(v, "vram", d.vram, o);
      pool(v, "gtt", d.gtt, o);
    }
    if (pretty && !r.devices.empty()) root.nl(1);
    o << ']';
    root.key("backends") << '[';
    for (size_t i = 0; i < r.backends.size(); ++i) {
      const BackendStatus& b = r.backends[i];
      if (i) o << ',';
      if (pretty) root.nl(2);
      Obj v(o, false, 0);
      v.s("backend", b.backend);
      v.s("status", b.status);
      if (!b.detail.empty()) v.s("detail", b.detail);
      if (!b.library.empty()) v.s("library", b.library);
      if (!b.version.empty()) v.s("version", b.version);
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.1f", b.ms);
      v.key("ms") << ms;
    }
    if (pretty && !r.backends.empty()) root.nl(1);
    o << ']';
  }
  return o.str();
}

}  // namespace strata
