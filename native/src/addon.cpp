// Node bindings (N-API through node-addon-api). The TypeScript wrapper in src/core/native is the
// only intended caller; it validates arguments and turns these raw results into typed ones.
//
//   abiVersion: number                         bumped when anything below changes shape
//   guardKind: "pdeathsig" | "kqueue-watcher" | "job-object"
//   probeAccelerators(opts?) -> Promise<string>  the probe's JSON (one serialiser for addon and CLI)
//   spawnGuarded(file, args, opts, onExit(code, signal)) -> pid
//       opts.stdio[i]: null (null device) | fd | "path" | { connect: "socket or pipe path" }
//   setExitWatchRef(pid, ref)                  like ChildProcess.ref()/unref()
//
// Exit notification: no ChildProcess exists for these children, so a thread per child waits
// for the exit without reaping (waitid WNOWAIT / WaitForSingleObject) and hands over to the JS
// thread through a ThreadSafeFunction; the reap happens there, right before onExit runs, so JS
// never sees a pid that may already belong to someone else. libuv's SIGCHLD handler only
// waitpid()s the pids it spawned itself, so it neither steals these exits nor loses its own.
#include <napi.h>

#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "guard.h"
#include "probe.h"

namespace {

constexpr int ABI_VERSION = 1;

std::string optString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

class ProbeWorker : public Napi::AsyncWorker {
 public:
  ProbeWorker(Napi::Env env, strata::ProbeOptions o)
      : Napi::AsyncWorker(env, "strataProbe"), opts_(std::move(o)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  // On a libuv worker thread: vendor runtimes can take seconds to initialise.
  void Execute() override { json_ = strata::toJson(strata::probeAll(opts_)); }
  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), json_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  strata::ProbeOptions opts_;
  Napi::Promise::Deferred deferred_;
  std::string json_;
};

Napi::Value ProbeAccelerators(const Napi::CallbackInfo& info) {
  strata::ProbeOptions o;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object a = info[0].As<Napi::Object>();
    o.cudaLib = optString(a, "cudaLib");
    o.nvmlLib = optString(a, "nvmlLib");
    o.hipLib = optString(a, "hipLib");
    o.vulkanLib = optString(a, "vulkanLib");
    o.vulkanCpu = a.Get("vulkanCpu").ToBoolean().Value();
    std::string root = optString(a, "sysfsRoot");
    if (!root.empty()) o.sysfsRoot = root;
    Napi::Value b = a.Get("backends");
    if (b.IsArray()) {
      Napi::Array arr = b.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value v = arr.Get(i);
        if (v.IsString()) o.only.insert(v.As<Napi::String>().Utf8Value());
      }
    }
  }
  auto* w = new ProbeWorker(info.Env(), std::move(o));  // AsyncWorker deletes itself when done
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// One per running child. Shared by its waiter thread and the table below.
struct Watch {
  strata::Child child;
  Napi::ThreadSafeFunction tsfn;
};
// Touched only on the JS main thread (spawnGuarded refuses other threads where that matters).
std::unordered_map<int, std::shared_ptr<Watch>> watches;

strata::StdioSpec stdioSpec(const Napi::Value& v) {
  strata::StdioSpec s;
  if (v.IsNumber()) {
    s.kind = strata::StdioSpec::Fd;
    s.fd = v.As<Napi::Number>().Int32Value();
  } else if (v.IsString()) {
    s.kind = strata::StdioSpec::Path;
    s.path = v.As<Napi::String>().Utf8Value();
  } else if (v.IsObject() && v.As<Napi::Object>().Get("connect").IsString()) {
    s.kind = strata::StdioSpec::Connect;
    s.path = v.As<Napi::Object>().Get("connect").As<Napi::String>().Utf8Value();
  }
  return s;  // null/undefined: the null device
}

Napi::Value SpawnGuarded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsObject() || !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "spawnGuarded(file: string, args: string[], opts: object, onExit: function)");
  }
  strata::SpawnRequest req;
  req.file = info[0].As<Napi::String>().Utf8Value();
  Napi::Array args = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < args.Length(); ++i) req.args.push_back(args.Get(i).ToString().Utf8Value());
  Napi::Object o = info[2].As<Napi::Object>();
  if (o.Get("cwd").IsString()) req.cwd = optString(o, "cwd");
  Napi::Value envv = o.Get("env");
  if (envv.IsArray()) {
    std::vector<std::string> env;
    Napi::Array arr = envv.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) env.push_back(arr.Get(i).ToString().Utf8Value());
    req.env = std::move(env);
  }
  Napi::Value stdio = o.Get("stdio");
  if (stdio.IsArray()) {
    Napi::Array arr = stdio.As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < arr.Length(); ++i) req.stdio[i] = stdioSpec(arr.Get(i));
  }
  Napi::Value group = o.Get("newProcessGroup");
  if (group.IsBoolean()) req.newProcessGroup = group.As<Napi::Boolean>().Value();

  strata::Child child;
  try {
    child = strata::spawnGuarded(req);
  } catch (const strata::SpawnError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", e.code);
    err.Set("errno", static_cast<double>(-e.err));
    err.Set("syscall", e.syscall);
    err.Set("path", req.file);
    throw err;
  }

  auto w = std::make_shared<Watch>();
  w->child = child;
  w->tsfn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "strataExitWatch", 0, 1);
  watches[child.pid] = w;
  std::thread([w]() {
    strata::waitForExit(w->child);
    w->tsfn.BlockingCall([w](Napi::Env env, Napi::Function onExit) {
      strata::ExitStatus st = strata::reapExit(w->child);
      watches.erase(w->child.pid);
      onExit.Call({st.code ? Napi::Value(Napi::Number::New(env, *st.code)) : env.Null(),
                   st.signal ? Napi::Value(Napi::Number::New(env, *st.signal)) : env.Null()});
    });
    w->tsfn.Release();
  }).detach();
  return Napi::Number::New(env, child.pid);
}

Napi::Value SetExitWatchRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "setExitWatchRef(pid, ref)");
  auto it = watches.find(info[0].As<Napi::Number>().Int32Value());
  if (it != watches.end()) {
    if (info[1].ToBoolean().Value()) it->second->tsfn.Ref(env);
    else it->second->tsfn.Unref(env);
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, ABI_VERSION));
  exports.Set("guardKind", Napi::String::New(env, strata::guardKind()));
  exports.Set("probeAccelerators", Napi::Function::New(env, ProbeAccelerators, "probeAccelerators"));
  exports.Set("spawnGuarded", Napi::Function::New(env, SpawnGuarded, "spawnGuarded"));
  exports.Set("setExitWatchRef", Napi::Function::New(env, SetExitWatchRef, "setExitWatchRef"));
  return exports;
}

}  // namespace

NODE_API_MODULE(strata_native, Init)
