#!/usr/bin/env bash
# The Python clients the tests drive the server with (the official `openai` SDK, pytest), in a venv
# inside the build folder so the system Python stays untouched (Debian 12 refuses system-wide pip).
# Usage: tools/python_test_env.sh BUILD_DIR  -> prints the venv's python path.
set -euo pipefail
venv="$1/pyenv"
marker="$venv/.troupe-ready-1"
if [ ! -f "$marker" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.40" "pytest>=7" >&2
  touch "$marker"
fi
echo "$venv/bin/python"
