#!/usr/bin/env bash
# Step 2 of the test-model recipe, run ON THE GPU MACHINE from the repository root, with
# .gpu/model/data carried along (prepared by scripts/model/prepare-data.ts). Writes into $OUT:
# the GGUF in 15 MiB parts (the device tool brings back files of at most 16 MiB), tokenizer.json,
# train-log.json and the full log. Extra arguments go to train.py (e.g. --smoke, --minutes 5).
set -euo pipefail
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT/work"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt" || true
timeout 575 python3 scripts/model/train.py --data "${DATA:-.gpu/model/data}" --out "$OUT/work" "$@" 2>&1 | tee "$OUT/train.log"
cd "$OUT/work"
sha256sum strata-test-coder.gguf | tee ../strata-test-coder.gguf.sha256
split -b 15m -d strata-test-coder.gguf ../strata-test-coder.gguf.part
mv tokenizer.json train-log.json ..
cd .. && rm -rf work
ls -la "$OUT"
