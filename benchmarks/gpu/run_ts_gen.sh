#!/usr/bin/env bash
# The device command for issues 10 and 12 (one call): the segmentation benchmark (smp UNet) and the CycleGAN
# benchmark run side by side on the one GPU, each with a fixed training-time budget; results land in $OUT.
# On the development machine:  run(command="bash benchmarks/gpu/run_ts_gen.sh", carry=[".whl", ".gpu-data"],
#                                  timeout_s=560)
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
M="${GPU_MINUTES:-4}"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 plugins/satcore-timeseries/benchmarks/segmentation_dubai.py --device cuda --minutes "$M" --arch smp \
  --encoder resnet34 --crop 256 --batch 16 --lr 1e-3 --threads 4 --data .gpu-data/dubai-segmentation \
  --json "$OUT/segmentation.json" > "$OUT/segmentation.log" 2>&1 &
seg=$!
python3 plugins/satcore-generative/benchmarks/cyclegan_slovenia.py --device cuda --minutes "$M" \
  ${CYCLEGAN_ARGS:---batch 16 --base 32 --n-res 6} --threads 4 --scenes .gpu-data/REFERENCE_SCENES.npy \
  --cloudmask .gpu-data/sentinel2.npz --json "$OUT/cyclegan.json" > "$OUT/cyclegan.log" 2>&1 &
cyc=$!
wait $seg; echo "segmentation rc=$?"; wait $cyc; echo "cyclegan rc=$?"
tail -25 "$OUT/segmentation.log"; tail -25 "$OUT/cyclegan.log"
