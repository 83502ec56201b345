#!/usr/bin/env bash
# Planner accuracy on the GPU machine, in one command (needs cmake, nvcc, python3; no node):
#   bash bench/models-gpu/run.sh            (with .models-gpu/ carried; make it with bench/models-gpu-prepare.ts)
# Builds a CUDA llama-server from the carried llama.cpp source (kept in $WORK between runs),
# rebuilds the 32B/70B shape GGUFs as sparse files, asks llama-server what it allocates for
# each case, and writes $OUT/gpu-results.json (compare with: npx tsx bench/models-accuracy.ts --gpu <file>).
# MODE=dry skips the real loads (dry runs only take seconds).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CARRY=${CARRY:-$ROOT/.models-gpu}
WORK=${WORK:-/tmp/strata-models-gpu}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
[ -f "$CARRY/cases.json" ] || { echo "no $CARRY/cases.json: run 'npx tsx bench/models-gpu-prepare.ts' and carry .models-gpu" >&2; exit 2; }

if [ ! -x "$WORK/build/bin/llama-server" ]; then
  t0=$(date +%s)
  rm -rf "$WORK/llama.cpp"
  tar -xJf "$CARRY/llama.cpp.tar.xz" -C "$WORK"
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S "$WORK/llama.cpp" -B "$WORK/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90} -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$OUT/cmake.log" 2>&1 || { tail -40 "$OUT/cmake.log"; exit 1; }
  cmake --build "$WORK/build" --target llama-server -j"$(nproc)" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  echo "built llama-server in $(( $(date +%s) - t0 )) s"
fi
python3 "$HERE/materialize.py" "$CARRY" "$WORK/shapes"
python3 "$HERE/measure.py" --server "$WORK/build/bin/llama-server" --cases "$CARRY/cases.json" \
  --shapes "$WORK/shapes" --out "$OUT/gpu-results.json" --mode "${MODE:-both}"
