#!/usr/bin/env bash
# The main job on the embedded default (no downloads, no registration):
#   1. the stand-in head model and its picture,
#   2. the synthetic multi-person database (skipped where already complete),
#   3. a single-person avatar of the database's target, trained on its training video,
#   4. test renders, metrics and .ply exports on its held-out test video,
#   5. the DB avatar bank: one shared model of the database's eight other people, rendered with
#      the target's motion and cameras and scored against the database's ground truth,
#   6. the part-swap synthesis: the target wearing each DB person's parts, cut from those renders
#      and scored against the database's ground truth (METHOD §8.1),
#   7. the generative avatar (PEGASUS): stage 1 on the target's video, stage 2 on the synthetic
#      collection; then its part control (grids, mixes, interpolations, samples, videos, .ply) and
#      its part-control score against the ground truth.
# Extra arguments are config overrides (section.key=value), validated once and passed to every step.
# --resume: an interrupted demo continues where it stopped; a finished one is only tested again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
"$VENV/bin/pegasus" config --conf confs/embedded.conf "$@" > /dev/null   # exit 2 on any problem
"$VENV/bin/pegasus" picture --conf confs/embedded.conf "$@"
bash run/train.sh confs/embedded.conf --resume "$@"      # generates the database first
bash run/test.sh confs/embedded.conf "$@"
bash run/db_avatar.sh confs/db_bank_shared.conf "$@"     # complete work is skipped
bash preprocess/synthesis.sh confs/db_bank_shared.conf "$@"
bash run/train.sh confs/pegasus.conf --resume "$@"       # finished stages are skipped
bash run/test.sh confs/pegasus.conf "$@"
