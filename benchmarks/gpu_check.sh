#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (see README, "Performance"): the overhead and
# input benchmarks, the CUDA cases of tests/test_throughput.py (no host waits inside a step; NVML
# utilisation counted inside the steps only), and a short ResNet50 training through the harness.
# Usage: bash benchmarks/gpu_check.sh OUTDIR   (python3 there must hold torch with CUDA)
set -uo pipefail
out=${1:?usage: gpu_check.sh OUTDIR}
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm, submitit; print('torch', torch.__version__, 'timm', timm.__version__, torch.cuda.get_arch_list())"
python3 -m pytest -q -p no:cacheprovider tests/test_throughput.py 2>&1 | tee "$out/tests.txt"
python3 -m harness data demo --out /tmp/demo224 --per-class 1300 --size 224 >/dev/null
(cd benchmarks && python3 overhead.py --model ResNet50 --image-size 64 --device cuda --steps 50) | tee -a "$out/benchmarks.jsonl"
(cd benchmarks && python3 overhead.py --model ResNet50 --image-size 224 --batch-size 128 --precision bf16 --channels-last \
  --device cuda --steps 12 --dataset /tmp/demo224) | tee -a "$out/benchmarks.jsonl"
[ -n "${WITH_INPUT_PIPELINE:-}" ] && (cd benchmarks && python3 input_pipeline.py --device cuda) | tee -a "$out/benchmarks.jsonl"
python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 10 --image-size 224 \
  --batch-size 128 --precision bf16 --channels-last --device cuda --results /tmp/gpu-results --name gpu --wait
python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 4 --image-size 224 \
  --batch-size 128 --precision fp16 --device cuda --results /tmp/gpu-results --name gpu-fp16 --wait
python3 -m harness leaderboard gpu --results /tmp/gpu-results --format json > "$out/leaderboard-gpu.json"
cp /tmp/gpu-results/gpu/runs/ResNet50-s0/result.json "$out/result-bf16.json"
cp /tmp/gpu-results/gpu-fp16/runs/ResNet50-s0/result.json "$out/result-fp16.json"
python3 - "$out"/result-*.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    t, g = r["throughput"], r["gpu"]
    print("ResNet50 %s 224px: train img/s %.0f, data wait %.4f, GPU util median %s mean %s (%s samples, one per %s s), "
          "MFU %s, device %s" % (r["config"]["precision"], t["train_images_per_s"], t["data_wait_fraction"], g["util_median"],
                                 g["util_mean"], g["samples"], g["util_period_s"], t["mfu"], r["environment"]["device_name"]))
PY
