#!/usr/bin/env bash
# Creates .venv and installs mmagent (editable) with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first and pinned: any other spec pulls the newest CUDA build (several GB).
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".[test]"
# rapidocr declares the GUI opencv-python, which would shadow opencv-python-headless:
# install it alone; its real needs (onnxruntime, pyclipper, shapely) come with mmagent.
"${PIP[@]}" --no-deps rapidocr-onnxruntime==1.4.4
echo "mmagent installed in .venv ($(.venv/bin/python -c 'import mmagent; print(mmagent.__version__)'))"
