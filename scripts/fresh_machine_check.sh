#!/usr/bin/env bash
# Runs the README's commands on a fresh Debian 12 machine: a `debootstrap --variant=minbase bookworm`
# root that has this machine's apt sources, pip configuration, local wheel folders and package indexes
# and CA bundle (what every new machine here starts with), plus only git, make and ca-certificates.
# The repository is cloned inside from the checkout's committed HEAD; nothing else is installed by hand,
# so setup.sh has to bring every Debian and Python package itself. Needs root (chroot, mounts).
#   sudo bash scripts/fresh_machine_check.sh test         make setup, then make test (CI=1: a skip fails)
#   sudo bash scripts/fresh_machine_check.sh demo-check   make setup-demo, then the demo until its check passes
#   sudo bash scripts/fresh_machine_check.sh demo         make setup-demo, then make demo (about 25 minutes)
#   sudo bash scripts/fresh_machine_check.sh both         demo, then test in the same root, as a user would
#   sudo bash scripts/fresh_machine_check.sh root         only make the pristine root (cached)
# The pristine root is cached as a tarball (RACL_FRESH_CACHE, default /var/tmp/racl-fresh); every run
# unpacks a new copy, never reusing a used one. Logs: $RACL_FRESH_CACHE/logs/.
set -euo pipefail
MODE=${1:-test}
case "$MODE" in test | demo | demo-check | both | root) ;; *)
  echo "usage: $0 test|demo-check|demo|both|root" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RACL_FRESH_CACHE:-/var/tmp/racl-fresh}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PRISTINE=$CACHE/bookworm-minbase.tar
ROOT=$CACHE/root
LOGS=$CACHE/logs
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$CACHE" "$LOGS"

say() { echo "fresh-check: $*"; }

# Wall time and exit status of one step; its full output goes to a log, the tail to the terminal.
step() {
  local name=$1; shift
  local log=$LOGS/$STAMP-$name.log start rc=0
  start=$(date +%s.%N)
  say "$name ..."
  "$@" >"$log" 2>&1 || rc=$?
  awk -v n="$name" -v s="$start" -v e="$(date +%s.%N)" -v rc="$rc" -v lg="$log" \
    'BEGIN { printf "fresh-check: %s: %.0f s, exit %d (log: %s)\n", n, e - s, rc, lg }'
  tail -n "$([ "$rc" -eq 0 ] && echo 5 || echo 60)" "$log" | sed 's/^/    /'
  return "$rc"
}

