#!/usr/bin/env bash
# Compares the CUDA probe's total and free memory with nvidia-smi's, GPU by GPU, and checks that
# they agree within 1%. Runs where node is not installed: it only needs CMake, a C++ compiler,
# awk and the NVIDIA driver. Free memory is checked twice: through NVML (the probe's normal
# path) and with NVML hidden, through a CUDA primary context (the probe's fallback path, which
# itself occupies some memory, so it reads a little lower).
#
#   native/tools/gpu-compare.sh [path/to/strata_probe]     (builds it when not given)
set -euo pipefail
native=$(cd "$(dirname "$0")/.." && pwd)
probe=${1:-}
if [ -z "$probe" ]; then
  build=${STRATA_PROBE_BUILD:-/tmp/strata-probe-build}
  cmake -S "$native" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target strata_probe -j"$(nproc 2>/dev/null || echo 4)" >/dev/null
  probe=$build/strata_probe
fi

smi=$(nvidia-smi --query-gpu=pci.bus_id,memory.total,memory.free --format=csv,noheader,nounits)
echo "# nvidia-smi --query-gpu=pci.bus_id,memory.total,memory.free (MiB)"
echo "$smi"
echo "# strata_probe --backends cuda"
"$probe" --backends cuda --pretty
with_nvml=$("$probe" --backends cuda --tsv 2>/dev/null)
# A path that cannot exist hides NVML from the probe.
with_ctx=$(STRATA_NVML_LIB=/nonexistent/libnvidia-ml.so.1 "$probe" --backends cuda --tsv 2>/dev/null)

printf '%s\n---\n%s\n---\n%s\n' "$smi" "$with_nvml" "$with_ctx" | awk -F'\t' '
  function norm(id) { id = tolower(id); gsub(/ /, "", id); if (id ~ /^0000[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:/) id = substr(id, 5); return id }
  function pct(a, b) { return b == 0 ? 100 : (a - b) * 100.0 / b }
  function abs(x) { return x < 0 ? -x : x }
  BEGIN { part = 0; bad = 0; rows = 0
          printf "%-14s %-13s %21s %8s %21s %8s  %s\n", "pci", "free via", "total MiB probe/smi", "diff", "free MiB probe/smi", "diff", "verdict" }
  /^---$/ { part++; next }
  part == 0 { split($0, f, ","); id = norm(f[1]); smiTotal[id] = f[2] + 0; v = f[3]; gsub(/ /, "", v); smiFree[id] = v; next }
  /^backend\t/ { next }
  {
    id = $3; total = $4 / 1048576; free = $5; src = $7; rows++
    if (!(id in smiTotal)) { printf "%-14s %-13s not in nvidia-smi output  FAIL\n", id, src; bad++; next }
    dt = pct(total, smiTotal[id]); ok = abs(dt) <= 1
    if (free == "-" || smiFree[id] !~ /^[0-9.]+$/) { freeCol = sprintf("%21s %8s", "n/a", "") }
    else { df = pct(free / 1048576, smiFree[id]); ok = ok && abs(df) <= 1
           freeCol = sprintf("%10.0f/%-10.0f %7.2f%%", free / 1048576, smiFree[id], df) }
    printf "%-14s %-13s %10.0f/%-10.0f %7.2f%% %s  %s\n", id, src, total, smiTotal[id], dt, freeCol, ok ? "PASS" : "FAIL"
    if (!ok) bad++
  }
  END { if (rows == 0) { print "no CUDA device from the probe"; bad++ }
        print (bad ? "RESULT FAIL" : "RESULT PASS"); exit bad ? 1 : 0 }'
