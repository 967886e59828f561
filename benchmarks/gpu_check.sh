#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (see docs/performance.md): the overhead and
# input benchmarks (the input one with a split held on the host: pinned staging against pageable
# copies), the CUDA cases of tests/integration/test_throughput.py (no host waits inside a step, a
# split on the device or pinned on the host; NVML utilisation counted inside the steps only), short
# ResNet50 trainings through the harness (bf16, fp16, bf16 with --compile) with their energy per image
# (null with its reason where a block spans under ten of NVML's update periods, else with its
# uncertainty), and `check`
# against references made from the first of them; the acceptance mode (`sweep --synthetic`, ResNet50 and
# MobileNetV2 at 224 px); where the machine has several GPUs, a scaling
# sweep over 1 to all of them (`--scaling`, NCCL), with NVIDIA's published figures beside it.
# Usage: bash benchmarks/gpu_check.sh OUTDIR   (python3 there must hold torch with CUDA)
set -uo pipefail
out=${1:?usage: gpu_check.sh OUTDIR}
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm, submitit; print('torch', torch.__version__, 'timm', timm.__version__, torch.cuda.get_arch_list())"
python3 -m pytest -q -p no:cacheprovider tests/integration/test_throughput.py 2>&1 | tee "$out/tests.txt"
python3 -m harness data demo --out /tmp/demo224 --per-class 1300 --size 224 >/dev/null
(cd benchmarks && python3 overhead.py --model ResNet50 --image-size 64 --device cuda --steps 50) | tee -a "$out/benchmarks.jsonl"
(cd benchmarks && python3 overhead.py --model ResNet50 --image-size 224 --batch-size 128 --precision bf16 --channels-last \
  --device cuda --steps 12 --dataset /tmp/demo224) | tee -a "$out/benchmarks.jsonl"
(cd benchmarks && python3 input_pipeline.py --device cuda --per-class 300 --size 256) | tee -a "$out/benchmarks.jsonl"
python3 - <<'PY' | tee -a "$out/data-wait.txt"
from pathlib import Path
import numpy as np, torch
from harness.data.cache import load_split
from harness.measure.meters import StepMeter
from harness.store.paths import RunPaths
from harness.training.config import TrainConfig
from harness.training.trainer import DeviceSplit, Trainer
run = Trainer(TrainConfig(model="ResNet50", image_size=224, batch_size=128, precision="bf16", channels_last=True, device="cuda"),
              Path("/tmp/demo224"), Path("/tmp/gpu-cache"), RunPaths(Path("/tmp/gpu-wait-run")))
split = load_split(run.cache, "train")
images, labels = torch.from_numpy(np.array(split.images)), torch.tensor(split.labels, dtype=torch.float32)
for place, data in (("host", DeviceSplit.on_host(images, labels, run.device)), ("gpu", DeviceSplit(images.cuda(), labels.cuda()))):
    for epoch in range(2):  # the first warms cuDNN up
        meter = StepMeter(run.device)
        run.train_epoch(data, epoch, meter)
    share, reason = meter.gpu_copy_wait()
    print(f"ResNet50 bf16 224px, split on the {place}: {meter.images_per_s():.0f} img/s, host fetch {meter.data_wait_fraction():.4f}, "
          f"GPU copy wait {reason if share is None else f'{share:.4f}'}")
PY
python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 10 --image-size 224 \
  --batch-size 128 --precision bf16 --channels-last --device cuda --results /tmp/gpu-results --name gpu --wait
python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 4 --image-size 224 \
  --batch-size 128 --precision fp16 --device cuda --results /tmp/gpu-results --name gpu-fp16 --wait
python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 4 --image-size 224 \
  --batch-size 128 --precision bf16 --channels-last --compile --device cuda --results /tmp/gpu-results --name gpu-compile --wait
python3 -m harness leaderboard gpu --results /tmp/gpu-results --format json > "$out/leaderboard-gpu.json"
python3 -m harness check gpu --results /tmp/gpu-results --references "$out/references.toml" --update-references
python3 -m harness check gpu-compile --results /tmp/gpu-results --references "$out/references.toml" | tee "$out/check.txt"
python3 -m harness compare gpu gpu-compile --results /tmp/gpu-results | tee "$out/compare.txt"
python3 -m harness sweep --synthetic --cluster local --models ResNet50,MobileNetV2 --image-size 224 --batch-size 128 \
  --precision bf16 --channels-last --device cuda --results /tmp/gpu-results --name gpu-synthetic --wait
python3 -m harness leaderboard gpu-synthetic --results /tmp/gpu-results --wide | tee "$out/synthetic.txt"
gpus=$(nvidia-smi -L | wc -l)
if [ "$gpus" -gt 1 ]; then
  python3 -m harness sweep --cluster local --dataset /tmp/demo224 --models ResNet50 --epochs 2 --image-size 224 \
    --batch-size 128 --precision fp16 --channels-last --device cuda --scaling "$(seq -s, 1 "$gpus")" \
    --results /tmp/gpu-results --name gpu-scaling --wait
  python3 -m harness leaderboard gpu-scaling --results /tmp/gpu-results --compare dle --wide | tee "$out/scaling.txt"
else
  echo "one GPU here: no scaling sweep" | tee "$out/scaling.txt"
fi
cp /tmp/gpu-results/gpu/runs/ResNet50-s0/result.json "$out/result-bf16.json"
cp /tmp/gpu-results/gpu-fp16/runs/ResNet50-s0/result.json "$out/result-fp16.json"
cp /tmp/gpu-results/gpu-compile/runs/ResNet50-s0/result.json "$out/result-bf16-compile.json"
python3 - "$out"/result-*.json <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    t, g = r["throughput"], r["gpu"]
    infer = g.get("infer") or {}
    print("ResNet50 %s%s 224px: train img/s %.0f, host fetch %.4f, GPU copy wait %s, GPU util median %s mean %s (%s samples, "
          "one per %s s), MFU %s (peak %s %s), train energy %s J +- %s (%s), J/train image %s, J/test image %s (%s), "
          "compile %s s, device %s" % (
              r["config"]["precision"], " compile" if r["config"].get("compile") else "", t["train_images_per_s"],
              t["data_wait_fraction"], t.get("gpu_copy_wait_fraction") if t.get("gpu_copy_wait_fraction") is not None
              else t.get("gpu_copy_wait_reason"), g["util_median"], g["util_mean"], g["samples"], g["util_period_s"], t["mfu"],
              t.get("peak_tflops"), t.get("peak_precision"), g.get("energy_j"), g.get("energy_uncertainty_j"),
              g.get("energy_source") or g.get("energy_reason"), g.get("energy_per_image_j"), infer.get("energy_per_image_j"),
              infer.get("energy_source") or infer.get("energy_reason"), t.get("compile_seconds"), r["environment"]["device_name"]))
PY
