#!/usr/bin/env bash
# Cluster figures on a machine with two NVIDIA GPUs (nvidia-h200-x2): rpc-server on GPU1 as the
# peer (run by strata-peer, reached directly or through Strata's encrypted tunnel), llama.cpp on
# GPU0. Needs cmake, nvcc (CUDA), python3; node is carried (.gpu/node.xz). Prepare the carry here
# first: npx tsx bench/cluster-gpu-prepare.ts   (fills .gpu/; see bench/README.md "Cluster on two GPUs").
#
#   bash bench/cluster-gpu.sh build     CUDA build of llama-bench, llama-server, ggml-rpc-server (~5 min)
#   bash bench/cluster-gpu.sh 32b       32B split: one GPU, bare rpc-server + manual -ts sweep, Strata direct/tunnel (~4 min)
#   bash bench/cluster-gpu.sh 70b       the same for the 70B shape (~7 min)
#   bash bench/cluster-gpu.sh place     32B twice: one per GPU (placement through the agent) vs both on GPU0 (~3 min)
#   bash bench/cluster-gpu.sh all       everything (too long for one 10-minute device command)
# Several phases in one call: bash bench/cluster-gpu.sh build 32b   then   bash bench/cluster-gpu.sh 70b place
# (a phase builds first if the machine is fresh). The build and the models stay in $WORK while the
# machine is warm. Results: $OUT/cluster-<phase>.json (+ the logs in $WORK). REPS=3 by default.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CARRY=${CARRY:-$ROOT/.gpu}
WORK=${WORK:-/tmp/strata-cluster-gpu}
OUT=${OUT:-$WORK/out}
BIN=$WORK/build/bin
NODE=$WORK/node
mkdir -p "$WORK" "$OUT"
[ -f "$CARRY/cluster/peer.js" ] || { echo "no $CARRY/cluster/peer.js: run 'npx tsx bench/cluster-gpu-prepare.ts' here and carry .gpu" >&2; exit 2; }

build() {
  if [ ! -x "$NODE" ]; then xz -dc "$CARRY/node.xz" > "$NODE.tmp" && chmod +x "$NODE.tmp" && mv "$NODE.tmp" "$NODE"; fi
  "$NODE" --version
  if [ ! -x "$BIN/llama-bench" ] || [ ! -x "$BIN/ggml-rpc-server" ] || [ ! -x "$BIN/llama-server" ]; then
    t0=$(date +%s)
    rm -rf "$WORK/llama.cpp" && mkdir -p "$WORK/llama.cpp"
    tar -xJf "$CARRY/llama-src.tar.xz" -C "$WORK/llama.cpp"
    GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
    cmake -S "$WORK/llama.cpp" -B "$WORK/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DGGML_RPC=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$WORK/cmake.log" 2>&1 || { tail -40 "$WORK/cmake.log"; exit 1; }
    cmake --build "$WORK/build" --target llama-bench llama-server ggml-rpc-server -j"$(nproc)" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
    echo "built llama.cpp (CUDA) in $(( $(date +%s) - t0 )) s"
  fi
  python3 "$ROOT/bench/models-gpu/materialize.py" "$CARRY/cluster" "$WORK/models"
  nvidia-smi --query-gpu=index,name,memory.free,memory.total --format=csv
}

run() { # what model tag
  build >"$WORK/build-phase.log" 2>&1 || { cat "$WORK/build-phase.log"; exit 1; }
  python3 "$HERE/cluster-gpu.py" "$1" --model "$WORK/models/$2" --bin "$BIN" --node "$NODE" \
    --peer-js "$CARRY/cluster/peer.js" --plan-js "$CARRY/cluster/plan.js" --work "$WORK/$3" --out "$OUT/cluster-$3.json" --reps "${REPS:-3}"
}

[ $# -gt 0 ] || set -- all
for phase in "$@"; do
  case "$phase" in
    build) build ;;
    32b) run split qwen2.5-coder-32b-Q4_K_M.gguf 32b ;;
    70b) run split llama-3.3-70b-Q4_K_M.gguf 70b ;;
    place) run place qwen2.5-coder-32b-Q4_K_M.gguf place ;;
    all) build; run split qwen2.5-coder-32b-Q4_K_M.gguf 32b; run split llama-3.3-70b-Q4_K_M.gguf 70b; run place qwen2.5-coder-32b-Q4_K_M.gguf place ;;
    *) echo "usage: $0 [build] [32b] [70b] [place] | all" >&2; exit 2 ;;
  esac
done
