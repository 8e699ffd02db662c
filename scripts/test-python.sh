#!/usr/bin/env bash
# Runs the MCPToolEnv tests (python/tests, pytest) in .venv. With CI=true a venv without the test
# dependencies fails; elsewhere it is reported as skipped (run scripts/setup-python.sh).
set -eu
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import datasets, jsonschema, mcp, pytest" 2>/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: .venv lacks datasets/mcp/pytest for the Python tests (bash scripts/setup-python.sh)" >&2
    exit 1
  fi
  echo "warning: Python tests (python/tests) skipped: .venv lacks datasets/mcp/pytest; run bash scripts/setup-python.sh" >&2
  exit 0
fi
cd python
exec ../.venv/bin/python -m pytest -q
