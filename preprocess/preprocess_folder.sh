#!/usr/bin/env bash
# A folder of raw videos of one person → one subject with one video folder per clip
# (docs/preprocess.md). The clips share one FLAME shape (preprocess.tracking.shared_shape).
# Usage: bash preprocess/preprocess_folder.sh FOLDER SUBJECT [section.key=value ...]
#   e.g. bash preprocess/preprocess_folder.sh ~/clips/anna anna preprocess.output_root=data/datasets/real
# CONF=confs/my.conf picks another config. Re-running skips the stages already complete.
set -euo pipefail
if [[ $# -lt 2 ]]; then sed -n '2,6p' "$0" >&2; exit 2; fi
folder="$(realpath -m -- "$1")"; subject="$2"; shift 2   # -m: a missing path reaches pegasus (exit 2)
cd "$(dirname "$0")/.."
exec "${VENV:-.venv}/bin/pegasus" preprocess --conf "${CONF:-confs/preprocess.conf}" --folder "$folder" \
  --subject "$subject" "$@"
