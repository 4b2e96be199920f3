#!/usr/bin/env bash
# Generate (or complete) the embedded synthetic multi-person video database with ground truth.
# Usage: bash run/synth_db.sh [CONF] [section.key=value ...]   e.g. synth_db.image_size=512
# Complete people and ground-truth entries are skipped; see docs/synth_db.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
conf="confs/embedded.conf"
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
exec "$VENV/bin/pegasus" synth-db --conf "$conf" "$@"
