#!/usr/bin/env bash
# The device command (keep it one call): install the carried wheels, then the CLIP throughput benchmark on the
# GPU with ViT-B-32 (random weights: same compute as pretrained), eager and compiled. Results land in $OUT.
# On the development machine:  run(command="bash benchmarks/gpu/run.sh", carry=[".whl"], timeout_s=540)
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/clip_throughput.py --device cuda --arch ViT-B-32 --pairs 2048 --naive-pairs 64 --batch 1024 --loader-workers 12 \
  --json "$OUT/eager.json" 2>&1 | tee "$OUT/eager.log"
# compiled paths: bounds and feeding only (a satcore run with compile: true would compile once per run)
python3 benchmarks/clip_throughput.py --device cuda --arch ViT-B-32 --compile --extras-only \
  --json "$OUT/compiled.json" 2>&1 | tee "$OUT/compiled.log"
# last and optional (the results above are already in $OUT): satcore reading with 12 loader processes instead
# of threads — on 16 cores the GIL-bound part of each read (~0.2 ms in rasterio's wrappers) caps threads
timeout 150 python3 benchmarks/clip_throughput.py --device cuda --arch ViT-B-32 --pairs 2048 --naive-pairs 4 \
  --batch 1024 --loader-workers 12 --loader processes --repeat 1 --json "$OUT/eager_processes.json" 2>&1 \
  | tee "$OUT/eager_processes.log"
