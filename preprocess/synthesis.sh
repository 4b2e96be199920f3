#!/usr/bin/env bash
# Part-swap synthesis (docs/synthesis.md): the target's videos wearing every DB person's parts,
# cut from the DB avatar bank's cross-driven renders, then their part score against the
# synthetic database's ground truth (skipped when synth.ground_truth is null, e.g. real clips).
# Usage: bash preprocess/synthesis.sh [CONF] [--category C ...] [--step source|parts] [section.key=value ...]
# With no CONF it uses confs/db_bank_shared.conf (the bank run/demo.sh builds). Complete jobs are
# skipped, so the same command resumes. 2_synthesis_<category>.sh and 3_source.sh call this one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
conf="confs/db_bank_shared.conf"
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
options=(); overrides=(); steps=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --step) options+=("$1" "$2"); steps+=" $2"; shift 2 ;;
    --category|--video) options+=("$1" "$2"); shift 2 ;;
    *) overrides+=("$1"); shift ;;
  esac
done
"$VENV/bin/pegasus" synth --conf "$conf" "${options[@]}" "${overrides[@]}"
if [[ -z "$steps" || "$steps" == *parts* ]]; then
  "$VENV/bin/pegasus" score-parts --conf "$conf" "${overrides[@]}"
fi
