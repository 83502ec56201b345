#!/usr/bin/env bash
# Builds the native addon and the probe CLI with AddressSanitizer + UndefinedBehaviorSanitizer
# (native/build-asan) and runs the native test suite against that build. CI calls this.
#
# Node itself is not instrumented, so the ASan runtime must be in the process before anything
# else: it is LD_PRELOADed into node (and, inherited, into every node, sleep or sh the tests
# start, which is harmless). The addon is linked against the same compiler's libasan.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != Linux ]; then
  echo "test-native-asan: Linux only (LD_PRELOAD of GCC's libasan)"; exit 0
fi

node node_modules/cmake-js/bin/cmake-js compile -d native -O native/build-asan --CDSTRATA_SANITIZE=ON

libasan=$("${CXX:-c++}" -print-file-name=libasan.so)
case "$libasan" in /*) ;; *) echo "test-native-asan: the compiler knows no libasan.so"; exit 1 ;; esac
libasan=$(readlink -f "$libasan")

# detect_leaks=0: node frees little at exit on purpose and LeakSanitizer would report V8's and
# libuv's arenas, not ours (see native/README.md for how to run with leaks on).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export STRATA_NATIVE="$PWD/native/build-asan/Release/strata_native.node"
export STRATA_PROBE_CLI="$PWD/native/build-asan/Release/strata_probe"

# The CLI is an ordinary instrumented executable with no node around it, so here LeakSanitizer
# can run and see only our allocations (the fake-driver test runs it that way too).
# A leak whose every frame past the allocator is in an unloaded library is the Vulkan driver's,
# not ours (Mesa 22.3.6-1+deb12u2's lavapipe leaks 128 bytes per instance; with no driver the
# probe is leak-free): those are reported and let through, any other leak fails.
report=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 "$STRATA_PROBE_CLI" 2>&1 >/dev/null) && rc=0 || rc=$?
if [ "$rc" -ne 0 ]; then
  ours=$(printf '%s\n' "$report" | awk '/^(Direct|Indirect) leak/{blk=1; next} blk && /^ *#[0-9]+ /{ if ($0 !~ /asan_malloc|<unknown module>/) n++ } /^$/{blk=0} END{print n+0}')
  if [ "$rc" -ne 23 ] || [ "$ours" -ne 0 ]; then printf '%s\n' "$report" >&2; echo "test-native-asan: the probe CLI leaks (or crashed, exit $rc)" >&2; exit 1; fi
  echo "test-native-asan: leak reports only from an unloaded library (the Vulkan driver), not from the probe:"
  printf '%s\n' "$report" | grep -E '^(Direct|Indirect) leak|SUMMARY' || true
fi
VK_ICD_FILENAMES=/nonexistent ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$STRATA_PROBE_CLI" >/dev/null

LD_PRELOAD="$libasan" node node_modules/mocha/bin/mocha.js --timeout 120000 "test/native/**/*.test.ts"
