#!/usr/bin/env bash
# Creates .venv for the Python side: HuggingFace `datasets` (what SkyRL loads rows with) for the
# round-trip tests, and the MCPToolEnv package (./python, with its runtime dependency `mcp`) plus
# pytest for its tests. The machine's pip index may be local; --retries 0 skips unreachable indexes quickly.
set -eu
cd "$(dirname "$0")/.."
# The installed MCPToolEnv package must be this checkout's python/: an install made before a pull stays
# otherwise, and `.venv/bin/python -m skyrl_mcp_env.reward_check` runs old code.
installed_is_current() {
  .venv/bin/python - 2>/dev/null <<'PY'
import pathlib, sys
import skyrl_mcp_env
installed = pathlib.Path(skyrl_mcp_env.__file__).parent
same = lambda f: (installed / f.name).is_file() and (installed / f.name).read_bytes() == f.read_bytes()
sys.exit(0 if all(same(f) for f in pathlib.Path("python/skyrl_mcp_env").glob("*.py")) else 1)
PY
}
if [ -x .venv/bin/python ] && .venv/bin/python -c "import datasets, mcp, pytest, skyrl_mcp_env" 2>/dev/null; then
  installed_is_current && exit 0
  echo "skyrl_mcp_env in .venv is not this checkout's python/: reinstalling it" >&2
  exec .venv/bin/python -m pip install --quiet --retries 0 --disable-pip-version-check --no-deps --force-reinstall ./python
fi
# A .venv without pip (made where python3-venv was missing: `python3 -m venv --without-pip`, or a venv that failed
# half-way) or of a Python older than 3.10 is made again: kept, it failed the same way on every run.
# (Not when python3 itself is older: a new venv would fail the same way, said below.)
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import sys, pip; assert sys.version_info >= (3, 10)" 2>/dev/null &&
  python3 -c "import sys; assert sys.version_info >= (3, 10)" 2>/dev/null; then
  echo ".venv has no pip, or a Python older than 3.10: making it again (python3 -m venv --clear .venv)" >&2
  python3 -m venv --clear .venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import sys; assert sys.version_info >= (3, 10), 'MCPToolEnv needs Python >= 3.10'"
.venv/bin/python -m pip install --quiet --retries 0 --disable-pip-version-check datasets pytest ./python
.venv/bin/python -c "import datasets, mcp, pytest, skyrl_mcp_env; print('datasets', datasets.__version__, '· mcp, pytest, skyrl_mcp_env installed')"
