#!/usr/bin/env bash
# Set up napari-latent-focus in ./.venv: system libraries for Qt/OpenGL (Debian/Ubuntu), torch, napari, the plugin.
# TORCH_SPEC overrides the torch requirement (default: the CPU build torch==2.13.0 on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  pkgs="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxkbcommon0 libxcb-cursor0 libxcb-icccm4
        libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
        libxcb-xfixes0 libxcb-sync1 libdbus-1-3 libfontconfig1 libglib2.0-0"
  missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "installing system packages: $(echo $missing)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

pip_install() {  # quiet pip; drops only the notices about absent local package folders
  .venv/bin/python -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip_install --upgrade pip
case "$(uname -s)" in
  Linux) TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0} ;;
  *) TORCH_SPEC=${TORCH_SPEC:-torch} ;;
esac
pip_install "$TORCH_SPEC"
pip_install -e ".[testing]"
.venv/bin/python -c "import torch, napari, latent_focus; print('napari-latent-focus', latent_focus.__version__, '| torch', torch.__version__, '| napari', napari.__version__)"
