#!/usr/bin/env bash
# Prepare a GPU benchmark run on a lent device machine (Python 3.12, torch present; no open_clip, pydantic or
# rasterio there, and no network): download cp312 manylinux wheels of what the benchmark imports, and build
# wheels of satcore and the plugins it needs, into .whl/ (git-ignored; carried with the `carry` option).
# Usage (repo root, on the development machine):  bash benchmarks/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d .whl open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 rasterio==1.4.4 affine==3.0.1 cligj==0.7.2 \
  click-plugins==1.1.1.2
python3 -m pip wheel -q --no-deps --no-build-isolation -w .whl . plugins/satcore-classic plugins/satcore-clip
du -sh .whl && ls .whl
