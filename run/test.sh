#!/usr/bin/env bash
# Render and score a trained run.  Usage: bash run/test.sh [CONF] [section.key=value ...]
# CONF is the config the run was trained with (or its saved <run>/config.conf); outputs go to
# <run>/test/<checkpoint>/ and <run>/export/. --checkpoint FILE picks another checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
conf="confs/embedded.conf"
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
exec "$VENV/bin/pegasus" test --conf "$conf" "$@"
