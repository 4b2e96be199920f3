#!/usr/bin/env bash
# The target wearing every DB person's eyes (the original's script name; docs/synthesis.md).
# Usage: bash preprocess/2_synthesis_eyes.sh [CONF] [section.key=value ...]
exec bash "$(dirname "$0")/synthesis.sh" "$@" --category eyes --step parts
