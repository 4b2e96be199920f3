#!/usr/bin/env bash
# Train an avatar.  Usage: bash run/train.sh [CONF] [--resume | --overwrite] [section.key=value ...]
# With no CONF it trains on the embedded synthetic target. The synthetic database is generated
# (or completed) first whenever the config's dataset reads from it.
# The whole config (with the overrides) is validated once, before any step; every step gets the
# same overrides. Several processes / GPUs / nodes go through torchrun; set e.g.
#   NPROC=8 bash run/train.sh confs/my.conf                      (one node, 8 GPUs)
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 MASTER_PORT=29500 NPROC=8 bash run/train.sh ...
# --resume continues the run from its latest checkpoint (a new run when there is none; safe for
# requeued cluster jobs); --overwrite starts again in a run folder that holds checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
source run/_prepare.sh confs/embedded.conf "$@"   # conf, args, overrides; exit 2 on any problem
"$VENV/bin/pegasus" synth-db --conf "$conf" --when-used dataset "${overrides[@]}"  # when the dataset reads from it
NPROC="${NPROC:-1}"; NNODES="${NNODES:-1}"
if [[ "$NPROC" -gt 1 || "$NNODES" -gt 1 ]]; then
  exec "$VENV/bin/torchrun" --nproc_per_node="$NPROC" --nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    -m pegasus.cli.main train --conf "$conf" "${args[@]}"
fi
exec "$VENV/bin/pegasus" train --conf "$conf" "${args[@]}"
