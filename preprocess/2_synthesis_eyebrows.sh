#!/usr/bin/env bash
# The target wearing every DB person's eyebrows (the original's script name; docs/synthesis.md).
# Usage: bash preprocess/2_synthesis_eyebrows.sh [CONF] [section.key=value ...]
exec bash "$(dirname "$0")/synthesis.sh" "$@" --category eyebrows --step parts
