#!/usr/bin/env bash
# The tests (`npm test`, after the build and the Python set-up): vitest and pytest (scripts/test-python.sh) at
# once. vitest keeps the two CPUs of a small machine busy only ~80% of its run (its tests wait on child
# processes and timers), and pytest's ~40 s of CPU fit in the rest: ~50 s less than one after the other.
# pytest's output goes to a log printed when vitest has ended; either failing fails the whole, once both
# have ended.
set -u
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

bash scripts/test-python.sh >"$log" 2>&1 &
python=$!
# Ctrl-C or a kill of this script stops pytest too.
trap 'kill "$python" 2>/dev/null; exit 130' INT TERM

vitest=0
npx vitest run || vitest=$?
pytest=0
wait "$python" || pytest=$?
echo "== pytest (python/tests, scripts/test-python.sh): exit $pytest"
cat "$log"
[ "$vitest" = 0 ] || echo "vitest failed (exit $vitest)" >&2
[ "$pytest" = 0 ] || echo "pytest failed (exit $pytest)" >&2
[ "$vitest" = 0 ] && [ "$pytest" = 0 ]
