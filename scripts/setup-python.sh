#!/usr/bin/env bash
# Creates .venv for the Python side: HuggingFace `datasets` (what SkyRL loads rows with) for the
# round-trip tests, and the MCPToolEnv package (./python, with its runtime dependency `mcp`) plus
# pytest for its tests. The machine's pip index may be local; --retries 0 skips unreachable indexes quickly.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && .venv/bin/python -c "import datasets, mcp, pytest, skyrl_mcp_env" 2>/dev/null; then
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import sys; assert sys.version_info >= (3, 10), 'MCPToolEnv needs Python >= 3.10'"
.venv/bin/python -m pip install --quiet --retries 0 --disable-pip-version-check datasets pytest ./python
.venv/bin/python -c "import datasets, mcp, pytest, skyrl_mcp_env; print('datasets', datasets.__version__, '· mcp, pytest, skyrl_mcp_env installed')"
