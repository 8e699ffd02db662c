#!/usr/bin/env bash
# Creates .venv with HuggingFace `datasets` (what SkyRL loads rows with), for the round-trip tests.
# The machine's pip index may be local; --retries 0 skips unreachable indexes quickly.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && .venv/bin/python -c "import datasets" 2>/dev/null; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --retries 0 --disable-pip-version-check datasets
.venv/bin/python -c "import datasets; print('datasets', datasets.__version__)"
