#!/usr/bin/env bash
# The target's own videos with the union of its part masks as mask_object/ (stage 1 of PEGASUS
# trains on them; the original's script name; docs/synthesis.md).
# Usage: bash preprocess/3_source.sh [CONF] [section.key=value ...]
exec bash "$(dirname "$0")/synthesis.sh" "$@" --step source
