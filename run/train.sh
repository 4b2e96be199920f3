#!/usr/bin/env bash
# Train an avatar.  Usage: bash run/train.sh [CONF] [section.key=value ...]
# With no CONF it trains on the embedded synthetic target (generating the database first).
# Several processes / GPUs / nodes go through torchrun; set e.g.
#   NPROC=8 bash run/train.sh confs/my.conf                      (one node, 8 GPUs)
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 MASTER_PORT=29500 NPROC=8 bash run/train.sh ...
# Add --resume to continue an interrupted run from its latest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
conf="confs/embedded.conf"
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
if [[ "$conf" == "confs/embedded.conf" ]]; then
  "$VENV/bin/pegasus" synth-db --conf "$conf"
fi
NPROC="${NPROC:-1}"; NNODES="${NNODES:-1}"
if [[ "$NPROC" -gt 1 || "$NNODES" -gt 1 ]]; then
  exec "$VENV/bin/torchrun" --nproc_per_node="$NPROC" --nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    -m pegasus.cli.main train --conf "$conf" "$@"
fi
exec "$VENV/bin/pegasus" train --conf "$conf" "$@"
