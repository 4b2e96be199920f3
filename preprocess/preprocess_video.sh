#!/usr/bin/env bash
# One raw video → an IMavatar-layout dataset (docs/preprocess.md).
# Usage: bash preprocess/preprocess_video.sh VIDEO [SUBJECT] [section.key=value ...]
#   e.g. bash preprocess/preprocess_video.sh ~/clips/anna.mp4 anna preprocess.max_frames=300
# The subject defaults to the file stem, the video folder is named after the file;
# CONF=confs/my.conf picks another config. Re-running skips the stages already complete.
set -euo pipefail
if [[ $# -lt 1 ]]; then sed -n '2,6p' "$0" >&2; exit 2; fi
video="$(realpath -m -- "$1")"; shift   # -m: a missing path reaches pegasus, which names it (exit 2)
subject=()
if [[ $# -gt 0 && "$1" != *=* ]]; then subject=(--subject "$1"); shift; fi
cd "$(dirname "$0")/.."
exec "${VENV:-.venv}/bin/pegasus" preprocess --conf "${CONF:-confs/preprocess.conf}" --video "$video" \
  "${subject[@]}" "$@"
