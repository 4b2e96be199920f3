#!/usr/bin/env bash
# Build the DB avatar bank: train an avatar of every DB video (or one shared multi-identity model),
# render each DB person driven by the target's videos, score the renders (docs/bank.md).
# Usage: bash run/db_avatar.sh [CONF] [--shard i/n] [--steps train render] [section.key=value ...]
# With no CONF it builds the embedded database's bank (confs/db_bank.conf).
# Complete jobs and renders are skipped, so the same command resumes an interrupted bank.
# Several local processes (e.g. one per GPU) take one shard each:
#   NPROC=4 bash run/db_avatar.sh confs/db_bank.conf      (CUDA_VISIBLE_DEVICES=0..3, shards 0/4..3/4)
# A cluster array runs one shard per task: scripts/db_avatar_slurm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source run/_prepare.sh confs/db_bank.conf "$@"   # conf, args, overrides; exit 2 on any problem
"$VENV/bin/pegasus" synth-db --conf "$conf" --when-used bank "${overrides[@]}"  # when the bank reads from it
NPROC="${NPROC:-1}"
if [[ "$NPROC" -le 1 ]]; then
  exec "$VENV/bin/pegasus" db-avatar --conf "$conf" "${args[@]}"
fi
pids=()
for ((i = 0; i < NPROC; i++)); do
  CUDA_VISIBLE_DEVICES="$i" "$VENV/bin/pegasus" db-avatar --conf "$conf" --shard "$i/$NPROC" "${args[@]}" &
  pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
"$VENV/bin/pegasus" db-avatar --conf "$conf" "${overrides[@]}" --steps   # the summary of every shard
exit "$status"
