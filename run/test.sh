#!/usr/bin/env bash
# Render and score a trained run.  Usage: bash run/test.sh [CONF] [section.key=value ...]
# CONF names the run (its experiment.name and output_root); the run's own saved <run>/config.conf
# then gives the settings, with the command line's overrides (--run DIR names a run folder
# directly). Outputs go to <run>/test/<checkpoint>/ and <run>/export/; a generative run
# (generative.enabled) also gets control/ and part_control/ there. --checkpoint FILE picks
# another checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
conf="confs/embedded.conf"
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
exec "$VENV/bin/pegasus" test --conf "$conf" "$@"
