#!/usr/bin/env bash
# The main job on the embedded default data (no downloads): for now, generate the stand-in
# head model and render its picture. Extra arguments are config overrides (section.key=value).
set -euo pipefail
cd "$(dirname "$0")/.."
PEGASUS="${PEGASUS:-.venv/bin/pegasus}"
"$PEGASUS" picture --conf confs/embedded.conf "$@"
