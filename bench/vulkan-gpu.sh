#!/usr/bin/env bash
# CUDA vs Vulkan on one NVIDIA GPU (device kind nvidia-h200): the pinned llama.cpp built for both
# backends; the same device in three views (the native probe, llama-server --list-devices, the
# planner: bench/vulkan-gpu-compare.ts); llama-bench pp512/tg128 (-ngl 99 -fa 1) on the 32B shape;
# the planner's buffers on Vulkan0 against llama.cpp's (32B and 70B Q4_K_M shapes).
#
# Here first:  npx tsx bench/vulkan-gpu-prepare.ts     (fills .gpu/, 19.1 MiB; with the tracked tree,
#              33.8 MiB of which is test/fixtures/model/strata-test-coder.gguf, 52.9 MiB: under the
#              64 MiB carry limit without moving that file)
# Then the device `run` tool, kind nvidia-h200, timeout_s 600, back to back (the builds live in
# /tmp/strata-vulkan-gpu, which survives only while the machine stays warm), every call with
#   carry [".gpu/llama-src.tar.xz", ".gpu/vulkan-debs", ".gpu/vulkan"]
# (these three only: other prepare scripts leave more in .gpu/, e.g. a 43 MiB .gpu/model):
#   A  bash bench/vulkan-gpu.sh build
#        CUDA (sm_90) and Vulkan builds of llama-bench + llama-server side by side, and the probe CLI
#   B  bash bench/vulkan-gpu.sh build probe bench memory
#        build: resumes whatever A did not finish (nothing to do when A did); then the three views,
#        llama-bench on both backends, the planner-accuracy cases on Vulkan0
#   C  only if $OUT/phases.txt of B says a phase failed, was cut or skipped: `build` followed by
#      just those phases, e.g. bash bench/vulkan-gpu.sh build memory  (finished builds and the
#      materialized shapes are kept; a phase redoes its own work; keep B's files, C's are new).
#      If the machine went cold in between, every call starts with the builds again: A, then B.
# Every call stops by itself within BUDGET (580 s): each phase runs under `timeout` with what is
# left; $OUT/phases.txt says per phase ok / failed (rc) / cut / skipped and how long it took.
# Raw outputs, all in $OUT: cmake-*.log build-*.log times.txt toolchain.txt (builds); probe-vulkan.json
# probe-all.json probe.tsv list-devices-{vulkan,cuda}.txt nvidia-smi.csv, and from A already
# probe-early.tsv vulkan-icd.txt (+ vulkan-loader-debug.txt when no Vulkan device is seen)
# (views); bench-*.json bench-*.log vulkan-gpu.json (bench); memory-vulkan.json (memory). Back here:
#   npx tsx bench/vulkan-gpu-compare.ts <files_at>
#   npx tsx bench/models-accuracy.ts --gpu <files_at>/memory-vulkan.json --cases .gpu/vulkan/cases.json --device Vulkan0
#
# Overrides for a check elsewhere (e.g. lavapipe on a dev machine): BUILD_VULKAN / BUILD_CUDA = a
# finished build folder (bin/llama-server) used as is; VK_LOADER_DIR = folder of the libvulkan.so.1
# to use, "system" for the machine's own (the carried Debian 13 loader needs glibc 2.38);
# GGML_VK_VISIBLE_DEVICES=0 makes llama.cpp and the probe take a CPU Vulkan device; BENCH_MODEL =
# the GGUF llama-bench runs instead of the 32B shape; REPS (3); MODE=dry: memory without loads.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CARRY=${CARRY:-$ROOT/.gpu}
WORK=${WORK:-/tmp/strata-vulkan-gpu}
OUT=${OUT:-$WORK/out}
SDK=$WORK/vulkan-sdk
BUILD_CUDA=${BUILD_CUDA:-$WORK/build-cuda}
BUILD_VULKAN=${BUILD_VULKAN:-$WORK/build-vulkan}
PROBE_BUILD=$WORK/probe-build
BUDGET=${BUDGET:-580}
mkdir -p "$WORK" "$OUT"
[ -d "$CARRY/vulkan-debs" ] || { echo "no $CARRY/vulkan-debs: run 'npx tsx bench/vulkan-gpu-prepare.ts' here and carry .gpu" >&2; exit 2; }

src() {
  if [ ! -f "$WORK/llama.cpp/.unpacked" ]; then
    rm -rf "$WORK/llama.cpp" && mkdir -p "$WORK/llama.cpp" && tar -xJf "$CARRY/llama-src.tar.xz" -C "$WORK/llama.cpp"
    touch "$WORK/llama.cpp/.unpacked"
  fi
}

