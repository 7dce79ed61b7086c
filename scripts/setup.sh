#!/usr/bin/env bash
# Installs everything racl needs on a fresh Debian machine: system packages, then a virtual
# environment with the pinned Python stack (setup.cfg). Safe to rerun: it skips what is there.
#   bash scripts/setup.sh        everything: the demo, the Space, the tests (browser included)
#   bash scripts/setup.sh demo   only what the main job (`make demo`) needs: no browser, no gradio, no pytest
#   bash scripts/setup.sh --list [all|demo]   the Debian packages that mode needs here (installs nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=0
[ "${1:-}" = --list ] && { LIST=1; shift; }
MODE=${1:-all}
case "$MODE" in
  all) EXTRAS="demo,space,dev" ;;
  demo) EXTRAS="demo" ;;
  *) echo "racl setup: unknown mode '$MODE' (use: all, demo)" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}

# The code that needs a Debian package declares it; tests/test_setup.py checks that these lists cover
# those declarations, so a package added there without being added here fails the tests.
APT_PACKAGES=(
  ffmpeg                                       # torchcodec's decoders (racl.audio, datasets' Audio)
  espeak-ng festival                           # datasets_scripts/tts.py: the TTS engines and voices
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph
  fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl  # datasets_scripts/corpora/fillets.py: texts, voices
)
# tests/test_space.py's browser test; space/examples/make_examples.sh converts with sox.
[ "$MODE" = demo ] || APT_PACKAGES+=(chromium sox)

# What this Python lacks to make the venv and to build the pinned packages that have no wheel for it
# (pyworld has none for Debian's 3.11): Debian's python3 has no ensurepip without python3-venv, no
# Python.h without python3-dev, and pip compiles with the compiler it was built with.
python_packages() {
  if ! command -v "$PY" >/dev/null; then
    [ "$PY" = python3 ] || { echo "racl setup: no Python '$PY' (PYTHON)" >&2; exit 1; }
    echo python3 python3-venv python3-dev g++
    return
  fi
  "$PY" -c 'import ensurepip, sys; sys.exit(not ensurepip.version())' >/dev/null 2>&1 || echo python3-venv
  "$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    >/dev/null 2>&1 || echo python3-dev
  local cxx
  cxx=$("$PY" -c 'import sysconfig; print((sysconfig.get_config_var("CXX") or "g++").split()[0])' 2>/dev/null) || cxx=g++
  command -v "${cxx:-g++}" >/dev/null || echo g++
}

want=$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-16)
venv_ready=0
for done_mode in all "$MODE"; do  # a full install also serves the demo
  if [ -f ".venv/.racl-installed-$done_mode" ] && [ "$(cat ".venv/.racl-installed-$done_mode")" = "$want" ]; then
    venv_ready=1
  fi
done
[ "$venv_ready" -eq 1 ] && [ "$LIST" -eq 0 ] || APT_PACKAGES+=($(python_packages))
if [ "$LIST" -eq 1 ]; then
  printf '%s\n' "${APT_PACKAGES[@]}"
  exit 0
fi

if command -v dpkg-query >/dev/null; then
  # One query for all (quick when everything is there); it exits non-zero when one is unknown to dpkg.
  installed=" $({ dpkg-query -W -f='${Status} ${Package}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true; } | awk '$3 == "installed" {printf "%s ", $4}')"
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    [[ "$installed" == *" $p "* ]] || missing+=("$p")
  done
else
  echo "racl setup: not a Debian system; make sure the equivalents of these are installed: ${APT_PACKAGES[*]}" >&2
  missing=()
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "racl setup: these Debian packages are missing and I am not root: ${missing[*]}" >&2
    echo "racl setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "racl setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  echo "racl setup: Debian packages installed in $SECONDS s"
fi

[ "$venv_ready" -eq 0 ] || exit 0
SECONDS=0
if [ -e .venv ] && [ ! -x .venv/bin/pip ]; then
  echo "racl setup: .venv exists but has no pip; add pip to it or remove it (rm -r .venv), then rerun" >&2
  exit 1
fi
[ -e .venv ] || "$PY" -m venv .venv || { rm -rf .venv; echo "racl setup: $PY could not make .venv" >&2; exit 1; }
.venv/bin/pip install -q --upgrade pip
# torch first and exactly: torchaudio 2.11 does not guard against another torch (docs/design.md#stack)
.venv/bin/pip install -q torch==2.14.1 torchaudio==2.11.0 torchcodec==0.17.0
.venv/bin/pip install -q -e ".[$EXTRAS]"
echo "$want" > ".venv/.racl-installed-$MODE"
echo "racl setup: environment ready in .venv (pip: $SECONDS s)"
