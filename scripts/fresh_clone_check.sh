#!/usr/bin/env bash
# Developer check: clone the committed HEAD into a temporary folder and run the README's
# two set-up commands there, exactly as a new user (and CI) would.
# Usage: scripts/fresh_clone_check.sh [demo|test|both]   (default: both)
set -euo pipefail
what="${1:-both}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/pegasus"
# The real clips live beside the checkout (../shared); link them so real-data tests run.
[ -d "$repo/../shared" ] && ln -s "$repo/../shared" "$work/shared"
cd "$work/pegasus"
case "$what" in
  demo) make demo ;;
  test) make test ;;
  both) make demo && make test ;;
  *) echo "usage: $0 [demo|test|both]" >&2; exit 2 ;;
esac
