# The shared start of the job scripts, sourced after `cd` to the repository root:
#   source run/_prepare.sh DEFAULT_CONF "$@"
# Sets VENV (default .venv), conf (the first argument when it is neither an override nor an
# option, else DEFAULT_CONF), args (the arguments after it) and overrides (those of the form
# section.key=value), then validates the whole config once: exit 2 on any problem, before any step.
VENV="${VENV:-.venv}"
conf="$1"; shift
if [[ $# -gt 0 && "$1" != *=* && "$1" != --* ]]; then conf="$1"; shift; fi
args=("$@")
overrides=()
for arg in "$@"; do [[ "$arg" == *=* && "$arg" != --* ]] && overrides+=("$arg"); done
"$VENV/bin/pegasus" config --conf "$conf" "${overrides[@]}" > /dev/null
