#!/usr/bin/env bash
# Stage-2 training on 2 nodes x 8 GPUs with SLURM: `sbatch examples/slurm-two-nodes.sh`.
# Each node runs one torchrun launcher; they meet at the first node through torchrun's c10d
# rendezvous. train.batch_size is the global batch (all 16 GPUs together); train.accumulate
# multiplies it without more memory (the paper's batch 256 = 16 GPUs x 4 clips x 4 steps).
#SBATCH --job-name=magvit-b
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=48:00:00
set -euo pipefail

HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=29500

srun torchrun \
    --nnodes "$SLURM_NNODES" --nproc_per_node 8 \
    --rdzv_backend c10d --rdzv_endpoint "$HEAD_NODE:$PORT" --rdzv_id "$SLURM_JOB_ID" \
    -m magvit train transformer ucf101-cg \
    --set train.batch_size=64 --set train.accumulate=4 \
    --set run.precision=bf16 --set 'run.loggers=["jsonl", "tensorboard"]' \
    --resume   # a requeued job continues from its last checkpoint
