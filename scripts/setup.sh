#!/usr/bin/env bash
# Creates .venv and installs mmagent (editable) from the locked install. Safe to run again.
# The lock (requirements.lock, requirements-nodeps.lock) is refreshed only on purpose, by
# scripts/lock.sh; a newer release on the index never changes what this installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# Every dependency exactly as locked, checked by hash; --no-deps because the lock is complete.
"${PIP[@]}" --no-deps --require-hashes -r requirements.lock
# rapidocr declares the GUI opencv-python, which would shadow opencv-python-headless.
"${PIP[@]}" --no-deps --require-hashes -r requirements-nodeps.lock
# torch by its pin (not in the lock): pip takes the local CPU wheel; a range would pull CUDA.
"${PIP[@]}" --no-deps "$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')"
"${PIP[@]}" --no-deps --no-build-isolation -e .
echo "mmagent installed in .venv ($(.venv/bin/python -c 'import mmagent; print(mmagent.__version__)'))"
