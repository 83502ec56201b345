#!/usr/bin/env bash
# CUDA vs Vulkan on one NVIDIA GPU (device kind nvidia-h200): the pinned llama.cpp built for both
# backends, llama-bench pp512/tg128 (-ngl 99 -fa 1) on the 32B shape, and what each backend
# reports about the device. Prepare the carry here first: npx tsx bench/vulkan-gpu-prepare.ts
#
#   bash bench/vulkan-gpu.sh build-cuda     CUDA build of llama-bench + llama-server (~5 min on 16 cores)
#   bash bench/vulkan-gpu.sh build-vulkan   unpack Debian 13's glslc/headers/loader, Vulkan build (minutes)
#   bash bench/vulkan-gpu.sh bench          --list-devices of both, llama-bench on both (REPS=3)
# Each phase fits one 10-minute device command; builds stay in $WORK while the machine is warm.
# Results: $OUT/vulkan-gpu.json and the raw outputs in $OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CARRY=${CARRY:-$ROOT/.gpu}
WORK=${WORK:-/tmp/strata-vulkan-gpu}
OUT=${OUT:-$WORK/out}
SDK=$WORK/vulkan-sdk
mkdir -p "$WORK" "$OUT"
[ -d "$CARRY/vulkan-debs" ] || { echo "no $CARRY/vulkan-debs: run 'npx tsx bench/vulkan-gpu-prepare.ts' here and carry .gpu" >&2; exit 2; }

src() {
  if [ ! -f "$WORK/llama.cpp/CMakeLists.txt" ]; then
    rm -rf "$WORK/llama.cpp" && mkdir -p "$WORK/llama.cpp" && tar -xJf "$CARRY/llama-src.tar.xz" -C "$WORK/llama.cpp"
  fi
}

cmake_build() { # dir label defines...
  local dir=$1 label=$2; shift 2
  local t0; t0=$(date +%s)
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S "$WORK/llama.cpp" -B "$dir" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_RPC=ON -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "$@" >"$OUT/cmake-$label.log" 2>&1 || { tail -40 "$OUT/cmake-$label.log"; exit 1; }
  local t1; t1=$(date +%s)
  cmake --build "$dir" --target llama-bench llama-server -j"$(nproc)" >"$OUT/build-$label.log" 2>&1 || { tail -40 "$OUT/build-$label.log"; exit 1; }
  echo "$label: configure $((t1 - t0)) s, build $(( $(date +%s) - t1 )) s"
}

# Debian 13's glslc runs under its own loader and libc (it needs glibc 2.38); headers and the
# Vulkan loader (libvulkan.so.1, also glibc 2.38: Ubuntu 24.04 has 2.39) come from the same
# release. nvidia_icd.json is the machine's. Checked here: the .debs unpack, the wrapped glslc
# compiles the shader Debian 12's cannot; the builds and the bench have not run on a GPU yet.
sdk() {
  if [ ! -x "$SDK/bin/glslc" ]; then
    rm -rf "$SDK" && mkdir -p "$SDK/root" "$SDK/bin" "$SDK/lib"
    for d in "$CARRY"/vulkan-debs/*.deb; do dpkg-deb -x "$d" "$SDK/root"; done
    L=$SDK/root/usr/lib/x86_64-linux-gnu
    printf '#!/bin/sh\nexec "%s/ld-linux-x86-64.so.2" --library-path "%s" "%s/root/usr/bin/glslc" "$@"\n' "$L" "$L" "$SDK" > "$SDK/bin/glslc"
    chmod +x "$SDK/bin/glslc"
    ln -s root/usr/include "$SDK/include"; ln -s root/usr/share "$SDK/share"
    ln -s "$L/libvulkan.so.1" "$SDK/lib/libvulkan.so"
    mkdir -p "$SDK/loader" && cp -P "$L"/libvulkan.so.1* "$SDK/loader/"
  fi
  "$SDK/bin/glslc" --version | head -1
}

phase_build_cuda() { src; [ -x "$WORK/build-cuda/bin/llama-bench" ] || cmake_build "$WORK/build-cuda" cuda -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}"; }
phase_build_vulkan() {
  src; sdk
  [ -x "$WORK/build-vulkan/bin/llama-bench" ] || VULKAN_SDK=$SDK cmake_build "$WORK/build-vulkan" vulkan -DGGML_VULKAN=ON
}

phase_bench() {
  sdk >/dev/null
  python3 "$ROOT/bench/models-gpu/materialize.py" "$CARRY/vulkan" "$WORK/models"
  local m=$WORK/models/qwen2.5-coder-32b-Q4_K_M.gguf
  export LD_LIBRARY_PATH=$SDK/loader${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi --query-gpu=index,name,memory.free,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
  for b in cuda vulkan; do
    "$WORK/build-$b/bin/llama-server" --list-devices 2>&1 | tee "$OUT/list-devices-$b.txt"
    "$WORK/build-$b/bin/llama-bench" -m "$m" -p 512 -n 128 -ngl 99 -fa 1 -r "${REPS:-3}" -o json >"$OUT/bench-$b.json" 2>"$OUT/bench-$b.log" || { tail -30 "$OUT/bench-$b.log"; exit 1; }
  done
  python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]; rows = {}
for b in ('cuda', 'vulkan'):
    for r in json.load(open(os.path.join(out, f'bench-{b}.json'))):
        rows.setdefault(b, {})['pp' if r['n_prompt'] else 'tg'] = (r['avg_ts'], r['stddev_ts'], r.get('backends'), r.get('gpu_info'))
json.dump(rows, open(os.path.join(out, 'vulkan-gpu.json'), 'w'), indent=1)
print('| backend | pp512 tok/s | tg128 tok/s | llama-bench backends | gpu |')
print('| --- | --- | --- | --- | --- |')
for b, r in rows.items():
    print(f"| {b} | {r['pp'][0]:.1f} ± {r['pp'][1]:.1f} | {r['tg'][0]:.2f} ± {r['tg'][1]:.2f} | {r['pp'][2]} | {r['pp'][3]} |")
PY
}

[ $# -gt 0 ] || { echo "usage: $0 build-cuda | build-vulkan | bench" >&2; exit 2; }
for phase in "$@"; do
  case "$phase" in
    build-cuda) phase_build_cuda ;;
    build-vulkan) phase_build_vulkan ;;
    bench) phase_bench ;;
    *) echo "usage: $0 build-cuda | build-vulkan | bench" >&2; exit 2 ;;
  esac
done