built() { [ -x "$1/bin/llama-server" ] && [ -x "$1/bin/llama-bench" ]; }

cmake_build() { # dir label defines...
  local dir=$1 label=$2; shift 2
  local t0; t0=$(date +%s)
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S "$WORK/llama.cpp" -B "$dir" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_RPC=ON -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "$@" >"$OUT/cmake-$label.log" 2>&1 || { tail -40 "$OUT/cmake-$label.log"; return 1; }
  local t1; t1=$(date +%s)
  cmake --build "$dir" --target llama-bench llama-server -j"$(nproc)" >"$OUT/build-$label.log" 2>&1 || { tail -40 "$OUT/build-$label.log"; return 1; }
  echo "$label: configure $((t1 - t0)) s, build $(( $(date +%s) - t1 )) s (nproc $(nproc), shared with the other build when run by 'build')" | tee -a "$OUT/times.txt"
}

# Debian 13's glslc runs under its own loader and libc (it needs glibc 2.38); headers and the
# Vulkan loader (libvulkan.so.1, also glibc 2.38: Ubuntu 24.04 has 2.39) come from the same
# release. nvidia_icd.json is the machine's. Checked on Debian 12: the .debs unpack, the wrapped
# glslc compiles the shader Debian 12's cannot, llama.cpp's CMake configures against this folder.
sdk() {
  if [ ! -f "$SDK/.done" ]; then
    rm -rf "$SDK" && mkdir -p "$SDK/root" "$SDK/bin" "$SDK/lib"
    for d in "$CARRY"/vulkan-debs/*.deb; do dpkg-deb -x "$d" "$SDK/root"; done
    L=$SDK/root/usr/lib/x86_64-linux-gnu
    printf '#!/bin/sh\nexec "%s/ld-linux-x86-64.so.2" --library-path "%s" "%s/root/usr/bin/glslc" "$@"\n' "$L" "$L" "$SDK" > "$SDK/bin/glslc"
    chmod +x "$SDK/bin/glslc"
    ln -s root/usr/include "$SDK/include"; ln -s root/usr/share "$SDK/share"
    ln -s "$L/libvulkan.so.1" "$SDK/lib/libvulkan.so"
    mkdir -p "$SDK/loader" && cp -P "$L"/libvulkan.so.1* "$SDK/loader/"
    touch "$SDK/.done"
  fi
  "$SDK/bin/glslc" --version | sed -n 1p  # not head: glslc would die of SIGPIPE under pipefail
}

# The Vulkan loader every Vulkan process here uses (llama-server, llama-bench, the probe).
vk_env() {
  local dir=${VK_LOADER_DIR:-$SDK/loader}
  if [ "$dir" = system ]; then VK_LIB=; else
    sdk >/dev/null
    VK_LIB=$dir/libvulkan.so.1
    export LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  # Headless NVIDIA (no X server): the driver's own manifest names libGLX_nvidia.so.0, whose
  # vk_icdGetInstanceProcAddr then gives no vkCreateInstance; the same driver's EGL library works
  # (seen on the GPU machine, 2026-12-03). egl_icd is made once by vulkan_egl_fallback.
  if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$WORK/egl_icd.json" ]; then export VK_ICD_FILENAMES=$WORK/egl_icd.json; fi
}

# When the probe sees no Vulkan device through the machine's manifests, try one naming the
# NVIDIA driver's EGL library, and keep it for every later phase when it works.
vulkan_egl_fallback() {
  local P=$PROBE_BUILD/strata_probe
  STRATA_VULKAN_LIB=$VK_LIB "$P" --tsv 2>/dev/null | grep -q '^vulkan' && return 0
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"libEGL_nvidia.so.0","api_version":"1.4.312"}}\n' >"$WORK/egl_icd.json.try"
  if VK_ICD_FILENAMES=$WORK/egl_icd.json.try STRATA_VULKAN_LIB=$VK_LIB "$P" --tsv 2>/dev/null | grep -q '^vulkan'; then
    mv "$WORK/egl_icd.json.try" "$WORK/egl_icd.json"; export VK_ICD_FILENAMES=$WORK/egl_icd.json
    echo "Vulkan: the machine's ICD manifest gives no device; using $WORK/egl_icd.json (libEGL_nvidia.so.0)"
  else
    rm -f "$WORK/egl_icd.json.try"
  fi
}

phase_build_cuda() {
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
  src; built "$BUILD_CUDA" || cmake_build "$BUILD_CUDA" cuda -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}"
}
# The executables link against libggml-vulkan.so, which needs libvulkan.so.1: the GPU machine has
# none of its own, so the linker must find the carried one (ld searches LD_LIBRARY_PATH for a
# shared library's own dependencies; seen there: "libvulkan.so.1, needed by libggml-vulkan.so, not found").
phase_build_vulkan() { src; sdk; built "$BUILD_VULKAN" || LD_LIBRARY_PATH=$SDK/loader${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} VULKAN_SDK=$SDK cmake_build "$BUILD_VULKAN" vulkan -DGGML_VULKAN=ON; }
# The node-free CLI of the native addon (native/CMakeLists.txt: the same probe sources, no Node):
# its JSON is what probeAccelerators() returns to the planner.
phase_build_probe() {
  [ -x "$PROBE_BUILD/strata_probe" ] && return 0
  cmake -S "$ROOT/native" -B "$PROBE_BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake-probe.log" 2>&1 &&
    cmake --build "$PROBE_BUILD" --target strata_probe -j4 >"$OUT/build-probe.log" 2>&1 || { tail -20 "$OUT/build-probe.log" "$OUT/cmake-probe.log"; return 1; }
}

# Whether the carried loader finds the NVIDIA ICD (its manifest and the driver library it names),
# known after call A already: the ICD manifests, and the probe's view right after the CLI is built;
# when it sees no Vulkan device, the loader's own account of why.
vulkan_check() {
  vk_env
  { for f in /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
      if [ -f "$f" ]; then echo "== $f"; cat "$f"; fi
    done
    echo "== ldconfig"; ldconfig -p | grep -Ei 'libGLX_nvidia|libnvidia-glvkspirv|libvulkan' || true
  } >"$OUT/vulkan-icd.txt" 2>&1
  STRATA_VULKAN_LIB=$VK_LIB "$PROBE_BUILD/strata_probe" --tsv >"$OUT/probe-early.tsv" 2>&1 || true
  if ! grep -q '^vulkan' "$OUT/probe-early.tsv"; then
    vulkan_egl_fallback
    STRATA_VULKAN_LIB=$VK_LIB "$PROBE_BUILD/strata_probe" --tsv >"$OUT/probe-early-egl.tsv" 2>&1 || true
  fi
  if ! grep -q '^vulkan' "$OUT/probe-early.tsv" && [ -z "${VK_ICD_FILENAMES:-}" ]; then
    VK_LOADER_DEBUG=error,warn,info,driver STRATA_VULKAN_LIB=$VK_LIB "$PROBE_BUILD/strata_probe" --backends vulkan >"$OUT/vulkan-loader-debug.txt" 2>&1 || true
    echo "no Vulkan device seen: see vulkan-icd.txt and vulkan-loader-debug.txt"
  fi
  cat "$OUT/probe-early.tsv"
}

# Both llama.cpp builds at once (each -j nproc: the CUDA one is nvcc-bound, the Vulkan one waits on
# glslc and one long ggml-vulkan.cpp), plus the probe CLI. Sources and SDK are unpacked first.
phase_build() {
  { echo "nproc $(nproc)"; cmake --version | sed -n 1p; (nvcc --version || /usr/local/cuda/bin/nvcc --version) | tail -2
    ninja --version; gcc --version | sed -n 1p; ldd --version | sed -n 1p; } >"$OUT/toolchain.txt" 2>&1 || true
  src; sdk
  local rc=0 p c=0 v=0 q=0
  phase_build_cuda >"$OUT/build-cuda.txt" 2>&1 & c=$!
  phase_build_vulkan >"$OUT/build-vulkan.txt" 2>&1 & v=$!
  { phase_build_probe && vulkan_check; } >"$OUT/build-probe.txt" 2>&1 & q=$!
  for p in "cuda $c" "vulkan $v" "probe $q"; do
    set -- $p
    if wait "$2"; then echo "build $1: ok"; else echo "build $1: FAILED"; rc=1; fi
    cat "$OUT/build-$1.txt"
  done
  return $rc
}

phase_probe() {
  vk_env
  phase_build_probe
  vulkan_egl_fallback
  local P=$PROBE_BUILD/strata_probe
  date -u +%FT%TZ >"$OUT/probe-time.txt"
  # One after the other, so free memory is read at (nearly) the same moment by each view.
  STRATA_VULKAN_LIB=$VK_LIB "$P" --pretty --backends vulkan >"$OUT/probe-vulkan.json"
  "$BUILD_VULKAN/bin/llama-server" --list-devices >"$OUT/list-devices-vulkan.txt" 2>&1 || true
  STRATA_VULKAN_LIB=$VK_LIB "$P" --pretty >"$OUT/probe-all.json"
  STRATA_VULKAN_LIB=$VK_LIB "$P" --tsv >"$OUT/probe.tsv" 2>&1
  if built "$BUILD_CUDA"; then "$BUILD_CUDA/bin/llama-server" --list-devices >"$OUT/list-devices-cuda.txt" 2>&1 || true; fi
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,memory.free,memory.total,driver_version --format=csv >"$OUT/nvidia-smi.csv" || true
  fi
  cat "$OUT/list-devices-vulkan.txt" "$OUT/probe.tsv"
}

phase_bench() {
  vk_env
  python3 "$ROOT/bench/models-gpu/materialize.py" "$CARRY/vulkan" "$WORK/models"
  local m=${BENCH_MODEL:-$WORK/models/qwen2.5-coder-32b-Q4_K_M.gguf} b dir fail=0
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=index,name,memory.free,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"; fi
  for b in cuda vulkan; do
    dir=$BUILD_CUDA; [ $b = vulkan ] && dir=$BUILD_VULKAN
    built "$dir" || { echo "bench $b: no build in $dir, skipped"; continue; }
    "$dir/bin/llama-bench" -m "$m" -p 512 -n 128 -ngl 99 -fa 1 -r "${REPS:-3}" -o json >"$OUT/bench-$b.json" 2>"$OUT/bench-$b.log" || { tail -30 "$OUT/bench-$b.log"; rm -f "$OUT/bench-$b.json"; fail=1; }
  done
  python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]; rows = {}
for b in ('cuda', 'vulkan'):
    f = os.path.join(out, f'bench-{b}.json')
    if not os.path.exists(f): continue
    for r in json.load(open(f)):
        rows.setdefault(b, {})['pp' if r['n_prompt'] else 'tg'] = (r['avg_ts'], r['stddev_ts'], r.get('backends'), r.get('gpu_info'))
json.dump(rows, open(os.path.join(out, 'vulkan-gpu.json'), 'w'), indent=1)
print('| backend | pp512 tok/s | tg128 tok/s | llama-bench backends | gpu |')
print('| --- | --- | --- | --- | --- |')
for b, r in rows.items():
    print(f"| {b} | {r['pp'][0]:.1f} ± {r['pp'][1]:.1f} | {r['tg'][0]:.2f} ± {r['tg'][1]:.2f} | {r['pp'][2]} | {r['pp'][3]} |")
PY
  return $fail
}

# The planner-accuracy cases (.gpu/vulkan/cases.json) on the Vulkan build: --fit's dry-run table
# and the buffer lines of a real load, per case (measure.py writes after every case).
phase_memory() {
  vk_env
  python3 "$ROOT/bench/models-gpu/materialize.py" "$CARRY/vulkan" "$WORK/models"
  python3 "$ROOT/bench/models-gpu/measure.py" --server "$BUILD_VULKAN/bin/llama-server" --cases "$CARRY/vulkan/cases.json" \
    --shapes "$WORK/models" --out "$OUT/memory-vulkan.json" --mode "${MODE:-both}"
}

usage() { echo "usage: $0 PHASE... (build | build-cuda | build-vulkan | build-probe | probe | bench | memory)" >&2; exit 2; }
if [ "${1:-}" = --one ]; then
  case "$2" in
    build) phase_build ;; build-cuda) phase_build_cuda ;; build-vulkan) phase_build_vulkan ;; build-probe) phase_build_probe ;;
    probe) phase_probe ;; bench) phase_bench ;; memory) phase_memory ;; *) usage ;;
  esac
  exit
fi
[ $# -gt 0 ] || usage
for phase in "$@"; do case "$phase" in build | build-cuda | build-vulkan | build-probe | probe | bench | memory) ;; *) usage ;; esac; done

# Each phase in its own process group under `timeout` with the time left, so that the whole call
# ends within BUDGET even when a build or a load runs long; a cut phase leaves its logs in $OUT.
START=$(date +%s)
for phase in "$@"; do
  left=$(( START + BUDGET - $(date +%s) ))
  if [ "$left" -lt 15 ]; then echo "$phase: skipped (no time left)" | tee -a "$OUT/phases.txt"; continue; fi
  t0=$(date +%s); rc=0
  timeout -k 5 "$left" bash "$0" --one "$phase" || rc=$?
  took=$(( $(date +%s) - t0 ))
  case $rc in
    0) s=ok ;; 124 | 137) s="cut after $took s (budget)" ;; *) s="failed (rc $rc)" ;;
  esac
  echo "$phase: $s, ${took} s" | tee -a "$OUT/phases.txt"
done
