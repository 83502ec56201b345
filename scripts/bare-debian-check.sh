#!/usr/bin/env bash
# Runs the README's two commands on a bare Debian 12 (a debootstrap --variant=minbase chroot), as a
# new user would: nothing installed but Debian's minimal base and the one prerequisite the README
# names that Debian 12 lacks, Node.js 20 (copied from this machine's install). Everything else the
# commands need they must install themselves (scripts/prerequisites.mjs) or name in their message.
# The chroot's ~/.cache/strata starts empty, so this is a cold run (llama.cpp CPU + Vulkan builds,
# code-server, test models): 40-90 minutes on 2 busy cores.
#
# Usage (as root, on Debian/Ubuntu with debootstrap; the network reaches the npm registry and
# deb.debian.org):
#   scripts/bare-debian-check.sh [setup] [test] [start] [exec] [clean]   (no step: setup test start)
#     setup  debootstrap into $BARE_ROOT (kept when it exists), copy Node, clone $STRATA_REPO's HEAD
#     test   in the chroot, /src/strata: time nice -n 5 sh -c 'npm install && npm test'  -> $BARE_LOGS/test.log
#     start  in the chroot: npm install, then scripts/start-check.ts runs `npm start`, opens the URL it
#            prints in headless Chromium, waits for ghost text in fib.py, and stops it with Ctrl+C -> start.log
#     exec   in the chroot, /src/strata: $BARE_CMD (e.g. one failing suite again) -> $BARE_LOGS/exec-<time>.log
#     clean  remove $BARE_ROOT (only after every mount under it is gone)
# Environment: BARE_ROOT (/work/bare/root), BARE_LOGS (/work/bare/logs), STRATA_REPO (the repository
# this script is in), NODE_PREFIX (the prefix of `which node`, e.g. /usr or /usr/local), BARE_NETWORK_CA
# (CA files of a TLS-intercepting network; default /usr/local/share/ca-certificates/*.crt).
# The mounts (the root itself, /proc, /sys, /dev, /dev/pts, tmpfs /dev/shm and /run) are undone on exit.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${BARE_ROOT:-/work/bare/root}"
LOGS="${BARE_LOGS:-/work/bare/logs}"
REPO="${STRATA_REPO:-$here}"
NODE_BIN="$(readlink -f "$(command -v node)")"
NODE_PREFIX="${NODE_PREFIX:-$(dirname "$(dirname "$NODE_BIN")")}"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(setup test start)

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot and mounts need it)"; exit 1; }
mkdir -p "$LOGS"
log() { echo "[bare] $(date -u +%H:%M:%S) $*"; }

mounted=()
cleanup() {
  # Innermost first; the network namespaces the cluster tests left under run/netns go with /run.
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null || true
  done
  mounted=()
  if findmnt -rn -o TARGET | grep -q "^$ROOT\(/\|$\)"; then
    echo "[bare] still mounted under $ROOT; unmount before deleting it:"; findmnt -rn -o TARGET | grep "^$ROOT"
  fi
}
trap cleanup EXIT INT TERM

mount_all() {
  # The root as a mount point of its own: `ip netns exec` remounts / as a slave, which fails on a
  # plain directory. Private, so that nothing mounted inside shows up elsewhere.
  mount --bind "$ROOT" "$ROOT" && mounted+=("$ROOT")
  mount --make-private "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount -t sysfs sysfs "$ROOT/sys"
  # The host's devices; slaves, so that unmounting them here can never unmount the host's.
  mount --bind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
  mount --bind /dev/pts "$ROOT/dev/pts" && mount --make-rslave "$ROOT/dev/pts"
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$ROOT/run"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

setup() {
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap
    log "debootstrap --variant=minbase bookworm $ROOT"
    ( time debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian ) >"$LOGS/debootstrap.log" 2>&1
  fi
  # The README's one prerequisite that Debian 12 does not ship (its nodejs is 18): Node.js 20.
  log "copying Node $("$NODE_BIN" -v) from $NODE_PREFIX"
  install -D -m 755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
  mkdir -p "$ROOT/usr/local/lib/node_modules" "$ROOT/usr/local/include"
  rm -rf "$ROOT/usr/local/lib/node_modules/npm" "$ROOT/usr/local/include/node"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$ROOT/usr/local/lib/node_modules/npm"
  cp -a "$NODE_PREFIX/include/node" "$ROOT/usr/local/include/node"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  # Not a prerequisite: where this machine's network intercepts TLS (a proxy with its own CA, as in
  # the sandbox this script was written in), Node in the chroot must trust that CA to reach the npm
  # registry; a user's bare machine on the open internet needs nothing (Node has its own roots).
  rm -f "$ROOT/etc/strata-bare-network-ca.crt"
  if [ -n "${BARE_NETWORK_CA:-}" ] || compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cat ${BARE_NETWORK_CA:-/usr/local/share/ca-certificates/*.crt} >"$ROOT/etc/strata-bare-network-ca.crt"
    log "the chroot's Node trusts this network's TLS CA(s): ${BARE_NETWORK_CA:-/usr/local/share/ca-certificates/*.crt}"
  fi
  rm -rf "$ROOT/src/strata"
  git clone -q "$REPO" "$ROOT/src/strata"
  git -C "$ROOT/src/strata" log -1 --format='[bare] clone of %H (%s)'
}

in_chroot() {
  local ca=()
  [ -s "$ROOT/etc/strata-bare-network-ca.crt" ] && ca=(NODE_EXTRA_CA_CERTS=/etc/strata-bare-network-ca.crt)
  chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${ca[@]}" \
    /bin/bash -c "cd /src/strata && $1"
}

run_test() {
  log "npm install && npm test (log: $LOGS/test.log)"
  local rc=0
  in_chroot 'time nice -n 5 sh -c "npm install && npm test"' >"$LOGS/test.log" 2>&1 || rc=$?
  sed -n '/=== summary ===/,$p' "$LOGS/test.log" | tail -n 80
  log "npm test exit $rc"
  return $rc
}

run_start() {
  log "npm install && npm start, driven by scripts/start-check.ts (log: $LOGS/start.log)"
  local rc=0
  in_chroot 'time (npm install && timeout 3900 npx tsx scripts/start-check.ts)' >"$LOGS/start.log" 2>&1 || rc=$?
  tail -n 15 "$LOGS/start.log"
  log "npm start check exit $rc"
  return $rc
}

status=0
for s in "${steps[@]}"; do
  case "$s" in
    setup) setup ;;
    test | start | exec)
      [ ${#mounted[@]} -gt 0 ] || mount_all
      case "$s" in
        test) run_test || status=$? ;;
        start) run_start || status=$? ;;
        exec)
          f="$LOGS/exec-$(date -u +%Y%m%dT%H%M%S).log"
          log "$BARE_CMD (log: $f)"
          in_chroot "time ($BARE_CMD)" >"$f" 2>&1 || status=$?
          tail -n 30 "$f"
          ;;
      esac
      ;;
    clean)
      cleanup
      if findmnt -rn -o TARGET | grep -q "^$ROOT\(/\|$\)"; then echo "[bare] not removing $ROOT: mounts remain"; exit 1; fi
      rm -rf --one-file-system "$ROOT"
      ;;
    *) echo "unknown step $s (setup, test, start, exec, clean)"; exit 2 ;;
  esac
done
exit $status
