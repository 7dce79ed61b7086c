#!/usr/bin/env bash
# Installs everything racl needs on a fresh Debian machine: system packages, then a virtual
# environment with the pinned Python stack (setup.cfg). Safe to rerun: it skips what is there.
#   bash scripts/setup.sh        everything: the demo, the Space, the tests (browser included)
#   bash scripts/setup.sh demo   only what the main job (`make demo`) needs: no browser, no gradio, no pytest
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
case "$MODE" in
  all) EXTRAS="demo,space,dev" ;;
  demo) EXTRAS="demo" ;;
  *) echo "racl setup: unknown mode '$MODE' (use: all, demo)" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}

APT_PACKAGES=(
  ffmpeg sox                                   # torchcodec's decoders (datasets' Audio), format conversion
  espeak-ng festival                           # offline TTS spoofers
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph
  fillets-ng-data-cs fillets-ng-data-nl        # real Czech / Dutch dialogue of the demo corpus
)
[ "$MODE" = demo ] || APT_PACKAGES+=(chromium)   # the Space's browser test
# Debian's python3 makes venvs only with python3-venv (ensurepip's wheels); other Pythons carry them.
if [ ! -e .venv ]; then
  "$PY" -m venv .venv >/dev/null 2>&1 || { rm -rf .venv; APT_PACKAGES+=(python3-venv); }  # only the half-made one
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
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
fi

want=$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-16)
for done_mode in all "$MODE"; do  # a full install also serves the demo
  if [ -f ".venv/.racl-installed-$done_mode" ] && [ "$(cat ".venv/.racl-installed-$done_mode")" = "$want" ]; then
    exit 0
  fi
done
[ -e .venv ] || "$PY" -m venv .venv
if [ ! -x .venv/bin/pip ]; then
  echo "racl setup: .venv exists but has no pip; add pip to it or remove it (rm -r .venv), then rerun" >&2
  exit 1
fi
.venv/bin/pip install -q --upgrade pip
# torch first and exactly: torchaudio 2.11 does not guard against another torch (DESIGN.md section 9)
.venv/bin/pip install -q torch==2.14.1 torchaudio==2.11.0 torchcodec==0.17.0
.venv/bin/pip install -q -e ".[$EXTRAS]"
echo "$want" > ".venv/.racl-installed-$MODE"
echo "racl setup: environment ready in .venv"
