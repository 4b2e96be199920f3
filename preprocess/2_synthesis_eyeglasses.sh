#!/usr/bin/env bash
# The target wearing every DB person's eyeglasses (the original's script name; docs/synthesis.md).
# Usage: bash preprocess/2_synthesis_eyeglasses.sh [CONF] [section.key=value ...]
exec bash "$(dirname "$0")/synthesis.sh" "$@" --category eyeglasses --step parts
