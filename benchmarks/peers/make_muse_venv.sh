#!/usr/bin/env bash
# An isolated venv with muse-maskgit-pytorch (the peer) and magvit side by side, for
# benchmarks/peers/muse_side_by_side.py. The peer is not a magvit dependency.
#
# The peer imports torchvision, and PyPI's torchvision does not import beside the CPU torch
# 2.13.0 wheel, so this venv takes torch 2.14.1 with torchvision 0.29.1 (a CUDA build; it runs
# on the CPU too). magvit is installed into the same venv without its own torch pin, so both
# sides run on the same torch in the same process.
#   bash benchmarks/peers/make_muse_venv.sh [VENV]     # default /tmp/magvit-peer-muse
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${1:-/tmp/magvit-peer-muse}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
"$venv/bin/pip" install -q muse-maskgit-pytorch==0.3.5
"$venv/bin/pip" install -q --no-deps -e "$repo"
"$venv/bin/pip" install -q pluggy attrs cattrs tomli-w av numpy safetensors tqdm
"$venv/bin/python" -c "import torch, muse_maskgit_pytorch, magvit; print('peer venv ready:', torch.__version__)"
echo "now: $venv/bin/python benchmarks/peers/muse_side_by_side.py"
