#!/usr/bin/env bash
# The first run on a CUDA machine, in one command: the CUDA tests, then the speed numbers the
# README quotes (MAGVIT-B, 16x128x128, COMMIT-12): bf16 against fp32, compiled (CUDA graphs),
# and the throughput at growing batch sizes. Results go to benchmarks/results/gpu-*.json.
#   bash benchmarks/gpu_checklist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu-device.txt"
MAGVIT_PRECISION=auto python3 -m pytest -q tests/test_cuda.py
magvit bench ucf101-cg --device cuda --compare --repeats 5 --json "$out/gpu-ucf101-cg-compare.json"
magvit bench ucf101-cg --device cuda --compile --repeats 5 --batches 1,4,16,32,64 --json "$out/gpu-ucf101-cg-compiled.json"
magvit bench default --device cuda --batches 1,16,64,256 --json "$out/gpu-default.json"
python3 - <<'PY' | tee "$out/gpu-auto-batch.txt"
from magvit.workflows.bench import experiment_pipeline
import torch
pipe = experiment_pipeline("ucf101-cg", torch.device("cuda"), None)
print("B clip memory:", pipe.clip_memory(), "auto batch for 1000 clips:", pipe.batch_size_for("auto", 1000))
PY
magvit demo --device cuda --output /tmp/magvit-gpu-demo | grep -B1 -A12 "^task "
