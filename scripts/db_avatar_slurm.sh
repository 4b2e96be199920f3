#!/usr/bin/env bash
# The DB avatar bank as a Slurm job array: one task per shard, each on one GPU (docs/bank.md).
#   sbatch --array=0-7 scripts/db_avatar_slurm.sh confs/db_bank.conf [section.key=value ...]
# Every task runs `pegasus db-avatar --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`:
# it trains and renders its jobs (skipping what is complete, resuming what was interrupted,
# so a requeued task continues). Generate the synthetic database once before submitting
# (bash run/synth_db.sh) when the bank reads from it. After the array,
# write the complete summary <bank.root>/bank.json: `pegasus db-avatar --conf CONF --steps`.
#SBATCH --job-name=pegasus-db-avatar
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
VENV="${VENV:-.venv}"
conf="${1:-confs/db_bank.conf}"
[[ $# -gt 0 ]] && shift
exec "$VENV/bin/pegasus" db-avatar --conf "$conf" \
  --shard "${SLURM_ARRAY_TASK_ID:-0}/${SLURM_ARRAY_TASK_COUNT:-1}" "$@"