# Everything mounted under the root, deepest first; processes still running in it go first.
cleanup() {
  local pid target
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "$pid" 2>/dev/null || true
  done
  sleep 1
  for target in $(findmnt -rn -o TARGET | grep -F "$ROOT/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
    umount "$target" 2>/dev/null || umount -l "$target" || say "could not unmount $target"
  done
}
trap cleanup EXIT

make_pristine() {
  command -v debootstrap >/dev/null || step install-debootstrap \
    bash -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap"
  local tmp=$CACHE/debootstrap.partial
  rm -rf --one-file-system "$tmp"
  step debootstrap debootstrap --variant=minbase bookworm "$tmp" "$MIRROR"
  tar -C "$tmp" -cf "$PRISTINE.partial" . && mv "$PRISTINE.partial" "$PRISTINE"
  rm -rf --one-file-system "$tmp"
}

# Copy a host file to the same place in the root (parents made), if the host has it.
copy_in() { [ -e "$1" ] && mkdir -p "$ROOT$(dirname "$1")" && cp -aL "$1" "$ROOT$1" || true; }

bind_ro() {
  mkdir -p "$ROOT$1"
  mount --bind "$1" "$ROOT$1" && mount --make-private "$ROOT$1" && mount -o remount,bind,ro "$ROOT$1"
}

# The folders pip's configuration names (find-links, file:// indexes, constraints, cert): read-only
# bind mounts of folders (an index's /simple brings its parent, where its hrefs point), copies of files.
pip_paths() {
  local files=(/etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" ${PIP_CONFIG_FILE:-})
  { cat "${files[@]}" 2>/dev/null; env | grep '^PIP_' || true; } | grep -oE '(file://)?/[^[:space:],;"'\'']+' | sed 's#^file://##' | sort -u
}

prepare_root() {
  [ -f "$PRISTINE" ] || make_pristine
  [ "$MODE" = root ] && { say "pristine root: $PRISTINE"; exit 0; }
  cleanup
  if findmnt -rn -o TARGET | grep -qF "$ROOT/"; then say "still mounted under $ROOT; not removing it" >&2; exit 1; fi
  rm -rf --one-file-system "$ROOT" && mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$PRISTINE"
  # What every new machine here has: apt sources and settings, pip configuration, CA certificates.
  rm -f "$ROOT/etc/apt/sources.list"  # debootstrap's own; the host's sources replace it
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/apt.conf /etc/apt/apt.conf.d/* /etc/apt/trusted.gpg.d/* /etc/pip.conf /etc/xdg/pip/* \
    "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" /usr/local/share/ca-certificates/* /etc/ssl/certs/ca-certificates.crt /etc/resolv.conf /etc/hosts; do
    copy_in "$f"
  done
  grep -rhoE 'Signed-By: *[^ ]+|signed-by=[^] ]+' /etc/apt/sources.list* 2>/dev/null | sed -E 's/.*[:=] *//' | while read -r key; do
    [ -e "$ROOT$key" ] || copy_in "$key"
  done
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"  # brings /dev/pts and /dev/shm
  mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs shm "$ROOT/dev/shm"
  local p
  for p in $(pip_paths); do
    if [ -d "$p" ]; then
      case "$p" in */simple | */simple/) bind_ro "$(dirname "$p")" ;; *) bind_ro "$p" ;; esac
    elif [ -f "$p" ]; then
      copy_in "$p"
    fi
  done
}

# A clean environment inside: PIP_* and proxy settings pass, nothing else of this shell does.
in_root() {
  local vars=(HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  while IFS= read -r v; do vars+=("$v"); done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' || true)
  chroot "$ROOT" /usr/bin/env -i "${vars[@]}" bash -c "$1"
}

# The demo with its real command line, stopped once its first stage (the check) has passed.
DEMO_CHECK='cd /root/racl && .venv/bin/python -m racl.demo --quick --out /tmp/demo-check & pid=$!
while kill -0 $pid 2>/dev/null && [ ! -f /tmp/demo-check/stages/check.json ]; do sleep 1; done
if [ -f /tmp/demo-check/stages/check.json ]; then kill $pid; cat /tmp/demo-check/stages/check.json; echo; else wait $pid; fi'

prepare_root
COMMIT=$(git -C "$REPO" rev-parse HEAD)
git -C "$REPO" bundle create "$ROOT/root/racl.bundle" HEAD 2>/dev/null
say "commit $COMMIT, root $ROOT"
step apt-base in_root "apt-get update -q && apt-get install -y -q --no-install-recommends git make ca-certificates"
copy_in /etc/ssl/certs/ca-certificates.crt  # update-ca-certificates rebuilt it from Debian's list only
step clone in_root "git clone -q -c advice.detachedHead=false /root/racl.bundle /root/racl"
status=0
if [ "$MODE" = demo ] || [ "$MODE" = both ] || [ "$MODE" = demo-check ]; then
  step setup-demo in_root "cd /root/racl && make setup-demo" || status=1
  if [ "$status" -eq 0 ] && [ "$MODE" = demo-check ]; then
    step demo-check in_root "$DEMO_CHECK" || status=1
  elif [ "$status" -eq 0 ]; then
    step demo in_root "cd /root/racl && make demo" || status=1
  fi
fi
if [ "$MODE" = test ] || [ "$MODE" = both ]; then
  step setup in_root "cd /root/racl && make setup" && step test in_root "cd /root/racl && CI=1 make test" || status=1
fi
in_root "cd /root/racl && .venv/bin/python -c 'import sys, torch; print(\"python\", sys.version.split()[0], \"torch\", torch.__version__)'" || true
say "$MODE on $COMMIT: $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
