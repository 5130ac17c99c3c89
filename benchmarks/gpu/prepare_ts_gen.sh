#!/usr/bin/env bash
# Prepare the GPU run of issues 10 and 12 (segmentation on the Dubai tiles, CycleGAN on the Slovenia scenes):
# both benchmarks import only numpy, torch, Pillow, scikit-learn (present on the device) and
# segmentation-models-pytorch (carried as a wheel). The data does not travel with the repo (../shared is
# outside it), so the three files/folders they read are copied into .gpu-data/ (git-ignored) and carried.
# Usage (repo root, development machine):  bash benchmarks/gpu/prepare_ts_gen.sh
# Then:  run(command="bash benchmarks/gpu/run_ts_gen.sh", carry=[".whl", ".gpu-data"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl .gpu-data && mkdir -p .whl .gpu-data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl segmentation_models_pytorch==0.6.0
d=../shared/data
cp -r "$d/dubai-segmentation" .gpu-data/
cp "$d/sentinel2-eopatch-slovenia/example_data/REFERENCE_SCENES.npy" .gpu-data/
cp "$d/sentinel2-cloudmask/tests/testfiles/sentinel2.npz" .gpu-data/
du -sh .whl .gpu-data
